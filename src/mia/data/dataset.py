"""Memory-mapped token windows: an endless stream of training batches, and the
consecutive windows that val/test walk through.

Training batch ``i`` is a pure function of ``(seed, i, rank)`` (and the world size), drawn
by one of two samplers (`data.sampler`):

- ``random`` (nanoGPT's): each window starts at an offset drawn independently, from a
  `torch.Generator` seeded with a hash of the three; some text is seen more often than
  the rest, some not at all.
- ``shuffled``: epochs. Each epoch cuts the train split into consecutive windows from a
  random start within the first window, and visits them in a random order (a permutation
  computed element by element, `mia.data.permutation`), so every token is trained on once
  an epoch; data-parallel ranks take interleaved places of the same order.

A run resumed at step ``s`` therefore continues with exactly the batches it would have
seen, and data-parallel ranks draw different batches. The memmap is opened lazily, in
whichever process (DataLoader worker) first reads it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from mia.data.permutation import permute
from mia.data.prepare import read_tokens

IGNORE_INDEX = -100  # targets with this value add nothing to the loss (torch's default)
SAMPLERS = ("random", "shuffled")


def batch_seed(seed: int, index: int, rank: int) -> int:
    """A 63-bit generator seed that depends on all of (seed, index, rank)."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def epoch_key(seed: int, epoch: int) -> int:
    """The 63-bit key of one epoch's order (the same on every rank)."""
    return batch_seed(seed, epoch, rank=-1)


def window_offsets(
    n_tokens: int,
    index: int,
    *,
    seed: int,
    rank: int,
    block_size: int,
    batch_size: int,
    sampler: str = "random",
    world_size: int = 1,
) -> np.ndarray:
    """Where the `batch_size` windows of batch `index` start: offsets in
    ``[0, n_tokens - block_size)``, so each window's ``block_size + 1`` tokens fit."""
    if sampler == "random":
        generator = torch.Generator().manual_seed(batch_seed(seed, index, rank))
        return torch.randint(0, n_tokens - block_size, (batch_size,), generator=generator).numpy()
    if sampler != "shuffled":
        raise ValueError(f"sampler={sampler!r}; choose one of {', '.join(SAMPLERS)}")
    T = block_size
    windows = max(1, (n_tokens - T) // T)  # per epoch
    starts = n_tokens - T - (windows - 1) * T  # choices of the first window's start
    # Places in one endless stream of windows; rank r of R takes batch index * R + r.
    places = (index * world_size + rank) * batch_size + np.arange(batch_size)
    epochs, positions = np.divmod(places, windows)
    offsets = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        key = epoch_key(seed, int(epoch))
        mine = epochs == epoch
        shift = key % min(T, starts)
        offsets[mine] = shift + permute(positions[mine], windows, key) * T
    return offsets


def train_batch(tokens: np.ndarray, index: int, **draw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch `index` of the stream: `batch_size` windows of ``block_size + 1`` tokens, as
    ``(x, y)`` int64 tensors of shape (batch_size, block_size), ``y`` = ``x`` shifted by one.
    `draw` holds `window_offsets`' keywords (seed, rank, block_size, batch_size, ...)."""
    offsets = window_offsets(len(tokens), index, **draw)
    block_size = draw["block_size"]
    rows = offsets[:, None] + np.arange(block_size + 1)
    windows = torch.from_numpy(np.asarray(tokens[rows], dtype=np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


class _TokenFile:
    """Holds a ``.bin`` path and opens its memmap on first use in each process."""

    def __init__(self, path: str | Path, dtype: np.dtype | str) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.n_tokens = self.path.stat().st_size // self.dtype.itemsize
        self._tokens: np.ndarray | None = None

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            self._tokens = read_tokens(self.path, self.dtype)
        return self._tokens

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None}  # a memmap is reopened, never pickled


class TrainBatches(IterableDataset):
    """Endless whole batches ``start, start + 1, ...``; yields (x, y), so use a DataLoader
    with ``batch_size=None``. With W workers, worker w yields ``start + w, start + w + W, ...``;
    the DataLoader takes one batch from each worker in turn, so the order is unchanged."""

    def __init__(
        self,
        path: str | Path,
        dtype: np.dtype | str,
        *,
        block_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        start: int = 0,
        sampler: str = "random",
        world_size: int = 1,
    ) -> None:
        self.file = _TokenFile(path, dtype)
        if self.file.n_tokens < block_size + 1:
            raise ValueError(f"{path} has {self.file.n_tokens} tokens, fewer than block_size + 1")
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.start = start
        self.sampler = sampler
        self.world_size = world_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        for index in itertools.count(self.start + worker_id, num_workers):
            yield self.batch(index)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return train_batch(
            self.file.tokens,
            index,
            seed=self.seed,
            rank=self.rank,
            block_size=self.block_size,
            batch_size=self.batch_size,
            sampler=self.sampler,
            world_size=self.world_size,
        )


class EvalWindows(Dataset):
    """Consecutive windows over a whole split, for val/test.

    Window k is ``x = tokens[kT : kT + T]``, ``y = tokens[kT + 1 : kT + T + 1]``; the last
    one is padded (x with 0, y with `IGNORE_INDEX`), so every token but the first is a
    target exactly once. A split of fewer than 2 tokens has no windows.
    """

    def __init__(self, path: str | Path, dtype: np.dtype | str, block_size: int) -> None:
        self.file = _TokenFile(path, dtype)
        self.block_size = block_size

    def __len__(self) -> int:
        targets = self.file.n_tokens - 1
        return max(0, -(-targets // self.block_size))

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        T = self.block_size
        chunk = np.asarray(self.file.tokens[k * T : k * T + T + 1], dtype=np.int64)
        x = torch.zeros(T, dtype=torch.long)
        y = torch.full((T,), IGNORE_INDEX, dtype=torch.long)
        x[: len(chunk) - 1] = torch.from_numpy(chunk[:-1])
        y[: len(chunk) - 1] = torch.from_numpy(chunk[1:])
        return x, y
