"""A pseudo-random permutation of ``[0, n)`` computed one element at a time.

`permute(positions, n, key)` maps each position to its place in a shuffle of ``[0, n)``
that `key` chooses, without ever building the shuffle: memory stays constant however
large ``n`` is (a corpus bigger than memory has more windows than a `randperm` should
hold), and any element is a pure function of ``(position, n, key)``, so a resumed run or a
DataLoader worker computes the same shuffle independently.

It is a balanced Feistel network over the smallest even number of bits that holds ``n``,
with a SplitMix64 round function; values that land outside ``[0, n)`` are sent through
the network again until they land inside ("cycle walking"), which keeps it a bijection
on ``[0, n)``. The domain is under 4n, so that takes under 4 passes on average.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 6
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-spread 64-bit hash of each uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _round_keys(key: int) -> list[np.uint64]:
    return [np.uint64((key * _GOLDEN + r * 0x632BE59BD9B4E019) % 2**64) for r in range(ROUNDS)]


def _feistel(x: np.ndarray, half_bits: int, keys: list[np.uint64]) -> np.ndarray:
    shift, mask = np.uint64(half_bits), np.uint64((1 << half_bits) - 1)
    left, right = x >> shift, x & mask
    for k in keys:
        left, right = right, left ^ (_mix(right ^ k) & mask)
    return (left << shift) | right


def permute(positions: np.ndarray, n: int, key: int) -> np.ndarray:
    """Images of `positions` (integers in ``[0, n)``) under the permutation of ``[0, n)``
    that `key` (any integer) chooses; an int64 array of the same shape."""
    if n < 1:
        raise ValueError(f"cannot permute an empty range (n={n})")
    x = np.asarray(positions, dtype=np.int64)
    if x.size and (x.min() < 0 or x.max() >= n):
        raise ValueError(f"positions must lie in [0, {n})")
    half_bits = max(1, ((n - 1).bit_length() + 1) // 2)
    keys = _round_keys(key)
    out = x.astype(np.uint64).ravel()
    outside = np.ones(out.shape, dtype=bool)
    while outside.any():
        out[outside] = _feistel(out[outside], half_bits, keys)
        outside = out >= np.uint64(n)
    return out.astype(np.int64).reshape(x.shape)
