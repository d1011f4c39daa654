"""An Optuna search whose trials are Hydra jobs: ask Optuna for parameters, launch the job
through Hydra's launcher, tell Optuna the result. The study lives in a database, so the
same command continues it after any interruption, and several workers share it."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from mia.errors import UserError
from mia.sweeping.best_of import DEFAULT_STORAGE, next_step
from mia.sweeping.checks import (
    SEARCH_ATTR,
    check_keys,
    check_objectives,
    check_same_search,
    search_record,
)
from mia.sweeping.report import save_plots, trials_table, write_results
from mia.sweeping.search_space import as_override, grid_points, search_space, suggest
from mia.sweeping.study import (
    FINISHED,
    PRUNER_ATTR,
    counts,
    default_study_name,
    has_room,
    is_grid,
    make_pruner,
    make_sampler,
    open_storage,
    pruner_spec,
)
from mia.sweeping.trials import resumed_in, retry_cut_off, run_batch

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")
SURPLUS_ATTR = "mia:surplus"
# The train config key through which a trial's job learns its study and number.
TRIAL_KEY = "optuna_trial"


@dataclass
class SearchSettings:
    """`hydra.sweeper` of the mia_optuna sweeper (see conf/hparams_search/optuna.yaml)."""

    direction: Any = "minimize"
    study_name: str | None = None
    storage: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    max_failure_rate: float = 0.0
    sampler: Mapping[str, Any] | None = None
    pruner: Any = None
    params: Mapping[str, Any] | None = None
    custom_search_space: str | None = None
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    plots: bool = True

    @property
    def directions(self) -> list[str]:
        given = self.direction if isinstance(self.direction, list) else [self.direction]
        return [str(d).lower() for d in given]

    def check(self) -> None:
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise UserError(
                f"hydra.sweeper.direction={self.direction}: choose minimize or maximize, "
                "or a list of them for several objectives"
            )
        for name in ("n_trials", "n_jobs", "heartbeat_interval", "grace_period"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"hydra.sweeper.{name}={value}: must be an integer >= 1")
        if not isinstance(self.max_retry, int) or self.max_retry < 0:
            raise UserError(f"hydra.sweeper.max_retry={self.max_retry}: must be an integer >= 0")
        if not 0.0 <= float(self.max_failure_rate) <= 1.0:
            raise UserError(
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: must be in [0, 1]"
            )
        if self.grace_period <= self.heartbeat_interval:
            raise UserError(
                f"hydra.sweeper.grace_period={self.grace_period}: must exceed "
                f"heartbeat_interval={self.heartbeat_interval}"
            )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _custom_space(path: str | None) -> Callable[[DictConfig, optuna.Trial], None] | None:
    if not path:
        return None
    from hydra.utils import get_method

    try:
        return get_method(path)
    except Exception as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(f"hydra.sweeper.custom_search_space={path}: {reason}") from None


def objective_metrics(config: DictConfig, n_objectives: int) -> list[str]:
    """The names of the objectives, for the table and the plots."""
    given = OmegaConf.select(config, "optimized_metric")
    names = list(given) if OmegaConf.is_list(given) else [given] if given else []
    if len(names) != n_objectives:
        names = [f"objective {i}" for i in range(n_objectives)] if n_objectives > 1 else ["value"]
    return [str(n) for n in names]


def run_search(
    settings: Mapping[str, Any], arguments: Sequence[str], config: DictConfig, launcher: Any
) -> optuna.Study:
    """Run (or continue) the study until it holds n_trials finished trials."""
    s = SearchSettings(**{k: _plain(v) for k, v in settings.items()})
    s.check()
    directions = s.directions
    space, fixed = search_space(s.params, arguments)
    extend = _custom_space(s.custom_search_space)
    if not space and extend is None:
        log.warning("hydra.sweeper.params is empty: every trial runs the same settings")
    grid = {k: grid_points(k, d) for k, d in space.items()} if is_grid(s.sampler) else None
    n_trials = s.n_trials
    if grid is not None:
        n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
        log.info("grid sampler: %d point(s), so n_trials=%d", n_trials, n_trials)
    experiment = OmegaConf.select(config, "hydra.runtime.choices.experiment")
    direction = directions[0] if len(directions) == 1 else directions
    name = s.study_name or default_study_name(experiment, space, fixed, direction)
    metrics = objective_metrics(config, len(directions))
    check_keys(config, [*space, *(f.split("=", 1)[0] for f in fixed if "=" in f)])
    check_objectives(config, metrics)
    record = search_record(space, fixed, metrics, directions)
    storage_url = s.storage or DEFAULT_STORAGE
    storage = open_storage(storage_url, s.heartbeat_interval, s.grace_period, s.max_retry)
    recorded = recorded_search(storage, name)
    if recorded is not None:
        check_same_search(name, recorded, record)
    spec = pruner_spec(s.pruner)
    if spec is not None and len(directions) > 1:
        raise UserError(
            f"hydra.sweeper.pruner={s.pruner}: Optuna cannot prune a search with several "
            "objectives; set hydra.sweeper.pruner=null"
        )
    make_sampler(s.sampler, grid=grid)  # a sampler that cannot be built: one line, now
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(s.sampler, grid=grid),
        pruner=make_pruner(spec),
        directions=directions,
        load_if_exists=True,
    )
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise UserError(
            f"hydra.sweeper.direction={s.direction}: study '{name}' was created to "
            f"{' and '.join(have)}; use another study_name"
        )
    if recorded is None:
        study.set_user_attr(SEARCH_ATTR, record)
        with warnings.catch_warnings():  # experimental in Optuna; names the axes of its tools
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metrics)
    study.set_user_attr(PRUNER_ATTR, spec)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    finished, running = counts(study)
    log.info(
        "Optuna study '%s' in %s: %d of %d trials finished, %d running; pruner %s. "
        "Run the same command again to continue it; start it on more machines to share it.",
        name,
        storage_url,
        finished,
        n_trials,
        running,
        (spec or {}).get("_target_", "none"),
    )
    trial_spec = {"storage": storage_url, "study": name}

    def configure(trial: optuna.Trial) -> list[str]:
        if grid is None:  # the grid sampler orders its grid by its seed: keep one
            study.sampler = make_sampler(s.sampler, trial.number)
        for key, dist in space.items():
            suggest(trial, key, dist)
        if extend is not None:
            extend(config, trial)
        return [
            *fixed,
            *(as_override(k, v) for k, v in trial.params.items()),
            trial_override({**trial_spec, "number": trial.number}),
            *resumed_in(trial),  # a trial that Ctrl-C cut off continues in its own folder
        ]

    waiting_said = False
    asked: list[optuna.Trial] = []
    try:
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            finished, running = counts(study)
            if finished >= n_trials:
                break
            room = n_trials - finished - running
            if room <= 0:
                if not waiting_said:
                    log.info(
                        "%d trial(s) running in other workers; waiting for them (the trial of a "
                        "stopped worker is retried after grace_period=%ds)",
                        running,
                        s.grace_period,
                    )
                    waiting_said = True
                time.sleep(min(s.heartbeat_interval, 5))
                continue
            waiting_said = False
            batch, asked = [], []
            for _ in range(min(s.n_jobs, room)):
                with warnings.catch_warnings():  # heartbeats: this module beats for the trial
                    warnings.simplefilter("ignore", UserWarning)
                    trial = study.ask()
                asked.append(trial)
                if not has_room(study, trial.number, n_trials):  # another worker took the place
                    trial.set_user_attr(SURPLUS_ATTR, True)
                    study.tell(trial, state=TrialState.FAIL)
                    break
                batch.append((trial, configure(trial)))
            if batch:
                run_batch(
                    study,
                    batch,
                    launcher,
                    metrics,
                    s.max_failure_rate,
                    s.heartbeat_interval,
                    storage,
                )
    except KeyboardInterrupt:
        retry_cut_off(study, asked, sweep_dir)  # failed and queued: the same command completes it
        raise

    print(f"\nOptuna study '{name}' ({storage_url})\n{trials_table(study, metrics)}", flush=True)
    if "best_of" in config and any(t.state == TrialState.COMPLETE for t in study.trials):
        print(next_step(name, storage_url, metrics, experiment), flush=True)
    write_results(study, sweep_dir)
    if s.plots:
        for path in save_plots(study, sweep_dir, metrics):
            log.info("saved %s", path)
    if not any(t.state in FINISHED for t in study.get_trials(deepcopy=False)):
        raise UserError(f"every trial of study '{name}' failed; see the reasons in the table")
    return study


def recorded_search(storage: Any, name: str) -> dict[str, Any] | None:
    """What the study of this name was created to search, or None for a new study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get(SEARCH_ATTR)


def trial_override(spec: Mapping[str, Any]) -> str:
    """``++optuna_trial={storage:'…',study:'…',number:N}``: Hydra's dict syntax, quoted."""
    items = ",".join(f"{k}:{v}" if isinstance(v, int) else f"{k}:'{v}'" for k, v in spec.items())
    return f"++{TRIAL_KEY}={{{items}}}"
