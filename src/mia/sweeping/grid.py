"""What MIA's basic sweeper (``-m`` without a search) adds to Hydra's: every job of a grid
checked before anything is written (its settings, and with ``resume=true`` its folder), an
end that names each failed job instead of a traceback from the first, and a Ctrl-C that
names the command that finishes the whole grid."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, open_dict

from mia.errors import Interrupted, UserError
from mia.settings import problems, rules
from mia.sweeping.interruption import continue_with
from mia.sweeping.jobs import failure_reason, job_folder
from mia.sweeping.resume import other_settings
from mia.sweeping.table import sweep_table

log = logging.getLogger(__name__)

FAILED_STATUS = 1  # some jobs failed; the others ran


def _has_rules(command: str) -> bool:
    try:
        rules(command)
    except ValueError:
        return False
    return True


def check_jobs(hydra_context: Any, config: DictConfig, jobs: Sequence[Sequence[str]]) -> None:
    """Refuse the grid in one line if any job's settings are invalid, or (resume=true) its
    folder recorded other settings than the job's. Composes each job as the launcher will,
    so nothing is written and no job runs before every job passed."""
    command = str(config.get("task_name") or "")
    checked = _has_rules(command)
    resumed = bool(config.get("resume")) or any(o.startswith("resume=") for j in jobs for o in j)
    if not checked and not resumed:
        return
    for num, overrides in enumerate(jobs):
        job = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        found = problems(job, command) if checked else []
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise UserError(f"job {num} of {len(jobs)}: {found[0]}{more}")
        if not job.get("resume"):
            continue
        with open_dict(job):
            job.hydra.job.id = job.hydra.job.num = num
        folder = (Path(str(job.hydra.sweep.dir)) / str(job.hydra.sweep.subdir)).absolute()
        refusal = other_settings(folder, job, "hydra.sweep.dir")
        if refusal:
            raise UserError(refusal)


def interrupted_grid(sweep_dir: Path) -> Interrupted:
    """Ctrl-C in a grid: the command that finishes it. resume=true skips the finished jobs,
    continues the cut-off one from its last checkpoint and runs the others."""
    return continue_with(
        dropped=("hydra.sweep.dir=", "resume="),
        added=[f"hydra.sweep.dir={sweep_dir}", "resume=true"],
    )


def end_of_grid(sweep_dir: Path, returns: Sequence[JobReturn]) -> None:
    """Return if every job succeeded (the sweep summary follows); otherwise print the table
    of jobs with each failure's reason, and exit with status 1."""
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
