"""Streaming preparation: the tokenizer sample is bounded and deterministic, memory does not
follow the corpus, parallel encoding writes the same files as serial, and the plays and
Tiny Shakespeare prepare to the same bytes as before streaming."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
from synthetic_text import make_play_text

from mia.data import encoding, prepare_dataset, sampling, sources, split_text

SPLITS = {"train": 0.9, "val": 0.05, "test": 0.05}


def _items(text: str) -> list[tuple[str, str]]:
    return [(split, part) for split, part in split_text(text, SPLITS).items() if part]


def test_a_small_train_split_is_the_whole_sample(play_text: str) -> None:
    sample = sampling.sample_train_text(_items(play_text), False, 10_000_000)
    assert sample.text == split_text(play_text, SPLITS)["train"]
    assert sample.total_bytes == len(play_text.encode())


def test_a_large_train_split_is_sampled_within_the_bound(play_text: str) -> None:
    items = [("train", play_text[i : i + 997]) for i in range(0, len(play_text), 997)]
    bound = 5_000
    first = sampling.sample_train_text(items, False, bound, seed=0, block_chars=500)
    again = sampling.sample_train_text(items, False, bound, seed=0, block_chars=500)
    other = sampling.sample_train_text(items, False, bound, seed=1, block_chars=500)
    assert bound - 500 < len(first.text) <= bound and first.text == again.text != other.text
    assert first.train_characters == len(play_text)
    blocks = [first.text[i : i + 500] for i in range(0, bound, 500)]
    positions = [play_text.find(block) for block in blocks]
    assert all(p % 500 == 0 for p in positions) and positions == sorted(positions)
    assert positions[-1] > len(play_text) // 2  # drawn from all over, not just the start


def test_chunks_cover_the_stream_and_end_at_newlines(play_text: str) -> None:
    items = [("train", play_text[i : i + 333]) for i in range(0, len(play_text), 333)]
    items.append(("val", "tail without newline"))
    chunks = list(encoding.chunks(items, documents=False))
    assert "".join(c.texts[0] for c in chunks) == play_text + "tail without newline"
    assert all(c.texts[0].endswith("\n") for c in chunks if c.split == "train")
    assert [c.split for c in chunks][-1] == "val"


def _prepare_traced(path: Path, cache_dir: Path, sample_chars: int):
    """Prepare `path` serially; returns the result and Python's peak traced memory."""
    tokenizer = {"kind": "sentencepiece", "vocab_size": 400, "sample_chars": sample_chars}
    data = {"corpus": "text", "files": [str(path)], "splits": SPLITS, "prepare_workers": 1}
    tracemalloc.start()
    try:
        prepared = prepare_dataset(data, tokenizer, cache_dir)
        return prepared, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_corpus_and_token_counts_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1 << 15)
    monkeypatch.setattr(encoding, "CHUNK_CHARS", 1 << 15)
    monkeypatch.setattr(sampling, "BLOCK_CHARS", 4096)
    sample_chars = 40_000
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text("".join(make_play_text(400, seed=s) for s in range(30)), "utf-8")
    text = "".join(make_play_text(400, seed=s) for s in range(120))  # about 4 MB
    large.write_text(text, "utf-8")
    _, small_peak = _prepare_traced(small, tmp_path / "a", sample_chars)
    prepared, peak = _prepare_traced(large, tmp_path / "b", sample_chars)
    assert peak < 1.5 * small_peak and peak < len(text) / 2  # blocks and chunks, not the text

    trained_on = prepared.meta["tokenizer"]["trained_on_characters"]
    assert 0 < trained_on <= sample_chars < len(text) // 90
    tok = prepared.load_tokenizer()
    for split, part in split_text(text, SPLITS).items():
        figures = prepared.meta["splits"][split]
        assert figures["tokens"] == len(tok.encode(part)) == len(prepared.tokens(split))
        assert figures["characters"] == len(part)
    assert prepared.meta["source"]["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("documents", [False, True], ids=["text", "documents"])
def test_parallel_encoding_writes_the_same_files_as_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, documents: bool
) -> None:
    text = "".join(make_play_text(100, seed=s) for s in range(4))
    if documents:
        path = tmp_path / "docs.jsonl"
        lines = [json.dumps({"text": p}) for p in text.split("\n\n")]
        path.write_text("\n".join(lines) + "\n", "utf-8")
    else:
        path = tmp_path / "text.txt"
        path.write_text(text, "utf-8")
    monkeypatch.setattr(encoding, "CHUNK_CHARS", 2000)  # many chunks
    monkeypatch.setattr(encoding, "BYTES_PER_WORKER", 1)  # workers even for a small corpus
    tokenizer = {"kind": "sentencepiece", "vocab_size": 320}
    prepared = {}
    for workers in (1, 2):
        data = {"corpus": "text", "files": [str(path)], "splits": SPLITS}
        data["prepare_workers"] = workers
        prepared[workers] = prepare_dataset(data, tokenizer, tmp_path / f"cache{workers}")
        assert prepared[workers].meta["encoding"]["workers"] == workers
    for split in ("train", "val", "test"):
        serial = prepared[1].bin_path(split).read_bytes()
        assert serial and prepared[2].bin_path(split).read_bytes() == serial


# sha256 (first 16 hex digits) of the token files as prepared before streaming (commit
# 7e3472f), with 2 CPUs: streaming and sampling must not change a byte.
EMPTY = "e3b0c44298fc1c14"
BEFORE = {
    ("shakespeare", "sentencepiece"): ("6d613e0a0a968d82", "b05ebb4abccfe2e8", "30ff279e038ad014"),
    ("shakespeare", "char"): ("bd461eaa509f641d", "0f377f4fdcb3ae06", "6d904c1d277f45f5"),
    ("tiny_shakespeare", "sentencepiece"): ("380ac3548cbc5c73", "63f6e1ab5ae7fd6c", EMPTY),
    ("tiny_shakespeare", "char"): ("6ec305602a99ac28", "d37d30cc0c8327c2", EMPTY),
}
MODEL_BEFORE = {"shakespeare": "cb68744af21de81c", "tiny_shakespeare": "2e69de30d1b6159d"}


@pytest.mark.slow
@pytest.mark.parametrize(("corpus", "kind"), list(BEFORE))
def test_the_plays_and_tiny_shakespeare_prepare_as_before(
    corpus: str, kind: str, cache_dir: Path, tiny_shakespeare: Path
) -> None:
    data = {"corpus": corpus, "path": str(tiny_shakespeare), "splits": SPLITS}
    if corpus == "tiny_shakespeare":
        data["splits"] = {"train": 0.9, "val": 0.1, "test": 0.0}
    prepared = prepare_dataset(data, {"kind": kind}, cache_dir)

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    assert (
        tuple(digest(prepared.bin_path(s)) for s in ("train", "val", "test"))
        == BEFORE[(corpus, kind)]
    )
    if kind == "sentencepiece":
        assert digest(prepared.directory / "tokenizer.model") == MODEL_BEFORE[corpus]
