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
    lines += ["", "Next:", f"  tensorboard --logdir {_shown(run_dir)}"]
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
            shown = "" if split == "test" else " split=val"
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
