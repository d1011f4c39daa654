"""Memory-mapped token windows: an endless stream of random training batches, and the
consecutive windows that val/test walk through.

Training batch ``i`` is a pure function of ``(seed, i, rank)``: its window offsets come
from a `torch.Generator` seeded with a hash of the three. A run resumed at step ``s``
therefore continues with exactly the batches it would have seen, and data-parallel ranks
draw different batches. The memmap is opened lazily, in whichever process (DataLoader
worker) first reads it.
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

from mia.data.prepare import read_tokens

IGNORE_INDEX = -100  # targets with this value add nothing to the loss (torch's default)


def batch_seed(seed: int, index: int, rank: int) -> int:
    """A 63-bit generator seed that depends on all of (seed, index, rank)."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def train_batch(
    tokens: np.ndarray, index: int, *, seed: int, rank: int, block_size: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch `index` of the stream: `batch_size` random windows of ``block_size + 1`` tokens,
    as ``(x, y)`` int64 tensors of shape (batch_size, block_size), ``y`` = ``x`` shifted by one."""
    generator = torch.Generator().manual_seed(batch_seed(seed, index, rank))
    offsets = torch.randint(0, len(tokens) - block_size, (batch_size,), generator=generator)
    rows = offsets.numpy()[:, None] + np.arange(block_size + 1)
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
    ) -> None:
        self.file = _TokenFile(path, dtype)
        if self.file.n_tokens < block_size + 1:
            raise ValueError(f"{path} has {self.file.n_tokens} tokens, fewer than block_size + 1")
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.start = start

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
