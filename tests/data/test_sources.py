"""Document files for data=text: JSON Lines, JSON, Parquet and gzip, and their errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mia.data import open_corpus, prepare_dataset
from mia.errors import UserError

DOCS = ["First document.\nIt has two lines.", "Second: ünïcode 😀", "Third\n\nwith a gap\n"]


def write_jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    lines = [json.dumps({field: doc, "id": i}) for i, doc in enumerate(docs)]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def write_parquet(path: Path, docs: list[str], field: str = "text") -> Path:
    pq.write_table(pa.table({field: docs, "id": list(range(len(docs)))}), path)
    return path


def _documents(files: list[Path], **data: object) -> list[str]:
    corpus = open_corpus({"corpus": "text", "files": [str(f) for f in files], **data}, "/nowhere")
    assert corpus.documents
    return list(corpus.read())


def test_jsonl_json_parquet_and_gzip_files_are_documents(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "a.jsonl", DOCS)
    array = tmp_path / "b.json"
    array.write_text(json.dumps([{"text": d} for d in DOCS]), "utf-8")
    parquet = write_parquet(tmp_path / "c.parquet", DOCS)
    zipped = tmp_path / "d.jsonl.gz"
    zipped.write_bytes(gzip.compress(jsonl.read_bytes()))
    plain = tmp_path / "e.txt"
    plain.write_text("a whole text file\nis one document\n", "utf-8")
    docs = _documents([jsonl, array, parquet, zipped, plain])
    assert docs == DOCS * 4 + ["a whole text file\nis one document\n"]


def test_text_field_picks_the_field(tmp_path: Path) -> None:
    files = [write_jsonl(tmp_path / "a.jsonl", DOCS, "story")]
    files.append(write_parquet(tmp_path / "b.parquet", DOCS, "story"))
    assert _documents(files, text_field="story") == DOCS * 2


def test_gzip_text_reads_like_the_plain_file(tmp_path: Path, play_text: str) -> None:
    plain = tmp_path / "play.txt"
    plain.write_text(play_text, "utf-8")
    zipped = tmp_path / "play.txt.gz"
    zipped.write_bytes(gzip.compress(play_text.encode()))
    corpora = [open_corpus({"corpus": "text", "files": [str(f)]}, "/x") for f in (plain, zipped)]
    assert not any(c.documents for c in corpora)
    assert "".join(corpora[0].read()) == "".join(corpora[1].read()) == play_text
    assert corpora[0].characters() == corpora[1].characters() == len(play_text)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n', r"bad\.jsonl line 3 is not JSON"),
        ("field.jsonl", '{"body": "x"}\n', r"field\.jsonl line 1 has no field 'text' \(it has: b"),
        ("type.jsonl", '{"text": 3}\n', r"type\.jsonl line 1: field 'text' is int, not text"),
        ("list.json", '[{"text": "a"}, {"tex": "b"}]', r"list\.json record 2 has no field 'text'"),
    ],
)
def test_bad_records_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, "utf-8")
    with pytest.raises(UserError, match=message):
        _documents([path])


def test_parquet_without_the_column_names_its_columns(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", DOCS, "body")
    with pytest.raises(UserError, match=r"a\.parquet has no column 'text' \(it has: body, id\)"):
        _documents([path])


def test_not_parquet_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    path.write_text("not parquet", "utf-8")
    with pytest.raises(UserError, match=r"a\.parquet is not a Parquet file"):
        _documents([path])


def test_a_corpus_with_no_documents_is_a_user_error(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n", "utf-8")
    data = {"corpus": "text", "files": [str(path)], "splits": {"train": 1, "val": 0, "test": 0}}
    with pytest.raises(UserError, match=r"the text corpus has no documents"):
        prepare_dataset(data, {"kind": "char"}, cache_dir)
