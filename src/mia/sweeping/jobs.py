"""A Hydra job's end as both sweepers read it: the folder it ran in, and why it failed in
one line (a user error's message; any other error's first line and type)."""

from __future__ import annotations

import sys

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from mia.errors import UserError


def job_folder(ret: JobReturn) -> str | None:
    """The job's run folder; None for a job that never ran (a SLURM job cancelled in the
    queue has no Hydra config)."""
    if ret.hydra_cfg is None:
        return None
    return OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir")


def failure_reason(ret: JobReturn) -> str | None:
    """The one-line reason a job failed, or None if it did not."""
    if ret.status != JobStatus.FAILED:
        return None
    return error_line(ret._return_value)  # the job's exception, without Hydra's printout


def error_line(err: BaseException) -> str:
    """A failed run's reason in one line: a user error's message; any other error's first
    line and type, out of memory said as such."""
    lines = str(err).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(err, UserError):
        return first
    if out_of_memory(err):
        return f"out of memory: {first} ({type(err).__name__})"
    return f"{first} ({type(err).__name__})"


def out_of_memory(err: BaseException) -> bool:
    """torch.OutOfMemoryError on an accelerator; on CPU a RuntimeError from its allocator."""
    torch = sys.modules.get("torch")  # an error of torch's means torch is imported
    if torch is not None and isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)
