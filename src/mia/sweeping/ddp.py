"""DDP inside a sweep.

Lightning's default DDP launcher starts ranks 1..N-1 by running the command line again. In
a sweep that command line is the sweep itself (each extra rank would start a sweep of its
own, and never gets the job's own overrides), so on one machine a sweep job starts its
ranks with ``ddp_spawn`` instead, which forks them from the job with its config. Under
torchrun or SLURM, where every rank is started from outside, nothing changes.
"""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def launched_from_outside() -> bool:
    """Ranks started by torchrun or SLURM (srun), not by Lightning."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1


def use_spawn_in_sweeps(cfg: DictConfig) -> None:
    """Switch ``trainer.strategy=ddp`` to ``ddp_spawn`` for a sweep job on one machine."""
    if cfg.trainer.get("strategy") != "ddp" or not in_multirun() or launched_from_outside():
        return
    with open_dict(cfg):
        cfg.trainer.strategy = "ddp_spawn"
    log.info("DDP in a sweep: ranks are spawned from this job (trainer.strategy=ddp_spawn)")
