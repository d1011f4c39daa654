"""Folders the user names (``paths.cache_dir``, a run folder): checked before anything is
written, so a path that is a file, or that cannot be created or written, is one line."""

from __future__ import annotations

import os
from pathlib import Path

from mia.errors import UserError


def folder_problem(path: str | Path) -> str | None:
    """Why `path` cannot be used as a folder to write in (None when it can); creates
    nothing."""
    path = Path(path).expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            return "is a file, not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return "is a folder this user cannot write in"
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is a file"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: this user cannot write in {parent}"
    return None


def check_folder(setting: str, path: str | Path) -> None:
    """A `UserError` naming `setting` when `path` cannot be a folder to write in."""
    problem = folder_problem(path)
    if problem:
        raise UserError(f"{setting}={path} {problem}; give a folder that can be written")
