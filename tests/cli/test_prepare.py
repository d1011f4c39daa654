"""mia-prepare: the plain function over composed configs, and the command's exit behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mia.cli.prepare import prepare
from mia.conf import compose

MIA_PREPARE = Path(sys.executable).parent / "mia-prepare"


@pytest.mark.parametrize("data", ["shakespeare", "tiny_shakespeare", "text", "hf"])
@pytest.mark.parametrize("tokenizer", ["sentencepiece", "char"])
def test_configs_compose(data: str, tokenizer: str) -> None:
    cfg = compose("prepare", [f"data={data}", f"tokenizer={tokenizer}"])
    assert cfg.data.corpus == data and cfg.tokenizer.kind == tokenizer
    assert {"splits", "block_size", "batch_size", "num_workers"} <= set(cfg.data)
    assert sum(cfg.data.splits.values()) == pytest.approx(1.0)
    assert cfg.task_name == "prepare"


def test_prepare_returns_and_prints_the_figures(
    text_file: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [
        "data=text",
        f"data.files=[{text_file}]",
        "data.block_size=8",
        "tokenizer=sentencepiece",
        "tokenizer.vocab_size=320",
        f"paths.cache_dir={cache_dir}",
    ]
    figures = prepare(compose("prepare", overrides))
    assert list(figures) == ["train", "val", "test"]
    assert sum(f["characters"] for f in figures.values()) == len(text_file.read_text())
    assert all(f["tokens"] > 0 and f["chars_per_token"] > 1 for f in figures.values())
    out = capsys.readouterr().out
    assert "vocabulary 320" in out and f"{figures['train']['tokens']:,}" in out
    assert str(cache_dir / "prepared") in out.replace("\n", "")
    prepare(compose("prepare", overrides))
    assert "reused: " in capsys.readouterr().out


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path: Path, cache_dir: Path) -> None:
    command = [sys.executable, "-m", "mia.cli.prepare", "data=text", "data.files=[nothing/*.txt]"]
    result = _run([*command, f"paths.cache_dir={cache_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: data.files pattern 'nothing/*.txt' matches no file; fix the pattern"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_split_fractions_end_in_one_line(tmp_path: Path, cache_dir: Path) -> None:
    args = ["data=tiny_shakespeare", "data.splits.val=0.5", f"paths.cache_dir={cache_dir}"]
    result = _run([str(MIA_PREPARE), *args], cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "data.splits fractions sum to 1.4, not 1" in result.stderr


def test_tiny_shakespeare_char_level(
    tiny_shakespeare: Path, tmp_path: Path, cache_dir: Path
) -> None:
    args = [
        "data=tiny_shakespeare",
        f"data.path={tiny_shakespeare}",
        "tokenizer=char",
        f"paths.cache_dir={cache_dir}",
    ]
    result = _run([str(MIA_PREPARE), *args], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vocabulary 65" in result.stdout
    cells = [[c.strip() for c in row.split("│")[1:-1]] for row in result.stdout.splitlines()]
    rows = {row[0]: row[1:3] for row in cells if row}
    assert rows["train"] == ["1,003,854", "1,003,854"]  # characters, tokens
    assert rows["val"] == ["111,540", "111,540"]
    assert rows["test"] == ["0", "0"]


def test_a_bad_jsonl_line_is_one_line_naming_file_and_line(tmp_path: Path, cache_dir: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "fine"}\n{"text": "broken\n', "utf-8")
    args = ["data=text", f"data.files=[{docs}]", f"paths.cache_dir={cache_dir}"]
    result = _run([str(MIA_PREPARE), *args], cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {docs} line 2 is not JSON")


def test_a_dataset_that_cannot_be_loaded_offline_says_how_to_get_it(
    tmp_path: Path, cache_dir: Path
) -> None:
    args = ["data=hf", "data.name=roneneldan/TinyStories", f"paths.cache_dir={cache_dir}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    result = subprocess.run(
        [str(MIA_PREPARE), *args], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "data.name=roneneldan/TinyStories cannot be loaded" in result.stderr
    assert "data.name=/path/to/folder" in result.stderr
