"""An Optuna search whose trials are Hydra jobs: ask Optuna for parameters, launch the job
through Hydra's launcher, tell Optuna the result. The study lives in a database, so the
same command continues it after any interruption, and several workers share it."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from mia.errors import UserError
from mia.sweeping.outcome import PrunedRun
from mia.sweeping.report import save_plots, trials_table, write_best
from mia.sweeping.search_space import as_override, search_space, suggest
from mia.sweeping.study import (
    PRUNER_ATTR,
    counts,
    default_study_name,
    has_room,
    make_pruner,
    make_sampler,
    open_storage,
    pruner_spec,
)

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")
SURPLUS_ATTR = "mia:surplus"
RUN_DIR_ATTR = "run_dir"
# The train config key through which a trial's job learns its study and number.
TRIAL_KEY = "optuna_trial"


@dataclass
class SearchSettings:
    """`hydra.sweeper` of the mia_optuna sweeper (see conf/hparams_search/optuna.yaml)."""

    direction: str = "minimize"
    study_name: str | None = None
    storage: str | None = "sqlite:///outputs/optuna.db"
    n_trials: int = 20
    n_jobs: int = 1
    sampler: Mapping[str, Any] | None = None
    pruner: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    plots: bool = True

    def check(self) -> None:
        if self.direction not in DIRECTIONS:
            raise UserError(
                f"hydra.sweeper.direction={self.direction}: choose minimize or maximize"
            )
        for name in ("n_trials", "n_jobs", "heartbeat_interval", "grace_period"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"hydra.sweeper.{name}={value}: must be an integer >= 1")
        if not isinstance(self.max_retry, int) or self.max_retry < 0:
            raise UserError(f"hydra.sweeper.max_retry={self.max_retry}: must be an integer >= 0")
        if self.grace_period <= self.heartbeat_interval:
            raise UserError(
                f"hydra.sweeper.grace_period={self.grace_period}: must exceed "
                f"heartbeat_interval={self.heartbeat_interval}"
            )


class _Surplus(Exception):
    """A trial created when the study had no room left (two workers asked at once)."""


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def run_search(
    settings: Mapping[str, Any], arguments: Sequence[str], config: DictConfig, launcher: Any
) -> optuna.Study:
    """Run (or continue) the study until it holds n_trials finished trials."""
    s = SearchSettings(**{k: _plain(v) for k, v in settings.items()})
    s.check()
    if s.n_jobs > 1 and type(launcher).__name__ == "BasicLauncher":
        raise UserError(
            f"hydra.sweeper.n_jobs={s.n_jobs} runs trials at once, which the basic launcher "
            "cannot: add hydra/launcher=submitit_local (or submitit_slurm), or start the "
            "same command several times to share the study"
        )
    space, fixed = search_space(s.params, arguments)
    experiment = OmegaConf.select(config, "hydra.runtime.choices.experiment")
    name = s.study_name or default_study_name(experiment, space, fixed, s.direction)
    storage = open_storage(s.storage, s.heartbeat_interval, s.grace_period, s.max_retry)
    spec = pruner_spec(s.pruner)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(s.sampler),
        pruner=make_pruner(spec),
        direction=s.direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != s.direction:
        raise UserError(
            f"hydra.sweeper.direction={s.direction}: study '{name}' was created to "
            f"{study.direction.name.lower()}; use another study_name"
        )
    study.set_user_attr(PRUNER_ATTR, spec)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    finished, running = counts(study)
    log.info(
        "Optuna study '%s' in %s: %d of %d trials finished, %d running; pruner %s. "
        "Run the same command again to continue it; start it on more machines to share it.",
        name,
        s.storage,
        finished,
        s.n_trials,
        running,
        (spec or {}).get("_target_", "none"),
    )
    metric = OmegaConf.select(config, "optimized_metric") or "the objective"
    trial_spec = {"storage": s.storage, "study": name}

    def objective(trial: optuna.Trial) -> float:
        if not has_room(study, trial.number, s.n_trials):
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.stop()
            raise _Surplus(f"trial {trial.number}: the study already has {s.n_trials} trials")
        study.sampler = make_sampler(s.sampler, trial.number)
        values = {key: suggest(trial, key, dist) for key, dist in space.items()}
        overrides = [
            *fixed,
            *(as_override(k, v) for k, v in values.items()),
            trial_override({**trial_spec, "number": trial.number}),
        ]
        try:
            (ret,) = launcher.launch([overrides], initial_job_idx=trial.number)
        except KeyboardInterrupt:
            study.enqueue_trial(values, user_attrs={"mia:retry_of": trial.number})
            raise
        run_dir = OmegaConf.select(ret.hydra_cfg or {}, "hydra.runtime.output_dir")
        if run_dir:
            trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))
        value = ret.return_value  # re-raises the job's exception
        if isinstance(value, PrunedRun):
            raise optuna.TrialPruned(f"stopped at step {value.step}")
        if value is None:
            raise UserError(f"trial {trial.number}: the run returned no {metric}")
        return float(value)

    failures_in_a_row = 0

    def stop_when_full(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal failures_in_a_row
        surplus = trial.user_attrs.get(SURPLUS_ATTR)
        failures_in_a_row = failures_in_a_row + 1 if trial.state == TrialState.FAIL else 0
        if failures_in_a_row >= 3 and not surplus:
            study.stop()
            return
        finished, running = counts(study)
        if finished + running >= s.n_trials:
            study.stop()

    waiting_said = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        finished, running = counts(study)
        if finished >= s.n_trials:
            break
        if failures_in_a_row >= 3:
            raise UserError(
                f"3 trials in a row failed (a {metric} of NaN or inf?); see their run folders "
                f"under {sweep_dir}"
            )
        if finished + running >= s.n_trials:
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
        study.optimize(
            objective,
            callbacks=[stop_when_full],
            catch=(_Surplus,),
            n_jobs=s.n_jobs,
            gc_after_trial=True,
        )

    print(f"\nOptuna study '{name}' ({s.storage})\n{trials_table(study, metric)}", flush=True)
    write_best(study, sweep_dir)
    if s.plots:
        for path in save_plots(study, sweep_dir, metric):
            log.info("saved %s", path)
    return study


def trial_override(spec: Mapping[str, Any]) -> str:
    """``++optuna_trial={storage:'…',study:'…',number:N}``: Hydra's dict syntax, quoted."""
    items = ",".join(f"{k}:{v}" if isinstance(v, int) else f"{k}:'{v}'" for k, v in spec.items())
    return f"++{TRIAL_KEY}={{{items}}}"
