"""Ctrl-C and SIGTERM during a sweep: both end the sweep as Ctrl-C does (one line, exit status
130), and that line names the command that continues the whole sweep, not one of its jobs."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from mia.errors import Interrupted


def _ctrl_c(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the sweep runs. Lightning, which handles SIGTERM
    itself during `fit`, calls this handler after its own, so a job stops as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def command_name() -> str:
    """The command as the user typed it: mia-train, also when started as python -m."""
    name = Path(sys.argv[0]).name
    return f"mia-{Path(name).stem}" if name.endswith(".py") else name


def continue_with(dropped: Sequence[str] = (), added: Sequence[str] = ()) -> Interrupted:
    """The Ctrl-C of a sweep, naming the command that continues it: this command's own
    arguments, less those that start with one of `dropped`, plus `added`."""
    kept = [a for a in sys.argv[1:] if not a.lstrip("+~").startswith(tuple(dropped))]
    args = " ".join(shlex.quote(a) for a in [*kept, *added])
    return Interrupted(f"interrupted; continue with: {command_name()} {args}")
