"""Where a run starts: a checkpoint the user names, or the earlier work in its own folder.

``resume=true`` reads the run folder (``hydra.run.dir``, or a sweep job's folder) as "this
may hold earlier work; use it": a run that finished (``metrics.json``) is not run again and
its metrics are returned as they are; a run with ``checkpoints/last.ckpt`` continues from it;
an empty folder starts fresh. A job that SLURM requeued (after preemption or a time limit)
resumes the same way by itself. Either way the checkpoint must hold this run's model.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mia.errors import UserError

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class StartPoint:
    """The checkpoint to continue from (None: fresh), or the final metrics of a finished run."""

    ckpt_path: str | None = None
    finished_metrics: dict[str, float] | None = None


def requeued_by_slurm() -> bool:
    """A SLURM job started again after preemption or a time limit (submitit requeues it)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def start_point(cfg: DictConfig, model: dict[str, Any]) -> StartPoint:
    """Decide where this run starts, from ckpt_path and resume; see the module docstring."""
    resume = bool(cfg.get("resume")) or requeued_by_slurm()
    if cfg.ckpt_path is not None and cfg.get("resume"):
        raise UserError(
            "resume=true and ckpt_path are both set: resume=true continues from the run "
            "folder's own last.ckpt; give one or the other"
        )
    if cfg.ckpt_path is not None:
        return StartPoint(ckpt_path=named_checkpoint(cfg, model))
    if not resume:
        return StartPoint()
    run_dir = Path(cfg.paths.output_dir)
    why = "resume=true" if cfg.get("resume") else "requeued by SLURM"
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = [last] if last.is_file() else sorted(run_dir.glob("checkpoints/*.ckpt"))
    if saved:
        check_same_model(saved[0], model, f"{why}: {run_dir}")
    metrics_file = run_dir / METRICS_FILE
    if metrics_file.is_file():
        log.info("%s: %s finished earlier (%s); not training again", why, run_dir, METRICS_FILE)
        return StartPoint(finished_metrics=read_metrics(metrics_file))
    if last.is_file():
        log.info("%s: continuing from %s", why, last)
        return StartPoint(ckpt_path=str(last))
    log.info("%s: nothing to resume in %s; starting fresh", why, run_dir)
    return StartPoint()


def named_checkpoint(cfg: DictConfig, model: dict[str, Any]) -> str:
    """ckpt_path: a checkpoint file, or "last" for this run folder's last.ckpt."""
    path = Path(cfg.ckpt_path)
    if cfg.ckpt_path == "last":
        path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise UserError(
                f"ckpt_path=last: there is no {path}; give the run's folder with "
                "hydra.run.dir=<folder>, or a checkpoint file with ckpt_path=<file>, "
                "or use resume=true (which starts fresh when there is nothing to resume)"
            )
    check_same_model(path, model, f"ckpt_path={path}")
    return str(path)


def check_same_model(path: Path, model: dict[str, Any], label: str) -> None:
    from mia.training.checkpoint import model_differences, read_checkpoint

    saved = read_checkpoint(path)["hyper_parameters"]["model"]
    differences = model_differences(saved, model)
    if differences:
        raise UserError(
            f"{label} holds another model ({'; '.join(differences)}): use the same model "
            "settings, or another folder"
        )


def read_metrics(path: Path) -> dict[str, float]:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: unreadable ({err}); delete it to run this job again") from None
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
