"""Optuna studies in a real PostgreSQL server (a throwaway one per test session)."""

from __future__ import annotations

import signal

import optuna
import pytest
from optuna.trial import TrialState
from support import finish, wait_for

pytestmark = pytest.mark.services

# Tiny trials; a stopped worker's trial is failed after 2 s without a heartbeat.
SEARCH = [
    "hparams_search=optuna",
    "trainer.max_steps=20",
    "hydra.sweeper.heartbeat_interval=1",
    "hydra.sweeper.grace_period=2",
    'hydra.sweeper.params={model.dim:"choice(32,48)",optimizer.lr:"interval(1e-3,2e-2)"}',
]


def study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def states(url: str, name: str) -> list[TrialState]:
    try:
        return [t.state for t in study(url, name).get_trials(deepcopy=False)]
    except KeyError:  # not created yet
        return []


def test_two_workers_share_one_study(mia_train, postgres_url):
    args = [*SEARCH, f"hydra.sweeper.storage={postgres_url}", "hydra.sweeper.n_trials=4"]
    args += ["hydra.sweeper.study_name=shared"]
    a = mia_train([*args, "hydra.sweep.dir=outputs/a"], log_name="a.txt")
    b = mia_train([*args, "hydra.sweep.dir=outputs/b"], log_name="b.txt")
    finish(a)
    finish(b)
    trials = study(postgres_url, "shared").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    runs = {t.user_attrs["run_dir"] for t in trials}
    assert len(runs) == 4


def test_a_worker_killed_mid_trial_has_its_trial_failed_and_retried(mia_train, postgres_url):
    args = [*SEARCH, f"hydra.sweeper.storage={postgres_url}", "hydra.sweeper.n_trials=2"]
    args += ["hydra.sweeper.study_name=killed", "trainer.max_steps=2000"]
    first = mia_train([*args, "hydra.sweep.dir=outputs/a"], log_name="a.txt")
    wait_for(lambda: TrialState.RUNNING in states(postgres_url, "killed"), first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The same search (a study belongs to one search): its trials are long enough to be cut.
    finish(mia_train([*args, "hydra.sweep.dir=outputs/b"], log_name="b.txt"))
    trials = study(postgres_url, "killed").trials
    (cut,) = [t for t in trials if t.state == TrialState.FAIL]
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2
    assert any(t.params == cut.params for t in finished)  # retried by the second worker
