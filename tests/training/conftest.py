"""Fixtures for running the real commands on a small synthetic corpus."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from omegaconf import DictConfig

from mia.conf import compose

WORDS = str.split(
    "thou art the lord of all my love and duty sweet prince good night the rest is silence "
    "to be or not to be what light through yonder window breaks now is the winter of our "
    "discontent all the world a stage friends romans countrymen lend me your ears"
)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """About 60 kB of play-like text: speakers and lines of Shakespearean words."""
    rng = random.Random(0)
    lines = []
    for _ in range(700):
        lines.append(rng.choice(["ROMEO:", "JULIET:", "HAMLET:", "KING:"]))
        for _ in range(rng.randint(1, 3)):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))).capitalize())
        lines.append("")
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def fast_overrides(corpus: Path, cache_dir: Path, output_dir: Path) -> list[str]:
    return [
        "debug=fast",
        "data=text",
        f"data.files=[{corpus}]",
        "tokenizer=char",
        f"paths.cache_dir={cache_dir}",
        f"paths.output_dir={output_dir}",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
    ]


@pytest.fixture
def train_config(corpus, cache_dir, tmp_path):
    """compose("train") for a debug=fast run on the corpus, writing into tmp_path/run."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        out = output_dir or tmp_path / "run"
        return compose("train", [*fast_overrides(corpus, cache_dir, out), *overrides])

    return make


@pytest.fixture
def command_cache_dir(cache_dir: Path) -> Path:
    return cache_dir
