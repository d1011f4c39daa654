"""A reused prepared folder is checked (sizes against meta.json, token ids against the
vocabulary, the tokenizer), and both rebuilds its error offers work and give the same bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mia.data import prepare_dataset
from mia.data.corpora import open_corpus
from mia.errors import UserError

CHAR = {"kind": "char"}


def _data(text_file: Path) -> dict:
    splits = {"train": 0.8, "val": 0.1, "test": 0.1}
    return {"corpus": "text", "files": [str(text_file)], "splits": splits, "block_size": 8}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "meta.json"}


def _cut(name: str, size: int):
    def damage(folder: Path) -> None:
        with (folder / name).open("r+b") as handle:
            handle.truncate(size)

    return damage


def _past_vocab(folder: Path) -> None:
    tokens = np.memmap(folder / "train.bin", dtype=np.uint16, mode="r+")
    tokens[-1] = 60000
    tokens.flush()


def _no_vocab_size(folder: Path) -> None:
    meta = (folder / "meta.json").read_text()
    (folder / "meta.json").write_text(meta.replace('"vocab_size"', '"vocab"'))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_cut("train.bin", 1000), "train.bin has 1000 bytes, but meta.json counts"),
        (_cut("val.bin", 7), "val.bin has 7 bytes"),
        (lambda f: (f / "test.bin").unlink(), "test.bin is missing"),
        (_past_vocab, "train.bin holds token id 60000, past the vocabulary of"),
        (_cut("meta.json", 30), "meta.json cannot be read"),
        (_no_vocab_size, "meta.json lacks its fields"),
        (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda f: (f / "tokenizer.json").write_text("{"), "tokenizer.json does not load"),
        (lambda f: (f / "meta.json").unlink(), "meta.json cannot be read"),
    ],
    ids=[
        "cut",
        "odd",
        "missing-bin",
        "past-vocab",
        "meta-cut",
        "meta-fields",
        "no-tokenizer",
        "bad-tokenizer",
        "no-meta",
    ],
)
def test_a_damaged_cache_is_one_line_naming_the_file_and_the_rebuild(
    text_file, cache_dir, damage, message
):
    prepared = prepare_dataset(_data(text_file), CHAR, cache_dir)
    damage(prepared.directory)
    before = {p.name: p.read_bytes() for p in prepared.directory.iterdir()}
    with pytest.raises(UserError) as err:
        prepare_dataset(_data(text_file), CHAR, cache_dir)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"prepared data {prepared.directory}/") and message in text
    assert f"delete {prepared.directory}" in text and "force=true" in text
    assert {p.name: p.read_bytes() for p in prepared.directory.iterdir()} == before


def test_both_offered_rebuilds_give_the_same_bytes(text_file, cache_dir):
    first = prepare_dataset(_data(text_file), CHAR, cache_dir)
    original = _bytes(first.directory)
    _cut("train.bin", 1000)(first.directory)
    forced = prepare_dataset(_data(text_file), CHAR, cache_dir, force=True)
    assert forced.directory == first.directory and not forced.reused
    assert _bytes(forced.directory) == original
    assert [p.name for p in (cache_dir / "prepared").iterdir()] == [first.directory.name]

    _past_vocab(first.directory)
    shutil.rmtree(first.directory)  # the other suggestion: delete the folder
    again = prepare_dataset(_data(text_file), CHAR, cache_dir)
    assert _bytes(again.directory) == original


def test_a_folder_in_data_files_is_refused_with_a_pattern_that_works(tmp_path, play_text):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(play_text, encoding="utf-8")
    with pytest.raises(UserError, match=r"is a folder; name its files, e\.g\. 'data\.files="):
        open_corpus({"corpus": "text", "files": [str(folder)]}, tmp_path / "cache")
    corpus = open_corpus({"corpus": "text", "files": [f"{folder}/*.txt"]}, tmp_path / "cache")
    assert corpus.name == "text"


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_a_cache_dir_that_cannot_be_a_folder_is_refused(text_file, tmp_path, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cache = blocker if kind == "file" else blocker / "cache"
    with pytest.raises(UserError, match=r"^paths\.cache_dir=.*(is a file|cannot be created)"):
        prepare_dataset(_data(text_file), CHAR, cache)
    assert blocker.read_text() == "x"
