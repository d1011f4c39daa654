"""Helpers for the scale-out tests: the tiny run, the SLURM preset they use, waiting."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

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
