"""Reading corpora: text files and globs, Tiny Shakespeare from a path, the cache or a URL."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mia.data import corpora, open_corpus
from mia.errors import UserError


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def test_text_files_and_globs_concatenate_in_order(tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path / "b" / "2.txt", "two\n")
    _write(tmp_path / "b" / "1.txt", "one")  # no final newline: one is added
    first = _write(tmp_path / "first.txt", "zero ünïcode 😀\n")
    files = [str(first), str(tmp_path / "b" / "*.txt")]
    corpus = open_corpus({"corpus": "text", "files": files}, cache_dir)
    assert "".join(corpus.read()) == "zero ünïcode 😀\none\ntwo\n"
    reordered = open_corpus({"corpus": "text", "files": files[::-1]}, cache_dir)
    assert reordered.sha256 != corpus.sha256


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "data.files is empty"),
        (["missing.txt"], "data.files entry 'missing.txt' does not exist"),
        (["nothing/*.txt"], "data.files pattern 'nothing/\\*.txt' matches no file"),
        (["empty.txt"], "empty.txt is empty; give a file with text in data.files"),
        (["latin1.txt"], "latin1.txt is not UTF-8 text .* drop it from data.files"),
    ],
)
def test_bad_text_files_are_user_errors(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, files: list, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "empty.txt", "\n \n")
    _write(tmp_path / "latin1.txt", "café".encode("latin-1"))
    with pytest.raises(UserError, match=message):
        open_corpus({"corpus": "text", "files": files}, cache_dir)


def test_unknown_corpus_is_a_user_error(cache_dir: Path) -> None:
    with pytest.raises(UserError, match=r"unknown data\.corpus 'wiki'; choose data=shakespeare"):
        open_corpus({"corpus": "wiki"}, cache_dir)


def test_tiny_shakespeare_missing_path_is_a_user_error(cache_dir: Path) -> None:
    with pytest.raises(UserError, match=r"data\.path=/no/such/input\.txt does not exist"):
        open_corpus({"corpus": "tiny_shakespeare", "path": "/no/such/input.txt"}, cache_dir)


def test_tiny_shakespeare_with_wrong_content_is_a_user_error(
    tmp_path: Path, cache_dir: Path
) -> None:
    path = _write(tmp_path / "input.txt", "not the right text\n")
    with pytest.raises(UserError, match=r"is not the standard Tiny Shakespeare .* data=text"):
        open_corpus({"corpus": "tiny_shakespeare", "path": str(path)}, cache_dir)


def test_offline_without_the_file_says_where_to_put_it(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    expected = cache_dir / "tiny_shakespeare" / "input.txt"
    with pytest.raises(UserError) as err:
        open_corpus({"corpus": "tiny_shakespeare", "path": None}, cache_dir)
    message = str(err.value)
    assert "could not download" in message and "no network" in message
    assert f"put input.txt at {expected} or pass data.path=" in message
    assert "\n" not in message
    assert list((cache_dir / "tiny_shakespeare").iterdir()) == []  # no partial file left


def test_download_into_the_cache_checks_the_digest(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _write(tmp_path / "served.txt", "First Citizen:\nSpeak, speak.\n" * 100)
    url = source.as_uri()
    data = {"corpus": "tiny_shakespeare", "path": None, "url": url}
    with pytest.raises(UserError, match=r"downloaded from .* has sha256 .*, expected"):
        open_corpus(data, cache_dir)
    assert list((cache_dir / "tiny_shakespeare").iterdir()) == []

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_SHA256", digest)
    corpus = open_corpus(data, cache_dir)
    cached = cache_dir / "tiny_shakespeare" / "input.txt"
    assert cached.read_bytes() == source.read_bytes()
    assert [p.name for p in cached.parent.iterdir()] == ["input.txt"]
    assert "".join(corpus.read()) == source.read_text() and corpus.sha256 == digest
    source.unlink()  # the cached copy is used from now on
    assert open_corpus(data, cache_dir).sha256 == digest


def test_real_tiny_shakespeare_downloads_from_a_file_url(
    tiny_shakespeare: Path, cache_dir: Path
) -> None:
    data = {"corpus": "tiny_shakespeare", "url": tiny_shakespeare.as_uri()}
    corpus = open_corpus(data, cache_dir)
    assert corpus.sha256 == corpora.TINY_SHAKESPEARE_SHA256
    assert corpus.characters() == len("".join(corpus.read())) == 1_115_394
