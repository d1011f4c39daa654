"""Fixtures shared across test folders: a private cache folder and small synthetic text."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from synthetic_text import make_play_text

# One intra-op thread per process, in this process and the commands it starts: pytest-xdist
# runs one worker per core, and the tiny models here only lose time to threads that wait on
# each other (a 20-step run takes several times longer with two threads per worker on 2 cores).
# Set before torch is imported; an OMP_NUM_THREADS already set wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tiny Shakespeare is not in the repository; tests that need the real file skip without it.
TINY_SHAKESPEARE = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty cache folder (``paths.cache_dir``) private to the test."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def play_text() -> str:
    """About 30,000 characters of synthetic play text."""
    return make_play_text(400)


@pytest.fixture
def text_file(tmp_path: Path, play_text: str) -> Path:
    """`play_text` written to a UTF-8 file."""
    path = tmp_path / "play.txt"
    path.write_text(play_text, encoding="utf-8")
    return path


@pytest.fixture
def tiny_shakespeare() -> Path:
    """The real Tiny Shakespeare input.txt, or skip."""
    if not TINY_SHAKESPEARE.is_file():
        pytest.skip(f"Tiny Shakespeare not found at {TINY_SHAKESPEARE}")
    return TINY_SHAKESPEARE


@pytest.fixture
def command_cache_dir(cache_dir: Path) -> Path:
    """The MIA_CACHE_DIR that `run_module` gives a command (test folders may share one)."""
    return cache_dir


@pytest.fixture
def run_module(tmp_path: Path, command_cache_dir: Path):
    """Run `python -m <module> <args>` in tmp_path as a user would; returns the result."""

    def run(args: Sequence[str], timeout: int = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "MIA_CACHE_DIR": str(command_cache_dir), "PYTHONWARNINGS": "ignore"}
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def code_running_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint whose unpickling would create a marker file; returns (checkpoint, marker)."""
    import torch

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"model": Payload()}, "state_dict": {}}, evil)
    return evil, marker
