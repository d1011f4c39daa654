"""A Hydra callback that ends a multirun with a table of its jobs' metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mia.sweeping.table import sweep_table


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if "mia_optuna" in str(config.hydra.sweeper.get("_target_", "")):
            return  # the Optuna sweeper prints its study's table, pruned trials included
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            print(f"\nSweep {sweep_dir}\n{sweep_table(sweep_dir)}", flush=True)
