"""The sweeper's config schema, registered as ``hydra/sweeper=mia_optuna``, and the sampler
group ``hydra/sweeper/sampler=tpe|random|grid|cmaes|nsgaii|qmc|gp`` with the options of
Hydra's own Optuna sweeper. Hydra imports this module when it discovers plugins (without
registering it in sys.modules, so no `from __future__ import annotations` here), so it
imports nothing heavy."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SamplerConfig:
    _target_: str = MISSING


@dataclass
class TPESamplerConfig(SamplerConfig):
    # A null option keeps Optuna's own default.
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    consider_prior: bool | None = None
    prior_weight: float | None = None
    consider_magic_clip: bool | None = None
    consider_endpoints: bool | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    warn_independent_sampling: bool | None = None


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConfig(SamplerConfig):
    # The grid is inferred from hydra.sweeper.params: every point once, then the search stops.
    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None
    x0: dict[str, Any] | None = None
    sigma0: float | None = None
    independent_sampler: Any | None = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: Any | None = None
    inc_popsize: int = 2
    use_separable_cma: bool = False
    source_trials: Any | None = None


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: int | None = None
    population_size: int = 50
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any | None = None


@dataclass
class QMCSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = None
    qmc_type: str = "sobol"
    scramble: bool = False
    independent_sampler: Any | None = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = None
    independent_sampler: Any | None = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    constraints_func: Any | None = None
    warn_independent_sampling: bool = True


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    # Optuna 4 removed it; building it says so in one line.
    _target_: str = "mia.sweeping.study.motpe_removed"


SAMPLERS = {
    "tpe": TPESamplerConfig,
    "random": RandomSamplerConfig,
    "grid": GridSamplerConfig,
    "cmaes": CmaEsSamplerConfig,
    "nsgaii": NSGAIISamplerConfig,
    "qmc": QMCSamplerConfig,
    "gp": GPSamplerConfig,
    "motpe": MOTPESamplerConfig,
}


@dataclass
class MiaOptunaSweeperConf:
    _target_: str = "hydra_plugins.mia_optuna_sweeper.sweeper.MiaOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    # The sampler and pruner reach the sweeper as dicts; it builds them itself.
    _recursive_: bool = False
    sampler: Any = MISSING
    # minimize | maximize, or a list of them for several objectives.
    direction: Any = "minimize"
    # null: named after the experiment and a hash of the search, so the same command
    # continues the same study.
    study_name: str | None = None
    # Any database URL Optuna accepts; null: MIA's study file, sqlite:///outputs/optuna.db.
    storage: Any | None = None
    # Trials the study should hold, over all workers (complete, pruned or failed by the run).
    n_trials: int = 20
    # Trials launched together as one batch, through whichever launcher is configured.
    n_jobs: int = 1
    # A batch whose share of failed trials exceeds this ends the search.
    max_failure_rate: float = 0.0
    params: dict[str, Any] | None = None
    # module.function(cfg, trial): suggests further parameters for each trial.
    custom_search_space: str | None = None
    # median | successive_halving | hyperband | null, or a dict with _target_.
    pruner: Any = None
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    plots: bool = True


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="mia_optuna", node=MiaOptunaSweeperConf, provider="mia")
for _name, _node in SAMPLERS.items():
    store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="mia")
