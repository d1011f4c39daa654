"""Helpers for the sweep tests: wait on a running command, and finish it."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 480) -> None:
    """Poll `condition` until it holds; fail if the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (rc {proc.returncode}) first:\n{proc.log()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out")
        time.sleep(0.2)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for the command; it must succeed. Returns its output."""
    rc = proc.wait(timeout=timeout)
    assert rc == 0, proc.log()[-3000:]
    return proc.log()


CONTINUE = "interrupted; continue with: "


def interrupted(proc: subprocess.Popen, timeout: float = 300) -> list[str]:
    """Wait for a signalled command: exit status 130, no traceback, and its one line saying
    how to continue. Returns that command's arguments (without the command's name)."""
    rc = proc.wait(timeout=timeout)
    output = proc.log()
    assert rc == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (line,) = [x for x in output.splitlines() if x.startswith("interrupted")]
    assert line.startswith(CONTINUE), line
    name, *args = shlex.split(line.removeprefix(CONTINUE))
    assert name == "mia-train"
    return args
