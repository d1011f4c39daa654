"""Running mia-train sweeps as a user would, on a tiny synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import train_runner


@pytest.fixture(scope="module")
def sweep_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, play_text: str) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text(play_text, encoding="utf-8")
    return path


@pytest.fixture
def mia_train(tmp_path: Path, corpus: Path, sweep_cache: Path):
    """Start `mia-train <TINY> <args>` in tmp_path (`support.start_train`); returns the
    Popen, whose `.log()` reads its stdout+stderr. Still running at the end: killed."""
    yield from train_runner(tmp_path, corpus, sweep_cache)
