"""Running `mia-train` in tests as a user would: start it in a folder, wait for what it
does, finish it. Shared by the test folders that start commands (tests/sweeping,
tests/cluster): `from support import ...`, as pytest puts tests/ on the import path (a
helper in a conftest.py would be shadowed by a folder's own conftest)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "sweeping" / "toy"
# A few seconds of training per job: a 2-layer width-32 model, character tokens, 30 steps.
TINY = [
    "debug=fast",
    "data=text",
    "tokenizer=char",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.text_samples=null",
]


def start_train(
    cwd: Path,
    corpus: Path,
    cache: Path,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    log_name: str = "log.txt",
    pasted: bool = False,
) -> subprocess.Popen:
    """Start `mia-train <TINY> data.files=[corpus] <args>` in `cwd` (`pasted=True`:
    `mia-train <args>`, a command as MIA printed it), with MIA_CACHE_DIR `cache`, the toy
    folder on PYTHONPATH (callbacks such as `slow_steps.SlowSteps`) and the variables of
    `env` added. Its stdout+stderr go to `cwd/log_name`, whose text the returned Popen's
    `.log()` reads."""
    flags = [a for a in args if a.startswith("-") and "=" not in a]  # -m before overrides
    rest = [a for a in args if a not in flags]
    command = list(args) if pasted else [*flags, *TINY, f"data.files=[{corpus}]", *rest]
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(TOY)) if p)
    full_env = {
        **os.environ,
        "MIA_CACHE_DIR": str(cache),
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": path,
    }
    full_env.update(env or {})
    with open(cwd / log_name, "w") as log:  # the child holds its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "mia.cli.train", *command],
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.log = lambda: (cwd / log_name).read_text()  # type: ignore[attr-defined]
    return proc


def train_runner(cwd: Path, corpus: Path, cache: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """The body of a `mia_train` fixture (`yield from train_runner(...)`): yields
    ``start(args, log_name="log.txt", env=None, pasted=False)``. Afterwards, a command
    still running (its test failed) is killed, and the SLURM jobs of its sweeps are
    cancelled."""
    started: list[subprocess.Popen] = []

    def start(
        args: Sequence[str],
        log_name: str = "log.txt",
        env: dict[str, str] | None = None,
        pasted: bool = False,
    ) -> subprocess.Popen:
        proc = start_train(cwd, corpus, cache, args, env=env, log_name=log_name, pasted=pasted)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # SLURM's jobs (an array, or a job) hold submitit's sbatch script; local ones do not.
    jobs = [p.parent.name for p in cwd.glob("*/.submitit/*/*_submission.sh")]
    if jobs and shutil.which("scancel"):
        subprocess.run(["scancel", *jobs], capture_output=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for the command; it must succeed. Returns its output."""
    rc = proc.wait(timeout=timeout)
    assert rc == 0, proc.log()[-3000:]
    return proc.log()


def wait_for(
    condition: Callable[[], bool],
    proc: subprocess.Popen | None = None,
    *,
    what: str = "the condition",
    timeout: float = 480,
) -> None:
    """Poll `condition` until it holds; fail if time runs out first, or if `proc` (the
    command whose work it waits for; None where there is none, as for a SLURM job) ends."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended (rc {proc.returncode}) first:\n{proc.log()[-3000:]}")
        if time.monotonic() > deadline:
            if proc is not None:
                proc.kill()
                pytest.fail(f"timed out waiting for {what}:\n{proc.log()[-3000:]}")
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


CONTINUE = "interrupted; continue with: "


def interrupted(proc: subprocess.Popen, timeout: float = 300) -> list[str]:
    """Wait for a signalled command: exit status 130, no traceback, and its one line saying
    how to continue. Returns that command's arguments (without the command's name)."""
    rc = proc.wait(timeout=timeout)
    output = proc.log()  # type: ignore[attr-defined]
    assert rc == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (line,) = [x for x in output.splitlines() if x.startswith("interrupted")]
    assert line.startswith(CONTINUE), line
    name, *args = shlex.split(line.removeprefix(CONTINUE))
    assert name == "mia-train"
    return args
