"""mia-plan: a plan from a small synthetic results file, and each bad input in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planning"))
from synthetic_sweep import SMALL_LAW, results_file

from mia.cli.plan import plan
from mia.cli.train import budget_steps
from mia.conf import compose
from mia.errors import UserError
from mia.model import ModelConfig
from mia.planning.flops import matmul_parameters


def run_plan(*args: str) -> dict:
    return plan(compose("plan", list(args)))


def test_a_plan_names_the_model_its_steps_and_a_command_that_trains_exactly_that(tmp_path, capsys):
    source = results_file(tmp_path / "isoflop.json", law=SMALL_LAW)
    values = run_plan(f"from={source}", "budget=1e12", "format=json")
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(values))
    for key in ("command", "predicted_val_loss", "interval", "params", "tokens", "steps"):
        assert key in values
    lo, hi = values["interval"]
    assert lo <= values["predicted_val_loss"] <= hi
    assert values["params"] == pytest.approx(values["n_opt"], rel=0.15)  # the nearest width
    assert values["tokens"] == values["steps"] * 2048
    # The command trains what was printed: its model has `params`, its budget `steps` steps
    # (computed by mia-train's own budget_flops rule).
    args = values["command"].split()
    assert args[0] == "mia-train"
    cfg = compose("train", args[1:])
    model = {k: v for k, v in cfg.model.items() if k not in ("compile", "init_from")}
    model = {**model, "max_seq_len": cfg.data.block_size, "vocab_size": 65}
    assert matmul_parameters(ModelConfig.from_dict(model)) == values["params"]
    assert budget_steps(cfg, model=model) == values["steps"]
    # The text form says the same.
    run_plan(f"from={source}", "budget=1e12")
    text = capsys.readouterr().out
    assert values["command"] in text
    assert f"{values['params']:,} parameters" in text
    assert f"{values['steps']:,} steps" in text


def test_a_plan_past_four_epochs_warns_in_one_line(tmp_path, capsys):
    source = results_file(tmp_path / "isoflop.json", law=SMALL_LAW, train_tokens=200_000)
    run_plan(f"from={source}", "budget=1e12")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "epochs" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")


def _no_runs(path: Path) -> Path:
    (path / "0").mkdir(parents=True)  # a job that never finished: no metrics.json
    (path / "0" / "settings.yaml").write_text("budget_flops: 1.0e+11\n")
    return path


def _sweep(**kwargs):
    return lambda p: results_file(p / "r.json", law=SMALL_LAW, **kwargs)


@pytest.mark.parametrize(
    ("make", "budget", "message"),
    [
        (lambda p: p / "missing.json", "1e12", "no such file or folder"),
        (_sweep(), "1e10", "below the sweep's smallest budget"),
        (_sweep(widths=(32,)), "1e12", "three or more model sizes"),
        (_sweep(budgets=(1e11,)), "1e12", "two or more"),
        (lambda p: _no_runs(p / "sweep"), "1e12", "no finished runs"),
        (_sweep(), "lots", "budget=lots: must be a number"),
    ],
    ids=["missing", "below", "one-size", "one-budget", "no-runs", "not-a-number"],
)
def test_bad_input_is_refused_with_its_reason(tmp_path, make, budget, message):
    source = make(tmp_path)
    with pytest.raises(UserError, match=message):
        run_plan(f"from={source}", f"budget={budget}")


def test_the_command_says_a_mistake_in_one_line_and_exits_2(run_module, tmp_path):
    source = results_file(tmp_path / "r.json", widths=(32,), law=SMALL_LAW)
    done = run_module(["mia.cli.plan", f"from={source}", "budget=1e12"], timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: from=") and "sizes" in lines[0]
    assert done.stdout == ""
