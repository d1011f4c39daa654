"""Split fractions: contiguous, disjoint, covering, nanoGPT's boundary; bad fractions."""

from __future__ import annotations

import random

import pytest

from mia.data import split_fractions, split_text
from mia.errors import UserError


@pytest.mark.parametrize(
    "fractions",
    [
        {"train": 0.9, "val": 0.05, "test": 0.05},
        {"train": 0.9, "val": 0.1, "test": 0.0},
        {"train": 0.8, "val": 0.0, "test": 0.2},
        {"train": 1.0, "val": 0.0, "test": 0.0},
        {"train": 1 / 3, "val": 1 / 3, "test": 1 / 3},
    ],
)
def test_splits_are_contiguous_disjoint_and_cover_the_text(fractions: dict) -> None:
    rng = random.Random(0)
    for n in [0, 1, 2, 7, 100, 1001, 123_457]:
        text = "".join(rng.choice("ab\nc") for _ in range(n))
        splits = split_text(text, fractions)
        assert list(splits) == ["train", "val", "test"]
        assert "".join(splits.values()) == text  # in order, disjoint, covering
        for name, part in splits.items():
            assert abs(len(part) - n * fractions[name]) < 2  # val takes the rounding


def test_tiny_shakespeare_boundary_matches_nanogpt() -> None:
    n = 1_115_394
    splits = split_text("x" * n, {"train": 0.9, "val": 0.1, "test": 0.0})
    assert len(splits["train"]) == int(n * 0.9) == 1_003_854
    assert len(splits["val"]) == 111_540 and splits["test"] == ""


def test_fractions_from_config() -> None:
    assert split_fractions({"splits": {"train": 0.9, "val": 0.1, "test": 0}}) == {
        "train": 0.9,
        "val": 0.1,
        "test": 0.0,
    }


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        (None, "data.splits=None must give train, val and test"),
        ({"train": 0.9, "val": 0.1}, "must give train, val and test"),
        ({"train": 0.9, "val": 0.1, "test": 0.0, "dev": 0.0}, "must give train, val and test"),
        (
            {"train": 1.2, "val": -0.2, "test": 0.0},
            r"data.splits.train=1.2 must be a number in \[0, 1\]",
        ),
        ({"train": 0.9, "val": "a", "test": 0.0}, "data.splits.val='a' must be a number"),
        ({"train": 0.9, "val": 0.2, "test": 0.1}, "data.splits fractions sum to 1.2, not 1"),
        ({"train": 0.0, "val": 0.5, "test": 0.5}, "data.splits.train is 0"),
    ],
)
def test_bad_fractions_are_user_errors(splits: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        split_fractions({"splits": splits})
