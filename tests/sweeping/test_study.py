"""The study's bookkeeping: names, budget across workers, storage and pruner settings."""

import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from mia.errors import UserError
from mia.sweeping.study import (
    default_study_name,
    has_room,
    make_pruner,
    make_sampler,
    open_storage,
    pruner_spec,
)

SPACE = {"optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True)}


def test_the_same_search_gets_the_same_study_name_and_another_search_another():
    name = default_study_name("shakespeare_cpu", SPACE, ["trainer.max_steps=300"], "minimize")
    assert name.startswith("shakespeare_cpu-")
    assert name == default_study_name(
        "shakespeare_cpu", SPACE, ["trainer.max_steps=300"], "minimize"
    )
    others = {
        default_study_name("shakespeare_cpu", SPACE, ["trainer.max_steps=600"], "minimize"),
        default_study_name(
            "shakespeare_cpu", {"model.dim": CategoricalDistribution([1])}, [], "minimize"
        ),
        default_study_name(None, SPACE, ["trainer.max_steps=300"], "minimize"),
        default_study_name("shakespeare_cpu", SPACE, ["trainer.max_steps=300"], "maximize"),
    }
    assert name not in others and len(others) == 4


def test_a_trial_runs_only_while_finished_and_earlier_running_trials_leave_room():
    study = optuna.create_study()
    done = [study.ask() for _ in range(3)]
    for trial in done[:2]:
        study.tell(trial, 1.0)
    study.tell(done[2], state=TrialState.PRUNED)
    failed = study.ask()
    study.tell(failed, state=TrialState.FAIL)  # failed trials do not count
    a, b = study.ask(), study.ask()  # two workers asking at once for the last places
    assert has_room(study, a.number, n_trials=4)
    assert not has_room(study, b.number, n_trials=4)  # a took the last place
    assert has_room(study, b.number, n_trials=5)


def test_seeded_samplers_draw_each_trial_with_its_own_seed():
    spec = {"_target_": "optuna.samplers.RandomSampler", "seed": 10}

    def draw(number):
        study = optuna.create_study(sampler=make_sampler(spec, number))
        return study.ask().suggest_float("x", 0, 1)

    assert draw(3) == draw(3)
    assert len({draw(n) for n in range(5)}) == 5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "give a database URL"),
        ("nonsense", "not a database URL"),
        ("postgresql://user:pw@127.0.0.1:1/mia", "pip install -e '.[postgres]' (psycopg 3)"),
    ],
)
def test_a_storage_that_cannot_be_used_is_one_line(url, message, monkeypatch):
    # As on a machine without the postgres extra: SQLAlchemy's postgresql:// needs psycopg 3.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(UserError) as err:
        open_storage(url)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_sqlite_file_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot create"):
        open_storage(f"sqlite:///{tmp_path}/file/optuna.db")


def test_a_sqlite_storage_creates_its_folder_and_keeps_studies(tmp_path):
    url = f"sqlite:///{tmp_path}/deep/er/optuna.db"
    study = optuna.create_study(study_name="s", storage=open_storage(url, 1, 2, 1))
    study.optimize(lambda trial: 0.5, n_trials=1)
    again = optuna.load_study(study_name="s", storage=open_storage(url))
    assert [t.value for t in again.trials] == [0.5]


def test_pruner_shorthands_and_mistakes():
    assert isinstance(make_pruner(pruner_spec("median")), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(pruner_spec("hyperband")), optuna.pruners.HyperbandPruner)
    assert isinstance(
        make_pruner(pruner_spec("successive_halving")), optuna.pruners.SuccessiveHalvingPruner
    )
    assert isinstance(make_pruner(pruner_spec(None)), optuna.pruners.NopPruner)
    with pytest.raises(UserError, match="choose one of median"):
        pruner_spec("medain")
    with pytest.raises(UserError, match="cannot build"):
        make_pruner({"_target_": "optuna.pruners.MedianPruner", "n_startup_trial": 3})
