"""Encode a stream of ``(split, text)`` into ``<split>.bin`` files, on several processes.

The stream is cut into chunks of about `CHUNK_CHARS` characters: for one continuous text a
chunk ends just after a newline (or at the end of a split), so the tokens of consecutive
chunks are exactly the tokens of the whole split (tokenizers never join tokens across a
newline); for documents a chunk is whole documents, each followed by the end-of-text id.
Worker processes encode chunks; the parent writes their tokens in chunk order, keeping at
most a few chunks per worker in flight, so memory stays flat and the files are the same
as a single process would write (``workers=1`` encodes in this process).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mia.data.corpora import SPLITS
from mia.tokenizer import Tokenizer, tokenizer_from_state

CHUNK_CHARS = 1 << 20
# Starting a worker process costs about a second; below this much text per worker, fewer work.
BYTES_PER_WORKER = 16 << 20
_IN_FLIGHT_PER_WORKER = 3


@dataclass(frozen=True)
class Chunk:
    split: str
    texts: list[str]  # one piece of a continuous text, or whole documents
    documents: bool

    @property
    def characters(self) -> int:
        return sum(len(text) for text in self.texts)


def chunks(items: Iterable[tuple[str, str]], documents: bool) -> Iterator[Chunk]:
    """Group the stream into chunks that encode independently (see the module docstring)."""
    split: str | None = None
    pending: list[str] = []
    size = 0
    for item_split, text in items:
        if item_split != split:
            if pending:
                yield Chunk(split, ["".join(pending)] if not documents else pending, documents)
            split, pending, size = item_split, [], 0
        pending.append(text)
        size += len(text)
        if size < CHUNK_CHARS or (not documents and "\n" not in text):
            continue
        if documents:
            yield Chunk(split, pending, True)
            pending, size = [], 0
            continue
        joined = "".join(pending)
        cut = joined.rfind("\n") + 1
        yield Chunk(split, [joined[:cut]], False)
        rest = joined[cut:]
        pending, size = ([rest], len(rest)) if rest else ([], 0)
    if pending:
        yield Chunk(split, ["".join(pending)] if not documents else pending, documents)


def encode_chunk(tokenizer: Tokenizer, chunk: Chunk, dtype: np.dtype) -> np.ndarray:
    """The tokens of a chunk; documents each end with the tokenizer's end-of-text id."""
    if not chunk.documents:
        return np.asarray(tokenizer.encode(chunk.texts[0]), dtype=dtype)
    eos = tokenizer.eos_id
    ids: list[int] = []
    for text in chunk.texts:
        ids.extend(tokenizer.encode(text))
        ids.append(eos)
    return np.asarray(ids, dtype=dtype)


_worker_tokenizer: Tokenizer | None = None


def die_with_parent(parent: int) -> None:
    """End this process when `parent` dies, whichever way (Linux: PR_SET_PDEATHSIG; the
    parent may already be gone by the time this runs, so that is checked after)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(state: dict[str, Any], parent: int) -> None:
    global _worker_tokenizer
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _worker_tokenizer = tokenizer_from_state(state)
    _worker_tokenizer.set_threads(1)  # the processes are the parallelism


def _encode_in_worker(chunk: Chunk, dtype: str) -> np.ndarray:
    assert _worker_tokenizer is not None
    return encode_chunk(_worker_tokenizer, chunk, np.dtype(dtype))


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def encode_splits(
    items: Iterable[tuple[str, str]],
    documents: bool,
    tokenizer: Tokenizer,
    dtype: np.dtype,
    directory: Path,
    workers: int,
    total_bytes: int | None = None,
) -> dict[str, Any]:
    """Write ``<split>.bin`` for every split into `directory`; returns per-split figures
    (characters, bytes, tokens, documents, chars_per_token) and the text's sha256
    (continuous text only) under ``"text_sha256"``, the time under ``"seconds"`` and the
    processes used under ``"workers"`` (fewer than asked for a small corpus)."""
    counts = {split: {"characters": 0, "bytes": 0, "tokens": 0, "documents": 0} for split in SPLITS}
    text_digest = hashlib.sha256()
    started = time.perf_counter()
    with ExitStack() as stack:
        files = {
            split: stack.enter_context((directory / f"{split}.bin").open("wb")) for split in SPLITS
        }
        progress = stack.enter_context(_progress())
        task = progress.add_task("encoding", total=total_bytes)

        def write(chunk: Chunk, ids: np.ndarray) -> None:
            ids.tofile(files[chunk.split])
            figures = counts[chunk.split]
            nbytes = 0
            for text in chunk.texts:
                encoded = text.encode()
                nbytes += len(encoded)
                if not documents:
                    text_digest.update(encoded)
            figures["characters"] += chunk.characters
            figures["bytes"] += nbytes
            figures["tokens"] += ids.size
            figures["documents"] += len(chunk.texts) if documents else 0
            progress.update(task, advance=nbytes, description=f"encoding {chunk.split}")

        stream = chunks(items, documents)
        if total_bytes is not None:
            workers = min(workers, max(1, total_bytes // BYTES_PER_WORKER))
        if workers <= 1:
            for chunk in stream:
                write(chunk, encode_chunk(tokenizer, chunk, dtype))
        else:
            _encode_parallel(stream, tokenizer, dtype, workers, write)
    seconds = time.perf_counter() - started
    figures: dict[str, Any] = {}
    for split, c in counts.items():
        figures[split] = {
            "characters": c["characters"],
            "bytes": c["bytes"],
            "tokens": c["tokens"],
            "chars_per_token": round(c["characters"] / c["tokens"], 4) if c["tokens"] else None,
        }
        if documents:
            figures[split]["documents"] = c["documents"]
    return {
        "splits": figures,
        "text_sha256": None if documents else text_digest.hexdigest(),
        "seconds": seconds,
        "workers": workers,
    }


def _encode_parallel(stream: Iterator[Chunk], tokenizer, dtype, workers, write) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(tokenizer.to_state(), os.getpid()),
    ) as pool:
        in_flight: deque[tuple[Chunk, Future]] = deque()
        try:
            for chunk in stream:
                in_flight.append((chunk, pool.submit(_encode_in_worker, chunk, dtype.name)))
                if len(in_flight) >= workers * _IN_FLIGHT_PER_WORKER:
                    done, future = in_flight.popleft()
                    write(done, future.result())
            while in_flight:
                done, future = in_flight.popleft()
                write(done, future.result())
        except BaseException:  # Ctrl-C or an error: drop the queued chunks, not encode them
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
