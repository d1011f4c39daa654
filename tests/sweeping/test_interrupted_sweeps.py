"""Ctrl-C or SIGTERM in a sweep: one line, exit status 130, and a command that, pasted,
finishes the whole sweep: every job of a grid, exactly n_trials trials of a search (the
cut-off trial failed and run again from its last checkpoint, never counted twice)."""

import signal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import finish, interrupted, wait_for

from mia.sweeping.study import RETRY_ATTR

pytestmark = pytest.mark.slow

# Jobs of 40 steps that sleep 0.2 s after each, so the signal sent once job 0 wrote its first
# checkpoint (step 10) lands while it trains.
SLOW = "+callbacks.slow={_target_:slow_steps.SlowSteps,seconds:0.2}"
SHORT = ["trainer.max_steps=40", "trainer.val_check_interval=10", SLOW]
SIGNALS = [signal.SIGINT, signal.SIGTERM]


def first_checkpoint(runs: Path) -> bool:
    return any(runs.glob("*/0/checkpoints/last.ckpt"))


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_grid_names_the_command_that_finishes_every_job(mia_train, tmp_path, sig):
    first = mia_train(["-m", *SHORT, "model.dim=32,48"], "first.txt")
    runs = tmp_path / "outputs" / "multiruns" / "train"
    wait_for(lambda: first_checkpoint(runs), first)
    first.send_signal(sig)
    args = interrupted(first)
    (grid,) = runs.iterdir()
    assert not (grid / "0" / "metrics.json").exists() and not (grid / "1").exists()
    assert args[-2:] == [f"hydra.sweep.dir={grid.relative_to(tmp_path)}", "resume=true"]

    output = finish(mia_train(args, "second.txt", pasted=True))
    assert f"continuing from {grid}/0/checkpoints/last.ckpt" in output
    assert list(runs.iterdir()) == [grid]  # the same grid, finished
    assert all((grid / job / "metrics.json").is_file() for job in ("0", "1"))
    table = output[output.index("Sweep ") :]
    assert "\n0  " in table and "\n1  " in table


def load_study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path}/outputs/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.parametrize("sig", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_search_continues_with_its_own_command_to_n_trials(mia_train, tmp_path, sig):
    search = [
        "hparams_search=optuna",
        *SHORT,
        'hydra.sweeper.params={model.dim:"choice(32,48)",optimizer.lr:"interval(1e-3,2e-2)"}',
        "hydra.sweeper.n_trials=2",
    ]
    first = mia_train(search, "first.txt")
    runs = tmp_path / "outputs" / "multiruns" / "train"
    wait_for(lambda: first_checkpoint(runs), first)
    first.send_signal(sig)
    args = interrupted(first)
    assert args[-len(search) :] == search  # the command as given: same study, same storage
    assert not any("optuna_trial" in a for a in args)
    cut, queued = load_study(tmp_path).trials  # failed, and its parameters queued again
    assert (cut.state, queued.state) == (TrialState.FAIL, TrialState.WAITING)

    output = finish(mia_train(args, "second.txt", pasted=True))
    trials = load_study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == 0]
    assert retry.params == cut.params
    # The retry continued the cut-off run in its own folder, from its last checkpoint.
    folder = cut.user_attrs["run_dir"]
    assert retry.user_attrs["run_dir"] == folder and Path(folder).parent.parent == runs
    assert f"continuing from {folder}/checkpoints/last.ckpt" in output
    assert "2 complete, 0 pruned, 1 failed, 3 trials in all" in output
    assert "(retry of 0)" in output
