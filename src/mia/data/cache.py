"""The prepared-data cache's own housekeeping: checking a prepared folder before it is used,
and the temporary folders that preparations build in.

A prepared folder is checked each time it is reused: ``meta.json`` parses and has its
fields, each ``<split>.bin`` holds exactly the tokens ``meta.json`` counts, no token id
reaches the vocabulary size (a max over the memory map), and the tokenizer loads and has
that vocabulary. Anything wrong is a `UserError` naming the file and how to rebuild it.

A preparation builds in a hidden folder ``prepared/.<name>.<random>`` and holds an
exclusive `fcntl` lock on ``prepared/.<name>.<random>.lock`` while it does. The kernel
drops the lock when the process dies however it dies, so a hidden folder whose lock can be
taken belongs to a dead preparation and the next preparation removes it; a live one (its
lock held) is left alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mia.errors import UserError

META_FILE = "meta.json"
LOCK_SUFFIX = ".lock"
_SPLITS = ("train", "val", "test")


def rebuild_hint(directory: Path) -> str:
    return (
        f"delete {directory} (or rerun mia-prepare with the same data and tokenizer "
        "settings and force=true) to prepare it again"
    )


def _damaged(path: Path, what: str, directory: Path) -> UserError:
    return UserError(f"prepared data {path} {what}; {rebuild_hint(directory)}")


def read_meta(directory: Path) -> dict[str, Any]:
    """``meta.json`` of a prepared folder, with the fields a reader needs checked."""
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(path, f"cannot be read ({err})", directory) from None
    try:
        dtype = np.dtype(meta["dtype"])
        vocab = meta["vocab_size"]
        counts = [meta["splits"][split]["tokens"] for split in _SPLITS]
        ok = dtype.kind == "u" and isinstance(vocab, int) and vocab > 0
        ok = ok and all(isinstance(n, int) and n >= 0 for n in counts)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise _damaged(path, "lacks its fields (dtype, vocab_size, splits' tokens)", directory)
    return meta


def verify_prepared(directory: Path, meta: dict[str, Any]) -> None:
    """Check the token files and the tokenizer of a prepared folder against its meta."""
    from mia.tokenizer import load_tokenizer

    dtype = np.dtype(meta["dtype"])
    vocab = int(meta["vocab_size"])
    for split in _SPLITS:
        path = directory / f"{split}.bin"
        tokens = int(meta["splits"][split]["tokens"])
        try:
            size = path.stat().st_size
        except OSError:
            raise _damaged(path, "is missing", directory) from None
        if size != tokens * dtype.itemsize:
            raise _damaged(
                path,
                f"has {size} bytes, but meta.json counts {tokens} tokens "
                f"({tokens * dtype.itemsize} bytes of {dtype.name})",
                directory,
            )
        if tokens:
            top = int(np.memmap(path, dtype=dtype, mode="r").max())
            if top >= vocab:
                raise _damaged(
                    path, f"holds token id {top}, past the vocabulary of {vocab}", directory
                )
    try:
        tokenizer = load_tokenizer(directory)
    except FileNotFoundError as err:
        raise _damaged(Path(err.filename), "is missing", directory) from None
    except Exception as err:  # a missing file, bad JSON, a model SentencePiece rejects
        raise _damaged(
            directory / "tokenizer.json", f"does not load ({type(err).__name__}: {err})", directory
        ) from None
    if tokenizer.vocab_size != vocab:
        raise _damaged(
            directory / "tokenizer.json",
            f"has {tokenizer.vocab_size} tokens, but meta.json says {vocab}",
            directory,
        )


# --- building folders -------------------------------------------------------------------


@contextmanager
def building_folder(target: Path) -> Iterator[Path]:
    """A fresh hidden folder beside `target` to build it in, locked while in use; it is
    removed on the way out unless it was renamed away."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_folders(parent)
    tmp = parent / f".{target.name}.{uuid.uuid4().hex[:12]}"
    lock = Path(f"{tmp}{LOCK_SUFFIX}")
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        tmp.mkdir()
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # the cache is shared
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            lock.unlink(missing_ok=True)


def remove_stale_folders(parent: Path) -> list[Path]:
    """Remove the hidden building folders in `parent` whose preparation is dead (its lock
    is free, or it has no lock file); returns what was removed."""
    removed = []
    for folder in sorted(parent.glob(".*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        lock = Path(f"{folder}{LOCK_SUFFIX}")
        try:
            with lock.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live preparation
                shutil.rmtree(folder, ignore_errors=True)
                lock.unlink(missing_ok=True)
        except OSError:
            continue  # a read-only cache: leave it
        removed.append(folder)
    return removed


def discard(directory: Path) -> None:
    """Move a prepared folder out of the way (to a hidden name the next cleanup removes,
    should this process die first), then delete it."""
    trash = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:12]}"
    os.rename(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)
