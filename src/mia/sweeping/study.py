"""Opening a persistent Optuna study: its storage, its name, its pruner, and who counts what.

Every worker of a search (a re-run after a crash, a second process, a SLURM job) opens the
same study from the same database, so the study, not the process, holds the search's state:
- `n_trials` counts the study's finished (complete or pruned) trials;
- a worker records a heartbeat while its trial runs; a trial whose worker died stops
  beating, is marked failed after `grace_period` seconds, and its parameters are queued
  again (Optuna's `RetryHeartbeatStaleTrialCallback`);
- a new trial runs only while the finished and running trials leave room for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from mia.errors import UserError

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# `hydra.sweeper.pruner` shorthands: Optuna's pruners with step-based defaults. Steps are
# training steps (the pruning callback reports at each validation).
PRUNERS: dict[str, dict[str, Any]] = {
    "median": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 3},
    "successive_halving": {"_target_": "optuna.pruners.SuccessiveHalvingPruner"},
    "hyperband": {"_target_": "optuna.pruners.HyperbandPruner"},
}
JOURNAL = "journal://"  # hydra.sweeper.storage=journal://<file>: Optuna's journal file storage
PRUNER_ATTR = "mia:pruner"  # the study's pruner spec, read back by the trials' callbacks
FAILURE_ATTR = "mia:failure"  # why a trial's run failed, in one line
RETRY_ATTR = "mia:retry_of"  # the trial (cut off by Ctrl-C) whose parameters this one runs
RESUME_ATTR = "mia:resume_from"  # that trial's run folder, whose last checkpoint it continues


def default_study_name(
    experiment: str | None,
    space: Mapping[str, BaseDistribution],
    fixed: Sequence[str],
    direction: str,
) -> str:
    """A name that only the same search gets: the experiment, then a hash of the search space
    and the fixed overrides. Running the same command again therefore continues the study."""
    spec = {
        "space": {k: distribution_to_json(v) for k, v in sorted(space.items())},
        "fixed": sorted(fixed),
        "direction": direction,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return f"{experiment or 'train'}-{digest}"


def open_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int = 0,
):
    """Optuna's RDBStorage for a database URL; with a heartbeat, a trial whose worker stopped
    is failed after `grace_period` seconds and retried up to `max_retry` times.

    ``journal://<path>`` is Optuna's JournalStorage over a file instead (no server, for
    clusters with a shared filesystem); it has no heartbeat, so a killed worker's trial stays
    running in the study."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    if not url:
        raise UserError(
            "hydra.sweeper.storage: give a database URL (sqlite:///outputs/optuna.db, "
            "postgresql://user:pass@host/db, mysql://...), so the study survives interruption"
        )
    if url.startswith(JOURNAL):
        return open_journal(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"hydra.sweeper.storage={url}: not a database URL") from None
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                reason = f"cannot create {folder} ({err})"
                raise UserError(f"hydra.sweeper.storage={url}: {reason}") from None
        # Several workers may write at once: wait for the file lock rather than fail.
        engine_kwargs["connect_args"] = {"timeout": 60}
    callback = None
    if heartbeat_interval is not None and max_retry > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if heartbeat_interval is None:
        grace_period = None
    last_error: Exception | None = None
    for attempt in range(5):  # workers starting together may race to create the tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=callback,
                )
        except ImportError as err:
            raise UserError(
                f"hydra.sweeper.storage={url}: the database driver is missing ({err}); "
                "install it: pip install -e '.[postgres]' (psycopg 3) for postgresql://"
            ) from None
        except (SQLAlchemyError, ValueError, OSError) as err:
            last_error = err
            time.sleep(0.5 * (attempt + 1))
    reason = str(last_error).strip().splitlines()[0] if last_error else "unknown error"
    raise UserError(f"hydra.sweeper.storage={url}: cannot open the database ({reason})")


