"""The sweeper's config schema, registered as ``hydra/sweeper=mia_optuna``. Hydra imports this
module when it discovers plugins (without registering it in sys.modules, so no
`from __future__ import annotations` here), so it imports nothing heavy."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class MiaOptunaSweeperConf:
    _target_: str = "hydra_plugins.mia_optuna_sweeper.sweeper.MiaOptunaSweeper"
    # The sampler and pruner reach the sweeper as dicts; it builds them itself.
    _recursive_: bool = False
    direction: str = "minimize"
    # null: named after the experiment and a hash of the search, so the same command
    # continues the same study.
    study_name: Any = None
    # Any database URL Optuna accepts; the default file lives under outputs/.
    storage: Any = "sqlite:///outputs/optuna.db"
    # Finished (complete or pruned) trials the study should hold, over all workers.
    n_trials: int = 20
    # Trials this worker runs at once (needs a parallel launcher such as submitit).
    n_jobs: int = 1
    sampler: Any = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 1234}
    )
    # median | successive_halving | hyperband | null, or a dict with _target_.
    pruner: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    plots: bool = True


ConfigStore.instance().store(
    group="hydra/sweeper", name="mia_optuna", node=MiaOptunaSweeperConf, provider="mia"
)
