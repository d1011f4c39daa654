"""Small JSON files of facts about this machine (a matmul peak, which vector instructions
torch.compile's C++ can use), measured once and kept in paths.cache_dir so later runs skip
the measurement."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_entries(path: Path) -> dict[str, Any]:
    """The entries of a cache file, or none where it is missing or unreadable."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def write_entry(path: Path, key: str, value: Any) -> None:
    """Add or replace one entry. Concurrent runs each write a whole file, so a reader never
    sees half of one (the last writer's entries win)."""
    known = read_entries(path)
    known[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=2) + "\n")
    tmp.replace(path)
