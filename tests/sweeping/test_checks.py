"""Mistakes in a search end in one line before the first trial, and leave the study as it was."""

import subprocess
import sys
from pathlib import Path

import pytest

from mia.conf import compose
from mia.errors import UserError
from mia.sweeping.checks import check_keys, check_objectives, check_same_search, search_record

APP = Path(__file__).parent / "toy" / "toy_app.py"


def test_a_misspelt_search_key_is_named_with_the_setting_it_resembles():
    cfg = compose("train", [])
    check_keys(cfg, ["optimizer.lr", "model.dim", "+model.new_thing", "~callbacks.progress_bar"])
    with pytest.raises(UserError) as err:
        check_keys(cfg, ["optimizer.lrr"])
    assert "the config has no such setting; did you mean optimizer.lr?" in str(err.value)
    assert "+" not in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "metrics", "message"),
    [
        ([], ["val/bpcc"], "no run reports it; did you mean val/bpc?"),
        (["trainer.max_steps=100", "trainer.val_check_interval=500"], ["val/bpc"], "no validation"),
        (["trainer.limit_val_batches=0"], ["val/loss"], "no validation"),
        (["test=false"], ["test/bpc"], "test=false runs no test"),
    ],
)
def test_an_objective_no_run_produces_is_refused(overrides, metrics, message):
    with pytest.raises(UserError, match=message):
        check_objectives(compose("train", overrides), metrics)


def test_objectives_a_run_reports_pass():
    cfg = compose("train", ["trainer.max_steps=600", "trainer.val_check_interval=500"])
    check_objectives(cfg, ["val/bpc", "model/params", "time/tokens_per_s"])


def test_another_search_under_a_study_name_is_refused_naming_the_differences():
    from optuna.distributions import CategoricalDistribution

    old = search_record({"x": CategoricalDistribution([1, 2])}, ["y=0"], ["value"], ["minimize"])
    new = search_record({"x": CategoricalDistribution([1, 3])}, ["y=1"], ["value"], ["maximize"])
    check_same_search("s", old, old)
    with pytest.raises(UserError) as err:
        check_same_search("s", old, new)
    message = str(err.value)
    assert "space differs in x" in message and "y=0" in message and "maximize" in message


def run(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(APP),
            "--multirun",
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"hydra.sweeper.storage=sqlite:///{tmp_path}/study.db",
            "hydra.sweeper.study_name=shared",
            "hydra.sweeper.n_trials=2",
            *overrides,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["x=choice(5,6)"], "the study belongs to another search (space differs in x)"),
        (["y=0"], "the study belongs to another search"),
        (["hydra.sweeper.direction=maximize"], "directions: study ['minimize']"),
        (["xx=choice(1,2)"], "hydra.sweeper.params.xx: the config has no such setting; did you"),
    ],
)
def test_a_refused_search_leaves_the_study_byte_for_byte(tmp_path, overrides, message):
    first = run(tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "study.db").read_bytes()
    refused = run(tmp_path, *overrides)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert message in line
    assert (tmp_path / "study.db").read_bytes() == before
