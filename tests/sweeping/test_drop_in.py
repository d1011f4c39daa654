"""Searches written for other Hydra Optuna setups run after one line changes, and a failure
(a diverging loss) ends its trial, not the search."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from mia.errors import UserError
from mia.training.module import check_finite

APP = Path(__file__).parent / "toy" / "toy_app.py"

# A lightning-hydra-template hparams_search file; only the sweeper override line names
# mia_optuna (its _target_ and storage: null stay as they are).
TEMPLATE_SEARCH = """\
# @package _global_
defaults:
  - override /hydra/sweeper: mia_optuna

optimized_metric: "value"

hydra:
  mode: "MULTIRUN"
  sweeper:
    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper
    storage: null
    study_name: null
    n_jobs: 1
    direction: minimize
    n_trials: 4
    sampler:
      _target_: optuna.samplers.TPESampler
      seed: 1234
      n_startup_trials: 2
    params:
      x: interval(-2.0, 2.0)
      y: choice(-1, 0, 1)
"""

APP_CONFIG = """\
defaults:
  - _self_
  - hparams_search: null
x: 1
y: 1
objectives: 1
fail_when_x_is: null
nan_when_x_is: null
"""


def test_a_lightning_hydra_template_search_file_runs_after_its_one_line_change(tmp_path):
    conf = tmp_path / "conf"
    (conf / "hparams_search").mkdir(parents=True)
    (conf / "config.yaml").write_text(APP_CONFIG)
    (conf / "hparams_search" / "template.yaml").write_text(TEMPLATE_SEARCH)
    done = subprocess.run(
        [
            sys.executable,
            str(APP),
            f"--config-dir={conf}",
            "--config-name=config",
            "hparams_search=template",
            "hydra.sweep.dir=sweep",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    storage = f"sqlite:///{tmp_path}/outputs/optuna.db"  # storage: null is MIA's study file
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


def test_a_loss_that_turns_nan_is_named():
    check_finite(torch.tensor(2.5), 10, {"lr": 1e-3})
    with pytest.raises(UserError, match=r"training diverged: train/loss is nan at step 7 \("):
        check_finite(torch.tensor(float("nan")), 7, {"lr": 1e6})
    with pytest.raises(UserError, match="train/loss is inf"):
        check_finite(torch.tensor(float("inf")), 7, {"lr": 1e6})


@pytest.mark.slow
def test_a_search_with_a_diverging_trial_finishes_with_that_trial_failed_and_named(
    mia_train, tmp_path
):
    args = [
        "hparams_search=optuna",
        "trainer.max_steps=20",
        "model.compile=false",
        "trainer.log_every_n_steps=1",
        "hydra/sweeper/sampler=grid",
        'hydra.sweeper.params={model.dim:"choice(32)",model.n_layers:"choice(2)",'
        'optimizer.weight_decay:"choice(0.1)",optimizer.lr:"choice(3e-3,1e6)"}',
    ]
    proc = mia_train(args)
    assert proc.wait(timeout=600) == 0, proc.log()[-3000:]
    storage = f"sqlite:///{tmp_path}/outputs/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    trials = {
        t.params["optimizer.lr"]: t
        for t in optuna.load_study(study_name=name, storage=storage).trials
    }
    assert trials[3e-3].state == TrialState.COMPLETE
    assert trials[1e6].state == TrialState.FAIL
    assert trials[1e6].user_attrs["mia:failure"].startswith("training diverged: train/loss is")
    table = proc.log()[proc.log().index("Optuna study") :]
    assert "training diverged" in table and "1 complete, 0 pruned, 1 failed" in table
