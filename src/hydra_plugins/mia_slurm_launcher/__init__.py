"""MIA's SLURM launcher: hydra-submitit-launcher's, with one-line errors, results taken
only once SLURM lets a job go, and a bounded wait (see `mia.sweeping.slurm`)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from mia.errors import UserError
from mia.sweeping.slurm import POLL_S, queued, sbatch_refusal


class MiaSlurmLauncher(SlurmLauncher):
    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Not a launcher field: the launcher's config schema belongs to hydra-submitit-launcher.
        self.vanished_after_s = float(os.environ.get("MIA_SLURM_VANISHED_AFTER_S", "60"))

    def setup(self, **kwargs: Any) -> None:
        # Before the sweeper writes anything: no SLURM here is a refused command.
        missing = [c for c in ("sbatch", "squeue", "srun") if shutil.which(c) is None]
        if missing:
            raise UserError(
                f"hydra/launcher=submitit_slurm: SLURM's commands ({', '.join(missing)}) are "
                "not on this machine; run from the cluster's login node, or use "
                "hydra/launcher=submitit_local"
            )
        super().setup(**kwargs)

    def launch(self, job_overrides, initial_job_idx):  # type: ignore[no-untyped-def]
        import submitit

        jobs: list[Any] = []
        original = submitit.AutoExecutor.map_array

        def keep(executor: Any, fn: Any, *iterables: Any) -> list[Any]:
            jobs.extend(original(executor, fn, *iterables))
            return []

        folder = Path(str(self.params["submitit_folder"]).split("%j")[0])
        existed = folder.exists()
        submitit.AutoExecutor.map_array = keep  # type: ignore[method-assign]
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's refusal
                super().launch(job_overrides, initial_job_idx)
        except submitit.core.utils.FailedJobError as err:
            if not existed:
                shutil.rmtree(folder, ignore_errors=True)
            raise UserError(sbatch_refusal(str(err))) from None
        finally:
            submitit.AutoExecutor.map_array = original  # type: ignore[method-assign]
        return [self._collect(job) for job in jobs]

    def _collect(self, job: Any) -> JobReturn:
        """Wait for one job: its result once SLURM has let it go, or a failure once it has
        been gone for `vanished_after_s` seconds without one."""
        gone_since: float | None = None
        while True:
            in_queue = queued(job.job_id)
            has_result = job.paths.result_pickle.exists()
            if not in_queue and has_result:
                return job.results()[0]
            if in_queue:
                gone_since = None
            else:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > self.vanished_after_s:
                    ret = JobReturn()
                    ret.status = JobStatus.FAILED
                    ret._return_value = UserError(
                        f"SLURM job {job.job_id} left the queue without a result (cancelled, "
                        f"or killed by SLURM); its log: {job.paths.stderr}"
                    )
                    return ret
            time.sleep(POLL_S)
