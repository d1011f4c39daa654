"""prepare_dataset: token files that decode to the splits, a cache keyed by what made it,
reuse, atomic publication under concurrency, and errors for corpora that are too small."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mia.data import prepare_dataset, split_text
from mia.errors import UserError

SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
CHAR = {"kind": "char"}
BPE = {"kind": "sentencepiece", "model_type": "bpe", "vocab_size": 320}


def _data(text_file: Path, **overrides: object) -> dict:
    return {
        "corpus": "text",
        "files": [str(text_file)],
        "splits": SPLITS,
        "block_size": 8,
    } | overrides


@pytest.mark.parametrize("tokenizer", [CHAR, BPE], ids=["char", "bpe"])
def test_token_files_decode_to_the_splits(
    text_file: Path, play_text: str, cache_dir: Path, tokenizer: dict
) -> None:
    prepared = prepare_dataset(_data(text_file), tokenizer, cache_dir)
    assert not prepared.reused
    assert prepared.directory.parent == cache_dir / "prepared"
    assert prepared.directory.name.startswith("text-")
    tok = prepared.load_tokenizer()
    meta = json.loads((prepared.directory / "meta.json").read_text())
    assert meta == prepared.meta
    assert meta["vocab_size"] == tok.vocab_size and meta["dtype"] == "uint16"
    assert meta["tokenizer"]["kind"] == tokenizer["kind"]
    assert meta["source"]["characters"] == len(play_text)
    for split, text in split_text(play_text, SPLITS).items():
        tokens = prepared.tokens(split)
        assert tokens.dtype == np.uint16
        assert tok.decode(tokens) == text
        figures = meta["splits"][split]
        assert figures["characters"] == len(text) and figures["tokens"] == len(tokens)
        assert figures["bytes"] == len(text.encode())


def test_second_run_reuses_the_folder(
    text_file: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = prepare_dataset(_data(text_file), CHAR, cache_dir)
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.directory.iterdir()}
    with caplog.at_level(logging.DEBUG, logger="mia.data.prepare"):
        second = prepare_dataset(_data(text_file, block_size=4, batch_size=99), CHAR, cache_dir)
    assert second.reused and second.directory == first.directory
    assert {p.name: p.stat().st_mtime_ns for p in second.directory.iterdir()} == mtimes
    assert f"reusing prepared data in {first.directory}" in caplog.text


def test_the_key_follows_what_produced_the_tokens(text_file: Path, cache_dir: Path) -> None:
    base = prepare_dataset(_data(text_file), CHAR, cache_dir).directory
    other_splits = prepare_dataset(
        _data(text_file, splits={"train": 0.9, "val": 0.1, "test": 0.0}), CHAR, cache_dir
    )
    other_tokenizer = prepare_dataset(_data(text_file), BPE, cache_dir)
    text_file.write_text(text_file.read_text() + "More.\n")
    other_text = prepare_dataset(_data(text_file), CHAR, cache_dir)
    dirs = {base, other_splits.directory, other_tokenizer.directory, other_text.directory}
    assert len(dirs) == 4
    assert {p.name for p in (cache_dir / "prepared").iterdir()} == {d.name for d in dirs}


def test_empty_test_split_gives_zero_tokens(text_file: Path, cache_dir: Path) -> None:
    data = _data(text_file, splits={"train": 0.9, "val": 0.1, "test": 0.0})
    prepared = prepare_dataset(data, CHAR, cache_dir)
    assert prepared.bin_path("test").stat().st_size == 0
    assert len(prepared.tokens("test")) == 0
    assert prepared.meta["splits"]["test"] == {
        "characters": 0,
        "bytes": 0,
        "tokens": 0,
        "chars_per_token": None,
    }


def test_corpus_too_small_for_block_size_names_the_setting(
    text_file: Path, cache_dir: Path
) -> None:
    with pytest.raises(UserError, match=r"too few for data\.block_size=1000000 .* lower"):
        prepare_dataset(_data(text_file, block_size=1_000_000), CHAR, cache_dir)


def test_corpus_too_small_for_vocabulary_names_the_setting(
    text_file: Path, cache_dir: Path
) -> None:
    tokenizer = {"kind": "sentencepiece", "vocab_size": 4000}
    with pytest.raises(UserError, match=r"too small for tokenizer\.vocab_size=4000"):
        prepare_dataset(_data(text_file), tokenizer, cache_dir)
    assert not any((cache_dir / "prepared").glob("*"))  # nothing half-made is left


def test_tiny_shakespeare_char_figures(tiny_shakespeare: Path, cache_dir: Path) -> None:
    data = {
        "corpus": "tiny_shakespeare",
        "path": str(tiny_shakespeare),
        "splits": {"train": 0.9, "val": 0.1, "test": 0.0},
    }
    prepared = prepare_dataset(data, CHAR, cache_dir)
    assert prepared.meta["vocab_size"] == 65
    figures = {split: f["tokens"] for split, f in prepared.meta["splits"].items()}
    assert figures == {"train": 1_003_854, "val": 111_540, "test": 0}


_RACER = """
import sys, time
from pathlib import Path
from mia.data import prepare

encode = prepare.encode_splits
def slow_encode(*args, **kwargs):  # hold the temporary folder long enough to overlap
    figures = encode(*args, **kwargs)
    time.sleep(1.0)
    return figures
prepare.encode_splits = slow_encode

text_file, cache_dir, go = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.01)
data = {"corpus": "text", "files": [text_file], "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}
result = prepare.prepare_dataset(data, {"kind": "sentencepiece", "vocab_size": 320}, cache_dir)
print(result.directory, result.reused)
"""


@pytest.mark.slow
def test_two_processes_preparing_at_once_leave_one_valid_folder(
    tmp_path: Path, text_file: Path, play_text: str, cache_dir: Path
) -> None:
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(text_file), str(cache_dir), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    results = [out.split() for out, _ in outputs]
    assert results[0][0] == results[1][0]
    assert sorted(reused for _, reused in results) == ["False", "True"]

    folders = list((cache_dir / "prepared").iterdir())
    assert [f.name for f in folders] == [Path(results[0][0]).name]  # no temporary folder left
    prepared = prepare_dataset(_data(text_file), BPE, cache_dir)
    assert prepared.reused
    tok = prepared.load_tokenizer()
    for split, text in split_text(play_text, SPLITS).items():
        assert tok.decode(prepared.tokens(split)) == text
