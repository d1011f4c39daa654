"""Errors a user can act on, and how commands report them.

A user's mistake (a bad config value, a missing file, an empty corpus) raises `UserError`
with one sentence that names the setting and the fix. Commands turn it into that one
line on stderr and a non-zero exit; any other exception is our bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mia.termination import Terminated

P = ParamSpec("P")
R = TypeVar("R")


class UserError(Exception):
    """A problem with the user's input or config, explained in one line."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command knows about what it left (its one-line message)."""


INTERRUPTED_STATUS = 130  # what a shell reports for a process that SIGINT ended


def reports_user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command's body: a `UserError` ends in ``error: <message>`` and exit status 2,
    Ctrl-C or SIGTERM in one line (`Interrupted`'s or `Terminated`'s message, or
    "interrupted") and exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except BrokenPipeError:  # the reader went away (`mia-plan ... | head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except KeyboardInterrupt as err:
            named = isinstance(err, Interrupted | Terminated)
            print(str(err) if named else "interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)

    return wrapper
