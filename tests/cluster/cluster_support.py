"""Helpers for the SLURM tests: the launcher preset they use, asking SLURM about jobs, and
reading checkpoints. Starting and waiting on commands: tests/support.py."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from support import wait_for

# Small enough that two jobs share a node of the local cluster at once.
SLURM_CPU = ["hydra/launcher=submitit_slurm_cpu", "hydra.launcher.cpus_per_task=1"]
SLURM_CPU += ["hydra.launcher.mem_gb=1"]


def job_ids(sweep: Path) -> list[str]:
    """The SLURM job ids of a sweep's jobs (<job>, or <array>_<index> for several), from
    submitit's folders."""
    folder = sweep / ".submitit"
    names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    arrays = {n.split("_")[0] for n in names if "_" in n}
    return sorted(n for n in names if n[0].isdigit() and n not in arrays)


def state(job_id: str) -> str:
    """The job's state in the queue (RUNNING, PENDING, ...); "" once SLURM let it go."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def release(job_id: str) -> None:
    """Start a requeued job now: SLURM holds one for about two minutes (BeginTime)."""
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "starttime=now"], check=True)


def checkpoint(path: Path) -> dict:
    """A checkpoint's contents (its state_dict tensors, global_step, ...)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def sbatch(script: Path, args: Sequence[str], cwd: Path, env: dict[str, str], *extra: str) -> str:
    """Submit `script` with `args` (sbatch's own options in `extra`); returns the job id."""
    out = subprocess.run(
        ["sbatch", "--parsable", *extra, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return out.stdout.strip().split(";")[0]


def cancel_after_first_checkpoint(job_id: str, last: Path) -> None:
    """Wait for the job's first `last.ckpt`, then `scancel` it (preempted, not requeued) and
    wait for it to leave the queue."""
    try:
        wait_for(lambda: last.is_file(), what=f"job {job_id}'s first checkpoint")
    finally:
        subprocess.run(["scancel", job_id], check=True)
    wait_for(lambda: state(job_id) == "", what=f"job {job_id} to leave the queue", timeout=60)
