"""Results files: a new set replaces the latest and moves it into the history; tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mia.results import RESULTS_DIR, make_result, markdown, write_result


def test_a_new_set_moves_the_old_one_into_history(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    first = make_result("bench", "A bench", ["run", "s"], [["a", 1.5]], command="python x.py")
    second = make_result("bench", "A bench", ["run", "s"], [["a", 1.2]], command="python x.py")
    write_result(first, path)
    write_result(second, path)
    saved = json.loads(path.read_text())
    assert saved["rows"] == [["a", 1.2]]
    assert [h["rows"] for h in saved["history"]] == [[["a", 1.5]]]
    assert {"processor", "cores", "torch"} <= saved["machine"].keys()
    assert saved["date"]


def test_markdown_has_the_rows_the_machine_and_the_command() -> None:
    result = make_result("b", "B", ["run", "tokens/s"], [["x", 12345]], command="python y.py")
    text = markdown(result)
    assert "| run | tokens/s |" in text
    assert "| x | 12,345 |" in text
    assert "python y.py" in text and result["machine"]["processor"] in text


def test_every_results_file_is_stamped_and_its_rows_fit_its_columns() -> None:
    files = sorted(RESULTS_DIR.glob("*.json"))
    assert files
    for path in files:
        result = json.loads(path.read_text(encoding="utf-8"))
        for one in [result, *result["history"]]:
            assert one["date"] and one["command"], path
            assert {"processor", "cores", "torch"} <= one["machine"].keys(), path
            assert all(len(row) <= len(one["columns"]) for row in one["rows"]), path
            markdown(one)


def _sample_outputs():
    """scripts/sample_outputs.py as a module (scripts/ is not a package)."""
    import importlib.util

    path = RESULTS_DIR.parents[1] / "scripts" / "sample_outputs.py"
    spec = importlib.util.spec_from_file_location("sample_outputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


END_OF_RUN = """\
Epoch 0: 100%|####| 30/30\r
Run folder:      outputs/runs/train/t1
Last checkpoint: outputs/runs/train/t1/checkpoints/last.ckpt (step 30)

Next:
  tensorboard --logdir outputs/runs/train/t1
[2026-12-08 01:00:00][mia][INFO] - metrics: {}
Run folder:      outputs/runs/train/t2
Best checkpoint: outputs/runs/train/t2/checkpoints/step000030-val_loss6.1672.ckpt (lowest val/loss)

Next:
  tensorboard --logdir outputs/runs/train/t2
  mia-generate ckpt_path=outputs/runs/train/t2/checkpoints/last.ckpt max_new_tokens=200
Traceback-free tail after the block
"""


def test_sample_outputs_keeps_the_last_end_of_run_block() -> None:
    module = _sample_outputs()
    block = module.end_of_run_block(END_OF_RUN)
    assert block[0] == "Run folder:      outputs/runs/train/t2"
    assert block[-1].startswith("  mia-generate ckpt_path=outputs/runs/train/t2/")
    assert "" in block and "Next:" in block and len(block) == 6
    assert module.end_of_run_block("Run folder: x\nno commands\n") == []
    assert module.indented(["a", "", "  b"]) == "    a\n\n      b"


def test_sample_outputs_runs_a_command_and_writes_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _sample_outputs()
    script = tmp_path / "fake_train.py"
    script.write_text(f"print({END_OF_RUN!r})\n")
    out = tmp_path / "sample.json"
    status = module.main(["--print", "--results", str(out), "--", sys.executable, str(script)])
    assert status == 0
    printed = capsys.readouterr().out
    assert printed.startswith("    Run folder:      outputs/runs/train/t2\n")
    saved = json.loads(out.read_text())
    assert saved["columns"] == ["line"] and saved["rows"][0] == [
        "Run folder:      outputs/runs/train/t2"
    ]
    assert saved["command"].endswith("fake_train.py")
    # A command that fails, or prints no block, is an error, not an empty sample.
    assert module.main(["--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert module.main(["--", sys.executable, "-c", "print('no block')"]) == 1
    assert "error: the output has no end-of-run block" in capsys.readouterr().err
