"""Optuna's journal file storage (journal://<file>): the no-server choice for a shared
filesystem, shared by two workers."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from support import finish

from mia.errors import UserError
from mia.sweeping.study import open_storage

SEARCH = [
    "hparams_search=optuna",
    "trainer.max_steps=10",
    'hydra.sweeper.params={model.dim:"choice(32,48)",optimizer.lr:"interval(1e-3,2e-2)"}',
]


def test_a_journal_url_opens_a_journal_file_and_creates_its_folder(tmp_path):
    storage = open_storage(f"journal://{tmp_path}/runs/optuna.log")
    assert isinstance(storage, JournalStorage)
    optuna.create_study(study_name="s", storage=storage).optimize(lambda t: 1.0, n_trials=1)
    assert (tmp_path / "runs" / "optuna.log").stat().st_size > 0


def test_a_journal_url_without_a_file_is_one_line():
    with pytest.raises(UserError, match="give a file"):
        open_storage("journal://")


@pytest.mark.slow
def test_two_workers_share_one_journal_study(mia_train, tmp_path):
    log = tmp_path / "shared" / "optuna.log"
    args = [*SEARCH, f"hydra.sweeper.storage=journal://{log}", "hydra.sweeper.n_trials=4"]
    args += ["hydra.sweeper.study_name=shared"]
    a = mia_train([*args, "hydra.sweep.dir=outputs/a"], log_name="a.txt")
    b = mia_train([*args, "hydra.sweep.dir=outputs/b"], log_name="b.txt")
    finish(a)
    finish(b)
    storage = JournalStorage(JournalFileBackend(str(log)))
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    runs = {t.user_attrs["run_dir"] for t in trials}
    assert {r.split("/")[-2] for r in runs} == {"a", "b"}  # both workers did work
