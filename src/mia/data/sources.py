"""Local files as streams of text: plain or gzip text, JSON Lines, JSON and Parquet.

A plain or gzip text file streams as pieces of one continuous text (decoded as UTF-8 in
blocks, so memory does not grow with the file). A JSON Lines, JSON or Parquet file streams
as documents: the string in ``text_field`` of each record. Parquet is read a batch of rows
at a time by pyarrow; JSON Lines a line at a time; a ``.json`` file holding one JSON array
is the one format read whole (write JSON Lines for big corpora).

Bad input ends in a `UserError` that names the file (and the line, for JSON Lines).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mia.errors import UserError

BLOCK_BYTES = 1 << 20  # read size
DOCUMENT_SUFFIXES = (".jsonl", ".json", ".parquet")
_JSON_SUFFIXES = (".jsonl", ".json")


def base_suffix(path: Path) -> str:
    """The suffix that names the format, past a final ``.gz`` (``a.jsonl.gz`` -> ``.jsonl``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def holds_documents(path: Path) -> bool:
    """Whether a file is read as records (JSON Lines, JSON, Parquet) rather than as text."""
    return base_suffix(path) in DOCUMENT_SUFFIXES


def file_digest(paths: list[Path]) -> str:
    """SHA-256 over each file's byte length and bytes, in order (streamed)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.stat().st_size}\n".encode())
        with path.open("rb") as raw:
            while block := raw.read(BLOCK_BYTES):
                digest.update(block)
    return digest.hexdigest()


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def text_pieces(path: Path, setting: str) -> Iterator[str]:
    """The UTF-8 text of a plain or gzip file, in pieces of about `BLOCK_BYTES`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with _open_binary(path) as raw:
            while True:
                block = raw.read(BLOCK_BYTES)
                try:
                    piece = decoder.decode(block, final=not block)
                except UnicodeDecodeError as err:
                    raise UserError(
                        f"{path} is not UTF-8 text (bad byte at offset {offset + err.start}); "
                        f"convert it (iconv -t UTF-8) or drop it from {setting}"
                    ) from None
                if piece:
                    yield piece
                if not block:
                    return
                offset += len(block)
    except (OSError, EOFError) as err:  # e.g. a truncated or not-really-gzip file
        raise UserError(f"{path} cannot be read ({err}); fix or drop it from {setting}") from None


def documents(path: Path, text_field: str, setting: str) -> Iterator[str]:
    """The `text_field` string of each record of a JSON Lines, JSON or Parquet file."""
    if base_suffix(path) == ".parquet":
        yield from _parquet_documents(path, text_field, setting)
    else:
        yield from _json_documents(path, text_field, setting)


def _json_documents(path: Path, text_field: str, setting: str) -> Iterator[str]:
    with _open_binary(path) as raw:
        first = raw.read(64).lstrip()
    if base_suffix(path) == ".json" and first.startswith(b"["):
        records = _parse_json(b"".join(_byte_blocks(path)), path, None, setting)
        if not isinstance(records, list):
            raise UserError(f"{path} is not a list of records; give JSON Lines or a JSON array")
        for number, record in enumerate(records, 1):
            yield _field(record, text_field, f"{path} record {number}")
        return
    line_pieces: list[str] = []
    number = 0
    for piece in text_pieces(path, setting):
        lines = piece.split("\n")
        for line in lines[:-1]:
            line_pieces.append(line)
            number += 1
            if document := _json_line("".join(line_pieces), path, number, text_field, setting):
                yield document
            line_pieces = []
        line_pieces.append(lines[-1])
    if document := _json_line("".join(line_pieces), path, number + 1, text_field, setting):
        yield document


def _json_line(line: str, path: Path, number: int, text_field: str, setting: str) -> str | None:
    if not line.strip():
        return None
    return _field(_parse_json(line, path, number, setting), text_field, f"{path} line {number}")


def _parse_json(text: str | bytes, path: Path, number: int | None, setting: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        where = f"{path} line {number}" if number is not None else str(path)
        reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        raise UserError(
            f"{where} is not JSON ({reason}); fix or remove it, or drop the file from {setting}"
        ) from None


def _field(record: Any, text_field: str, where: str) -> str:
    if not isinstance(record, dict) or text_field not in record:
        fields = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
        raise UserError(
            f"{where} has no field {text_field!r} (it has: {fields}); "
            f"set data.text_field to the field that holds the text"
        )
    value = record[text_field]
    if not isinstance(value, str):
        raise UserError(
            f"{where}: field {text_field!r} is {type(value).__name__}, not text; "
            "set data.text_field to a field that holds strings"
        )
    return value


def _byte_blocks(path: Path) -> Iterator[bytes]:
    with _open_binary(path) as raw:
        while block := raw.read(BLOCK_BYTES):
            yield block


def _parquet_documents(path: Path, text_field: str, setting: str) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise UserError(
            f"{path} is not a Parquet file ({err}); fix or drop it from {setting}"
        ) from None
    names = file.schema_arrow.names
    if text_field not in names:
        raise UserError(
            f"{path} has no column {text_field!r} (it has: {', '.join(names)}); "
            "set data.text_field to the column that holds the text"
        )
    column_type = file.schema_arrow.field(text_field).type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise UserError(
            f"{path}: column {text_field!r} is {column_type}, not text; "
            "set data.text_field to a string column"
        )
    for batch in file.iter_batches(batch_size=1024, columns=[text_field]):
        for value in batch.column(0).to_pylist():
            if value is not None:
                yield value
