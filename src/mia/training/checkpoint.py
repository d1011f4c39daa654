"""Reading checkpoints safely: weights-only unpickling, and one-line errors for a wrong file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mia.errors import UserError
from mia.safe_load import load_weights_only
from mia.settings import zero_rate_tail
from mia.training.module import HORIZON_KEY, LanguageModel


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint `path` names: a file, or a run folder's last checkpoint (said in one
    line on stderr). A folder without last.ckpt is refused with the checkpoints it holds."""
    path = Path(path)
    if not path.is_dir():
        return path
    for last in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
        if last.is_file():
            print(f"ckpt_path={path} is a folder: using {last}", file=sys.stderr)
            return last
    found = sorted(str(p.relative_to(path)) for p in path.rglob("*.ckpt"))
    held = f"it holds {', '.join(found)}" if found else "it holds no .ckpt file"
    raise UserError(f"ckpt_path={path} is a folder without checkpoints/last.ckpt; {held}")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a MIA checkpoint dict without running code stored in it (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"ckpt_path={path}: no such checkpoint file")
    checkpoint = load_weights_only(path, f"ckpt_path={path}")
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "model" not in hparams or "state_dict" not in checkpoint:
        raise UserError(f"ckpt_path={path}: not a MIA checkpoint (it has no model settings)")
    return checkpoint


def load_language_model(path: str | Path) -> LanguageModel:
    """The `LanguageModel` a checkpoint (or a run folder's last.ckpt) holds, weights loaded,
    on the CPU, in eval mode."""
    checkpoint = read_checkpoint(checkpoint_file(path))  # a run folder: its last.ckpt
    module = LanguageModel(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def check_stored_horizon(cfg: DictConfig, ckpt_path: str | None) -> None:
    """Refuse to continue a run past the decay horizon its checkpoint stored where the
    schedule ends at a rate of 0 (a linear decay's default): the added steps would not train.
    An explicit scheduler.decay_steps sets a new horizon and is checked with the settings."""
    if ckpt_path is None or cfg.scheduler.get("decay_steps") or not Path(ckpt_path).is_file():
        return
    checkpoint = load_weights_only(Path(ckpt_path), f"ckpt_path={ckpt_path}")
    horizon = checkpoint.get(HORIZON_KEY) if isinstance(checkpoint, dict) else None
    whence = "the decay horizon stored in the checkpoint; trainer.max_steps does not move it"
    problem = zero_rate_tail(cfg.scheduler, horizon, cfg.trainer.max_steps, whence)
    if problem:
        raise UserError(problem)


def model_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """`model.<key>` settings where a checkpoint's model and this run's model differ."""
    return [
        f"model.{key}: checkpoint {saved.get(key)!r}, this run {wanted.get(key)!r}"
        for key in sorted(set(saved) | set(wanted))
        if saved.get(key) != wanted.get(key)
    ]
