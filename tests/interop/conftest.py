"""Tiny trained checkpoints and their exports, built once per test session."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from interop_support import UNICODE_SAMPLES, export_to, play_corpus, random_unicode, train_overrides

from mia.conf import compose


@pytest.fixture(scope="session")
def sample_texts(tiny_shakespeare_if_here) -> list[str]:
    """Texts to compare tokenizers on: the samples above, play text and slices of it, random
    Unicode, and slices of Tiny Shakespeare where it is here."""
    rng = random.Random(0)
    corpus = play_corpus(300, seed=1)
    samples = [*UNICODE_SAMPLES, corpus]
    samples += [corpus[i : i + rng.randint(1, 2000)] for i in range(0, 40000, 400)]
    samples += [random_unicode(rng, rng.randint(1, 120)) for _ in range(300)]
    if tiny_shakespeare_if_here is not None:
        shakespeare = tiny_shakespeare_if_here.read_text("utf-8")
        samples += [shakespeare[i : i + 3000] for i in range(0, len(shakespeare), 100_000)]
    return samples


@pytest.fixture(scope="session")
def tiny_shakespeare_if_here() -> Path | None:
    path = Path(__file__).resolve().parents[2].parent / "shared/data/tinyshakespeare/input.txt"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text(play_corpus(700), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def trained_run(tmp_path_factory, corpus: Path, cache: Path, name: str, *extra: str) -> Path:
    from mia.cli.train import train

    out = tmp_path_factory.mktemp(name) / "run"
    train(compose("train", train_overrides(corpus, cache, out, *extra)))
    return out


@pytest.fixture(scope="session")
def sp_run(tmp_path_factory, corpus, session_cache) -> Path:
    """A run folder of a tiny llama model with a SentencePiece BPE vocabulary of 400."""
    return trained_run(
        tmp_path_factory,
        corpus,
        session_cache,
        "sp",
        "tokenizer=sentencepiece",
        "tokenizer.vocab_size=400",
    )


@pytest.fixture(scope="session")
def char_run(tmp_path_factory, corpus, session_cache) -> Path:
    """A run folder of a tiny llama model with the char tokenizer."""
    return trained_run(tmp_path_factory, corpus, session_cache, "char", "tokenizer=char")


@pytest.fixture(scope="session")
def sp_export(tmp_path_factory, sp_run) -> Path:
    return export_to(sp_run / "checkpoints" / "last.ckpt", tmp_path_factory.mktemp("x") / "sp")


@pytest.fixture(scope="session")
def char_export(tmp_path_factory, char_run) -> Path:
    return export_to(char_run / "checkpoints" / "last.ckpt", tmp_path_factory.mktemp("x") / "char")


@pytest.fixture
def command_cache_dir(session_cache: Path) -> Path:
    return session_cache
