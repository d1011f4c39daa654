"""Optuna searches as a user runs them: killed and continued, shared by two workers, pruned."""

import signal
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import finish, wait_for

# Tiny trials of 10 steps, one validation each (debug=fast validates every 10 steps); a
# stopped worker's trial is failed after 5 s without a heartbeat (2 s let a live worker's
# trial be failed on a busy machine, whose heartbeat thread waits for the CPU).
SEARCH = [
    "hparams_search=optuna",
    "trainer.max_steps=10",
    "hydra.sweeper.heartbeat_interval=1",
    "hydra.sweeper.grace_period=5",
    'hydra.sweeper.params={model.dim:"choice(32,48)",optimizer.lr:"interval(1e-3,2e-2)"}',
]


def load_study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path}/outputs/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def count_complete(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("select count(*) from trials where state='COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_killed_search_continues_where_it_stopped(mia_train, tmp_path):
    first = mia_train([*SEARCH, "hydra.sweeper.n_trials=4"], "first.txt")
    wait_for(lambda: count_complete(tmp_path / "outputs" / "optuna.db") >= 2, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = {t.number: t.value for t in load_study(tmp_path).trials if t.state.is_finished()}
    assert len(before) >= 2

    output = finish(mia_train([*SEARCH, "hydra.sweeper.n_trials=4"], "second.txt"))
    trials = load_study(tmp_path).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    assert {t.number: t.value for t in trials if t.number in before} == before  # kept
    cut = [t for t in trials if t.state == TrialState.FAIL]
    for trial in cut:  # a trial cut off by the kill is failed, and its parameters run again
        assert any(t.params == trial.params and t.state.is_finished() for t in finished)
    assert "4 complete, 0 pruned" in output


@pytest.mark.slow
def test_two_workers_share_one_study(mia_train, tmp_path):
    args = [*SEARCH, "hydra.sweeper.n_trials=4"]
    a = mia_train([*args, "hydra.sweep.dir=outputs/a"], "a.txt")
    b = mia_train([*args, "hydra.sweep.dir=outputs/b"], "b.txt")
    finish(a)
    finish(b)
    trials = load_study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    runs = [Path(t.user_attrs["run_dir"]) for t in trials]
    assert len(set(runs)) == 4 and all((run / "metrics.json").is_file() for run in runs)
    # every trial ran once: the two sweep folders hold exactly the four run folders
    jobs = sorted(p for w in ("a", "b") for p in (tmp_path / "outputs" / w).iterdir() if p.is_dir())
    assert sorted(runs) == jobs
    assert {run.parent.name for run in runs} == {"a", "b"}  # both workers did work


@pytest.mark.slow
def test_a_pruned_trial_stops_at_its_first_validation_and_shows_as_pruned(mia_train, tmp_path):
    prune_all = "+hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,upper:0.0}"
    output = finish(mia_train([*SEARCH, "hydra.sweeper.n_trials=2", prune_all]))
    trials = load_study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for trial in trials:
        assert list(trial.intermediate_values) == [10]  # debug=fast validates every 10 steps
        assert not (Path(trial.user_attrs["run_dir"]) / "metrics.json").exists()
    assert "pruned@10" in output and "0 complete, 2 pruned" in output
    assert (tmp_path / "outputs" / "multiruns").is_dir()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.storage=mysql://nobody@127.0.0.1:1/mia", "hydra.sweeper.storage="),
        ('hydra.sweeper.params={model.dim:"choice(32,"}', "cannot parse"),
        ("hydra.sweeper.pruner=medain", "hydra.sweeper.pruner=medain"),
    ],
)
def test_search_mistakes_are_one_line(mia_train, override, message):
    proc = mia_train(["hparams_search=optuna", override])
    assert proc.wait(timeout=120) == 2
    output = proc.log()
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if line.startswith("error:")]
    assert message in line
