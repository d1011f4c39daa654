"""What a finished run prints last: where its files are and the commands to use them.

Every command is ready to paste from the directory the run was started in: paths are
relative to it when the run folder is below it, and the data cache is named when the run
used another one than the commands would find by themselves.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig


def _shown(path: str | Path) -> str:
    path = Path(path).absolute()
    if path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    return shlex.quote(str(path))


def default_cache_dir() -> Path:
    """The cache a command uses when paths.cache_dir is not given (conf/paths/default.yaml)."""
    return Path(os.environ.get("MIA_CACHE_DIR") or Path.home() / ".cache" / "mia")


def checkpoints(trainer: L.Trainer) -> tuple[str | None, str | None]:
    """(best by val/loss, last) checkpoint files of the finished run; None where absent."""
    best = last = None
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        best = best or callback.best_model_path or None
        # From the folder, not last_model_path: testing the best checkpoint restores the
        # callbacks' state as it was when that checkpoint was saved.
        name = f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        if callback.save_last and callback.dirpath and (Path(callback.dirpath) / name).is_file():
            last = last or str(Path(callback.dirpath) / name)
    return best, last


def in_sweep() -> bool:
    """A job of a sweep (its summary is the sweep's table, not this message)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def logger_views(trainer: L.Trainer, run_dir: Path) -> list[str]:
    """How to look at what each of the run's loggers wrote (none: nothing to suggest)."""
    views = []
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            views.append(f"tensorboard --logdir {_shown(run_dir)}")
        elif isinstance(logger, CSVLogger):
            views.append(f"column -s, -t < {_shown(Path(logger.log_dir) / 'metrics.csv')}")
        elif isinstance(logger, MLFlowLogger):
            uri = getattr(logger, "_tracking_uri", None) or "./mlruns"
            views.append(f"mlflow ui --backend-store-uri {shlex.quote(str(uri))}")
        elif isinstance(logger, WandbLogger):
            offline = (Path(logger.save_dir or ".") / "wandb").absolute()
            views.append(f"wandb sync {_shown(offline)}/offline-run-*")
    return views


def eval_settings(cfg: DictConfig, trainer: L.Trainer, split: str) -> str:
    """The settings that make mia-eval walk what the run evaluated: the batches the run's
    trainer.limit_test_batches (or, for val, limit_val_batches) allowed, at its precision."""
    limit = cfg.trainer.get("limit_test_batches" if split == "test" else "limit_val_batches")
    shown = ""
    if limit is not None and limit != 1.0:
        shown += f" trainer.limit_test_batches={limit}"
    precision = str(trainer.precision)
    if precision not in ("32-true", "32"):
        shown += f" trainer.precision={precision}"
    return shown


def next_steps(cfg: DictConfig, trainer: L.Trainer, metrics: dict[str, float]) -> str:
    """The end-of-run message: run folder, checkpoints, and commands for what comes next."""
    run_dir = Path(cfg.paths.output_dir)
    best, last = checkpoints(trainer)
    chosen = last or best
    lines = [f"Run folder:      {_shown(run_dir)}"]
    if best:
        lines.append(f"Best checkpoint: {_shown(best)} (lowest val/loss)")
    if last:
        lines.append(f"Last checkpoint: {_shown(last)} (step {trainer.global_step})")
    lines += ["", "Next:", *(f"  {line}" for line in logger_views(trainer, run_dir))]
    if chosen:
        cache = ""
        if Path(cfg.paths.cache_dir).absolute() != default_cache_dir().absolute():
            cache = f" paths.cache_dir={_shown(cfg.paths.cache_dir)}"
        lines.append(f"  mia-generate ckpt_path={_shown(chosen)} max_new_tokens=200")
        # Only a split that was evaluated here is suggested: an empty one would fail.
        split = next(
            (s for s in ("test", "val") if any(k.startswith(f"{s}/") for k in metrics)), None
        )
        if split is not None:
            shown = ("" if split == "test" else " split=val") + eval_settings(cfg, trainer, split)
            lines.append(f"  mia-eval ckpt_path={_shown(best or chosen)}{shown}{cache}")
        from mia.interop.hf import export_problems

        unexportable = export_problems(trainer.lightning_module.config)
        if unexportable:  # a command that would fail is not suggested
            lines.append(
                f"  (no mia-export, the Llama format cannot hold {'; '.join(unexportable)})"
            )
        else:
            lines.append(
                f"  mia-export ckpt_path={_shown(chosen)} out_dir={_shown(run_dir / 'hf')}"
            )
    return "\n".join(lines)
