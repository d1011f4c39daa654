"""Which text goes to train, val and test, decided while the corpus streams by.

- One continuous text (Shakespeare, ``.txt`` files) splits into contiguous character ranges:
  the first ``train`` fraction, then ``val``, then ``test`` (``int(n * train)`` characters
  for train and ``int(n * test)`` for test, the rest for val: with 0.9/0.1/0.0 this is
  nanoGPT's split). Any split may be empty except train.
- Documents split by document: document ``i`` goes to the split its number from a fixed
  random stream (`DOCUMENT_SPLIT_SEED`) falls in, so each document lands in exactly one
  split, the same one on every run and machine, whatever the order of later documents;
  each split gets about its fraction of the documents.
- A corpus with its own splits (a dataset's ``validation``) keeps them.

`split_stream` yields ``(split, text)`` items: pieces of the text in order (train, val,
test), or whole documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from mia.data.corpora import SPLITS, Corpus
from mia.errors import UserError

DOCUMENT_SPLIT_SEED = 20240611
_DRAWS = 1 << 14  # document split numbers drawn at a time


def split_fractions(data: Mapping[str, Any]) -> dict[str, float]:
    """``data.splits`` checked: keys train/val/test, each in [0, 1], summing to 1, train > 0."""
    splits = data.get("splits")
    if not isinstance(splits, Mapping) or set(splits) != set(SPLITS):
        raise UserError(
            f"data.splits={splits!r} must give train, val and test fractions, "
            "e.g. data.splits={train:0.9,val:0.05,test:0.05}"
        )
    fractions = {}
    for split in SPLITS:
        value = splits[split]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise UserError(f"data.splits.{split}={value!r} must be a number in [0, 1]")
        fractions[split] = float(value)
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise UserError(
            f"data.splits fractions sum to {total:g}, not 1; adjust data.splits.train/val/test"
        )
    if fractions["train"] == 0:
        raise UserError("data.splits.train is 0; the tokenizer and the model need a train split")
    return fractions


def character_bounds(n: int, fractions: Mapping[str, float]) -> tuple[int, int]:
    """Where train ends and val ends in a text of `n` characters."""
    train_end = int(n * fractions["train"])
    return train_end, max(train_end, n - int(n * fractions["test"]))


def split_text(text: str, fractions: Mapping[str, float]) -> dict[str, str]:
    """Contiguous train/val/test ranges of `text`: disjoint, in order, covering it."""
    train_end, val_end = character_bounds(len(text), fractions)
    return {"train": text[:train_end], "val": text[train_end:val_end], "test": text[val_end:]}


def split_pieces(
    pieces: Iterable[str], n: int, fractions: Mapping[str, float]
) -> Iterator[tuple[str, str]]:
    """`split_text` over a text of `n` characters that arrives in pieces."""
    train_end, val_end = character_bounds(n, fractions)
    bounds = [("train", train_end), ("val", val_end), ("test", n)]
    position, which = 0, 0
    for piece in pieces:
        start = 0
        while start < len(piece):
            split, end = bounds[which]
            take = min(len(piece) - start, end - position)
            if take > 0:
                yield split, piece[start : start + take]
                start += take
                position += take
            if position >= end and which < len(bounds) - 1:
                which += 1
            elif take <= 0:
                raise ValueError(f"the text is longer than the {n} characters counted")


def document_splits(fractions: Mapping[str, float]) -> Iterator[str]:
    """The split of document 0, 1, 2, ...: deterministic, about `fractions` of each."""
    rng = np.random.default_rng(DOCUMENT_SPLIT_SEED)
    edges = np.cumsum([fractions[split] for split in SPLITS])
    edges[-1] = np.inf
    while True:
        for index in np.searchsorted(edges, rng.random(_DRAWS), side="right"):
            yield SPLITS[index]


def split_stream(
    corpus: Corpus, fractions: Mapping[str, float]
) -> Callable[[], Iterator[tuple[str, str]]]:
    """A re-readable stream of ``(split, text)``; every call reads the corpus anew."""
    if corpus.own_splits is not None:
        own = corpus.own_splits
        return lambda: ((split, doc) for split in SPLITS for doc in own[split]() if doc)
    if corpus.documents:
        return lambda: zip(document_splits(fractions), _nonempty(corpus.read()), strict=False)
    n = corpus.characters()
    return lambda: split_pieces(corpus.read(), n, fractions)


def _nonempty(documents: Iterable[str]) -> Iterator[str]:
    return (doc for doc in documents if doc)
