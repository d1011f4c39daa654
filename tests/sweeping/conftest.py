"""Running mia-train sweeps as a user would, on a tiny synthetic corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

# A few seconds per job: a 2-layer width-32 model, character tokens, 20 steps.
TINY = [
    "debug=fast",
    "data=text",
    "tokenizer=char",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.text_samples=null",
]


TOY = Path(__file__).parent / "toy"


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
    """Start `mia-train <TINY> <args>` in tmp_path (`pasted=True`: `mia-train <args>`, a
    command as printed); returns the Popen (stdout+stderr to a file whose text `.log()`
    reads). The toy folder is on PYTHONPATH, for callbacks such as `slow_steps.SlowSteps`."""

    def start(
        args: Sequence[str], log_name: str = "log.txt", pasted: bool = False
    ) -> subprocess.Popen:
        flags = [a for a in args if a.startswith("-") and "=" not in a]  # -m before overrides
        rest = [a for a in args if a not in flags]
        command = list(args) if pasted else [*flags, *TINY, f"data.files=[{corpus}]", *rest]
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(TOY)) if p)
        env = {
            **os.environ,
            "MIA_CACHE_DIR": str(sweep_cache),
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": path,
        }
        log = open(tmp_path / log_name, "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mia.cli.train", *command],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.log = lambda: (tmp_path / log_name).read_text()  # type: ignore[attr-defined]
        return proc

    return start
