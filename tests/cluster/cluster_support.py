"""Helpers for the scale-out tests: the tiny run, the SLURM preset they use, waiting, and
asking SLURM about jobs."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# A few seconds of training per job: a 2-layer width-32 model, character tokens, 30 steps.
TINY = [
    "debug=fast",
    "data=text",
    "tokenizer=char",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.text_samples=null",
]
# Small enough that two jobs share the local cluster's node at once.
SLURM_CPU = ["hydra/launcher=submitit_slurm_cpu", "hydra.launcher.cpus_per_task=1"]
SLURM_CPU += ["hydra.launcher.mem_gb=1"]


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for the command; it must succeed. Returns its output."""
    rc = proc.wait(timeout=timeout)
    assert rc == 0, proc.log()[-3000:]
    return proc.log()


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll `condition`; fail if the command ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (rc {proc.returncode}) first:\n{proc.log()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out:\n{proc.log()[-3000:]}")
        time.sleep(0.5)


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


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    """Poll `condition` (for SLURM jobs, where there is no process of ours to watch)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def checkpoint(path: Path) -> dict:
    """A checkpoint's contents (its state_dict tensors, global_step, ...)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
