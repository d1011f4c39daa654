"""The two things MIA's basic sweeper (``-m`` without a search) adds to Hydra's: every
job of a ``resume=true`` grid checked against its folder before anything is written, and
an end that names each failed job instead of a traceback from the first."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from mia.errors import UserError

log = logging.getLogger(__name__)

FAILED_STATUS = 1  # some jobs failed; the others ran


def refuse_changed_resumes(
    hydra_context: Any, config: DictConfig, jobs: Sequence[Sequence[str]]
) -> None:
    """With resume=true, refuse the sweep in one line if a job's folder recorded other
    settings than that job's; composes each job as the launcher will."""
    from mia.sweeping.resume import other_settings

    if not config.get("resume") and not any(o.startswith("resume=") for j in jobs for o in j):
        return
    for num, overrides in enumerate(jobs):
        job = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        if not job.get("resume"):
            continue
        with open_dict(job):
            job.hydra.job.id = job.hydra.job.num = num
        folder = (Path(str(job.hydra.sweep.dir)) / str(job.hydra.sweep.subdir)).absolute()
        refusal = other_settings(folder, job, "hydra.sweep.dir")
        if refusal:
            raise UserError(refusal)


def failure_reason(ret: JobReturn) -> str | None:
    """The one-line reason a job failed, or None if it did not."""
    if ret.status != JobStatus.FAILED:
        return None
    from mia.sweeping.trials import error_line

    return error_line(ret._return_value)  # the job's exception, without Hydra's printout


def job_folder(ret: JobReturn) -> str | None:
    """The job's run folder; None for a job that never ran (a SLURM job cancelled in the
    queue has no Hydra config)."""
    if ret.hydra_cfg is None:
        return None
    return OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir")


def end_of_grid(sweep_dir: Path, returns: Sequence[JobReturn]) -> None:
    """Return if every job succeeded (the sweep summary follows); otherwise print the table
    of jobs with each failure's reason, and exit with status 1."""
    from mia.cli.sweep import sweep_table

    failures = {}
    for num, ret in enumerate(returns):
        reason = failure_reason(ret)
        if reason is not None:
            folder = job_folder(ret)
            failures[Path(str(folder)).name if folder else str(num)] = reason
    if not failures:
        return
    print(f"\nSweep {sweep_dir}\n{sweep_table(sweep_dir, failures)}", flush=True)
    print(
        f"error: {len(failures)} of {len(returns)} jobs failed (see the table above)",
        file=sys.stderr,
    )
    sys.exit(FAILED_STATUS)