def open_journal(url: str):
    """Optuna's JournalStorage in the file that ``journal://<path>`` names (its folder is
    created); several workers append to it under the file lock Optuna takes."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(url.removeprefix(JOURNAL)).expanduser()
    if not path.name:
        raise UserError(
            f"hydra.sweeper.storage={url}: give a file, e.g. journal://outputs/optuna.log"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as err:
        raise UserError(f"hydra.sweeper.storage={url}: cannot use {path} ({err})") from None


def pruner_spec(pruner: Any) -> dict[str, Any] | None:
    """`hydra.sweeper.pruner` as an instantiable dict: a shorthand name, a dict, or null."""
    if pruner in (None, "none", "null", False):
        return None
    if isinstance(pruner, str):
        if pruner not in PRUNERS:
            choices = ", ".join([*PRUNERS, "null"])
            raise UserError(f"hydra.sweeper.pruner={pruner}: choose one of {choices}")
        return dict(PRUNERS[pruner])
    if isinstance(pruner, Mapping) and "_target_" in pruner:
        return dict(pruner)
    raise UserError(
        "hydra.sweeper.pruner: give median, successive_halving, hyperband, null, or a dict "
        "with _target_ (an optuna.pruners class) and its arguments"
    )


def make_pruner(spec: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    from hydra.utils import instantiate

    if spec is None:
        return optuna.pruners.NopPruner()
    try:
        return instantiate(dict(spec))
    except Exception as err:  # a wrong class or argument in the user's config
        reason = str(err).strip().splitlines()[-1]
        target = spec.get("_target_")
        raise UserError(f"hydra.sweeper.pruner: cannot build {target} ({reason})") from None


def motpe_removed(*args: Any, **kwargs: Any) -> None:
    raise ValueError(
        "The 'motpe' sampler was removed in Optuna 4.0. Use 'hydra/sweeper/sampler=tpe' "
        "instead. TPESampler now handles multi-objective optimization."
    )


def make_sampler(
    spec: Mapping[str, Any] | None,
    trial_number: int | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
):
    """The sampler for one trial. A seeded sampler draws trial k with seed + k, so a search is
    reproducible, yet a re-run or a second worker never repeats another trial's draw. An
    option left null keeps Optuna's default; the grid sampler gets `grid` as its space."""
    from hydra.utils import instantiate

    if not spec:
        return optuna.samplers.TPESampler()
    spec = {k: v for k, v in spec.items() if v is not None and k != "_partial_"}
    if trial_number is not None and spec.get("seed") is not None:
        spec["seed"] = int(spec["seed"]) + trial_number
    if grid is not None:
        spec["search_space"] = {k: list(v) for k, v in grid.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return instantiate(spec, _convert_="all")
    except Exception as err:
        reason = str(err).strip().splitlines()[-1]
        target = spec.get("_target_")
        raise UserError(f"hydra.sweeper.sampler: cannot build {target} ({reason})") from None


def is_grid(spec: Mapping[str, Any] | None) -> bool:
    return bool(spec) and str(spec.get("_target_", "")).endswith("GridSampler")


def run_failed(trial: FrozenTrial) -> bool:
    """A trial whose run failed (as opposed to one cut off with its worker, which is retried)."""
    return trial.state == TrialState.FAIL and FAILURE_ATTR in trial.user_attrs


def counts(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study, over all workers. Finished: complete, pruned,
    or failed by its run; a trial cut off with its worker does not count, it runs again."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED or run_failed(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return finished, running


def has_room(study: optuna.Study, trial_number: int, n_trials: int) -> bool:
    """Whether trial `trial_number` fits in the budget: finished trials plus running trials
    that were created before it stay below n_trials. Trial numbers come from the database,
    so two workers asking at once cannot both take the last place."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED or run_failed(t) for t in trials)
    ahead = sum(t.state == TrialState.RUNNING and t.number < trial_number for t in trials)
    return finished + ahead < n_trials


def is_surplus(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get("mia:surplus"))
