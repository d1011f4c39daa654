"""Document corpora: an end-of-text id after each document; deterministic, disjoint splits
by document; the char tokenizer reserves the id too."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from mia.data import prepare_dataset
from mia.data.splitting import document_splits

SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}
BPE = {"kind": "sentencepiece", "vocab_size": 300}


def doc(i: int) -> str:
    return f"Document {i}.\nIt tells of thing {i * 7 % 13} and more."


def _jsonl(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": doc(i)}) + "\n" for i in range(n)), "utf-8")
    return path


def _split_documents(prepared, split: str) -> list[str]:
    tok = prepared.load_tokenizer()
    tokens = np.asarray(prepared.tokens(split))
    if not tokens.size:
        return []
    assert tokens[-1] == tok.eos_id  # every document ends with the id, the last one too
    cuts = np.flatnonzero(tokens == tok.eos_id)
    return [tok.decode(part) for part in np.split(tokens, cuts[:-1] + 1)]


@pytest.mark.parametrize("tokenizer", [BPE, {"kind": "char"}], ids=["bpe", "char"])
def test_documents_end_with_eos_and_split_disjointly(
    tmp_path: Path, cache_dir: Path, tokenizer: dict
) -> None:
    n = 200
    data = {"corpus": "text", "files": [str(_jsonl(tmp_path / "d.jsonl", n))], "splits": SPLITS}
    prepared = prepare_dataset(data, tokenizer, cache_dir)
    tok = prepared.load_tokenizer()
    assert tok.eos_id is not None and prepared.meta["tokenizer"]["eos_id"] == tok.eos_id
    assert prepared.meta["documents"] is True
    seen = {}
    for split in ("train", "val", "test"):
        docs = [d.removesuffix(tok.decode([tok.eos_id])) for d in _split_documents(prepared, split)]
        seen[split] = docs
        assert prepared.meta["splits"][split]["documents"] == len(docs)
        assert abs(len(docs) - n * SPLITS[split]) < 0.1 * n * 1.5
    # disjoint and covering, each split in corpus order
    assignment = list(itertools.islice(document_splits(SPLITS), n))
    for split, docs in seen.items():
        assert docs == [doc(i) for i in range(n) if assignment[i] == split]
    everything = [d for docs in seen.values() for d in docs]
    assert sorted(everything) == sorted(doc(i) for i in range(n))


def test_document_splits_are_deterministic_and_do_not_depend_on_what_follows() -> None:
    first = list(itertools.islice(document_splits(SPLITS), 50_000))
    again = list(itertools.islice(document_splits(SPLITS), 30_000))
    assert again == first[:30_000]
    counts = {split: first.count(split) / len(first) for split in SPLITS}
    assert counts == pytest.approx(SPLITS, abs=0.01)
    other = list(itertools.islice(document_splits({"train": 0.5, "val": 0.5, "test": 0}), 1000))
    assert "test" not in other


def test_same_corpus_same_splits_in_another_cache(tmp_path: Path) -> None:
    data = {"corpus": "text", "files": [str(_jsonl(tmp_path / "d.jsonl", 80))], "splits": SPLITS}
    a = prepare_dataset(data, {"kind": "char"}, tmp_path / "a")
    b = prepare_dataset(data, {"kind": "char"}, tmp_path / "b")
    for split in ("train", "val", "test"):
        assert a.bin_path(split).read_bytes() == b.bin_path(split).read_bytes()


def test_a_continuous_text_has_no_end_of_text(text_file: Path, cache_dir: Path) -> None:
    data = {"corpus": "text", "files": [str(text_file)], "splits": SPLITS}
    prepared = prepare_dataset(data, {"kind": "char"}, cache_dir)
    assert prepared.load_tokenizer().eos_id is None and prepared.meta["documents"] is False
