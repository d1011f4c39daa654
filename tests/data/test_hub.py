"""data=hf through Hugging Face `datasets`, offline: a local folder with its own splits, a
local Parquet or JSON Lines file, and the errors a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mia.data import prepare_dataset
from mia.errors import UserError

CHAR = {"kind": "char"}


def story(i: int) -> str:
    return f"Once upon a time, story {i} began.\nIt ended well."


def _jsonl(path: Path, ids: range, field: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({field: story(i)}) + "\n" for i in ids), "utf-8")
    return path


def _hf(name: Path | str, **overrides: object) -> dict:
    return {
        "corpus": "hf",
        "name": str(name),
        "splits": {"train": 0.8, "val": 0.1, "test": 0.1},
    } | overrides


def _documents(prepared, split: str) -> list[str]:
    tok = prepared.load_tokenizer()
    tokens = np.asarray(prepared.tokens(split))
    cuts = np.flatnonzero(tokens == tok.eos_id)
    return [tok.decode(part[:-1]) for part in np.split(tokens, cuts[:-1] + 1) if part.size]


def test_a_local_folder_with_its_own_validation_split(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "stories"
    _jsonl(folder / "train.jsonl", range(0, 40))
    _jsonl(folder / "validation.jsonl", range(40, 50))
    _jsonl(folder / "test.jsonl", range(50, 55))
    data = _hf(folder, val_split="validation", test_split="test")
    prepared = prepare_dataset(data, CHAR, cache_dir)
    assert _documents(prepared, "train") == [story(i) for i in range(40)]
    assert _documents(prepared, "val") == [story(i) for i in range(40, 50)]
    assert _documents(prepared, "test") == [story(i) for i in range(50, 55)]
    assert prepared.meta["source"]["documents"] == 55
    assert prepare_dataset(data, CHAR, cache_dir).reused
    # without val_split, the train split is split by documents
    split = prepare_dataset(_hf(folder), CHAR, cache_dir)
    parts = [_documents(split, s) for s in ("train", "val", "test")]
    assert sorted(d for part in parts for d in part) == sorted(story(i) for i in range(40))


def test_a_local_parquet_file(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "stories.parquet"
    pq.write_table(pa.table({"story": [story(i) for i in range(30)]}), path)
    data = _hf(path, text_field="story", splits={"train": 1.0, "val": 0.0, "test": 0.0})
    prepared = prepare_dataset(data, {"kind": "sentencepiece", "vocab_size": 300}, cache_dir)
    assert _documents(prepared, "train") == [story(i) for i in range(30)]


def test_changed_files_prepare_anew(tmp_path: Path, cache_dir: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", range(20))
    first = prepare_dataset(_hf(path), CHAR, cache_dir)
    _jsonl(path, range(21))
    assert prepare_dataset(_hf(path), CHAR, cache_dir).directory != first.directory


@pytest.mark.parametrize(
    ("setup", "overrides", "message"),
    [
        ("folder", {"split": "dev"}, r"has no split 'dev' \(it has: train\)"),
        ("folder", {"text_field": "body"}, r"has no field 'body' \(it has: text\)"),
        ("folder", {"name": None}, r"data\.name is not set"),
        ("empty", {}, r"has no documents"),
        ("badline", {}, r"bad\.jsonl line 2 is not JSON"),
        ("folder", {"test_split": "test"}, r"data\.test_split is set without data\.val_split"),
    ],
)
def test_user_errors(
    tmp_path: Path, cache_dir: Path, setup: str, overrides: dict, message: str
) -> None:
    folder = tmp_path / setup
    if setup == "folder":
        _jsonl(folder / "train.jsonl", range(5))
    elif setup == "empty":
        _jsonl(folder / "train.jsonl", range(0))
    else:
        path = _jsonl(folder / "bad.jsonl", range(3))
        lines = path.read_text().splitlines()
        lines[1] = lines[1][:-3]
        path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        prepare_dataset(_hf(folder) | overrides, CHAR, cache_dir)
