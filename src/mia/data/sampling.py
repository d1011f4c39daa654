"""A bounded, deterministic sample of the train split for training the tokenizer.

The train split is read as one text (documents one per line run, each followed by a
newline) cut into blocks of `block_chars` characters. A reservoir (Algorithm R, seeded)
keeps ``sample_chars // block_chars`` of them, so memory stays at ``sample_chars``
whatever the corpus size, and every block has the same chance to be kept. The kept blocks
are joined in corpus order. A train split that fits in the reservoir is kept whole and in
order: the sample is then exactly the train split, as if nothing were sampled.

The same pass counts what the encoding pass needs to show progress (bytes of every split),
and, for a char tokenizer, the characters each split uses.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

BLOCK_CHARS = 1 << 16


@dataclass
class Sample:
    """The tokenizer's training text and what the pass saw."""

    text: str = ""
    train_characters: int = 0  # characters of the whole train split
    total_bytes: int = 0  # UTF-8 bytes of every split
    chars: dict[str, set[str]] = field(default_factory=dict)  # characters used, per split


def sample_train_text(
    items: Iterable[tuple[str, str]],
    documents: bool,
    sample_chars: int,
    seed: int = 0,
    count_chars: bool = False,
    block_chars: int = BLOCK_CHARS,
) -> Sample:
    """Reservoir-sample `items` (``(split, text)``, as `mia.data.splitting.split_stream`
    yields them) down to at most `sample_chars` characters of the train split."""
    block_chars = max(1, min(block_chars, sample_chars))
    capacity = sample_chars // block_chars  # 0: nothing to sample, only count
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    pending: list[str] = []
    pending_chars = 0
    blocks = 0
    result = Sample()

    def keep(block: str) -> None:
        nonlocal blocks
        if len(reservoir) < capacity:
            reservoir.append((blocks, block))
        else:
            slot = rng.randrange(blocks + 1)
            if slot < capacity:
                reservoir[slot] = (blocks, block)
        blocks += 1

    for split, text in items:
        result.total_bytes += len(text.encode())
        if count_chars:
            result.chars.setdefault(split, set()).update(text)
        if split != "train":
            continue
        result.train_characters += len(text) + documents
        if not capacity:
            continue
        if documents:
            text += "\n"
        pending.append(text)
        pending_chars += len(text)
        if pending_chars >= block_chars:
            joined = "".join(pending)
            whole = len(joined) - len(joined) % block_chars
            for start in range(0, whole, block_chars):
                keep(joined[start : start + block_chars])
            rest = joined[whole:]
            pending, pending_chars = ([rest], len(rest)) if rest else ([], 0)
    if pending and capacity:
        keep("".join(pending))
    reservoir.sort()
    result.text = "".join(block for _, block in reservoir)
    return result
