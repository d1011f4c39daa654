"""SIGTERM ends every command within seconds, whatever it is doing.

Python runs a signal handler only between bytecodes, and Lightning's own SIGTERM handler
only sets a flag that the training loop reads after a step: a step or a data-loading call
that takes minutes (a context length too long for the machine) would hold a terminated
command for minutes. `guard_sigterm` installs a handler that raises `Terminated` (so the
command ends as it does on Ctrl-C: loaders, loggers and preparation clean up) and, through
`signal.set_wakeup_fd`, wakes a watchdog thread the moment the signal arrives, even while
the main thread is inside one long C++ call; if the command has not ended `GRACE_S`
seconds later, the watchdog ends the process. SIGTERM ends a command as Ctrl-C does (what
SLURM and `timeout` send is a stop, not a crash): `Terminated` is a `KeyboardInterrupt`,
so each command's Ctrl-C path reports it, with the command that continues the work, and
the exit status is 130 either way.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

GRACE_S = 3.0
TERMINATED_STATUS = 130  # as for Ctrl-C: one status for "stopped by the user or the scheduler"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread; handled wherever Ctrl-C is."""

    def __init__(self, message: str = "terminated") -> None:
        super().__init__(message)


def _watch(read_fd: int, owner: int) -> None:
    while True:
        try:
            got = os.read(read_fd, 64)
        except OSError:
            return
        if not got:
            return
        if signal.SIGTERM in got and os.getpid() == owner:
            time.sleep(GRACE_S)
            os.write(
                2,
                f"terminated (the command had not stopped {GRACE_S:g} s after SIGTERM)\n".encode(),
            )
            os._exit(TERMINATED_STATUS)


def guard_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in this process, with a watchdog that ends it
    `GRACE_S` seconds later if it is still running. Only from the main thread, once."""
    if threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
        return
    owner = os.getpid()

    def on_sigterm(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked child (a data-loading worker): end as by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return  # someone else's handler (a launcher's): leave it
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_fd)
        os.close(write_fd)
        return
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=_watch, args=(read_fd, owner), daemon=True, name="sigterm").start()
