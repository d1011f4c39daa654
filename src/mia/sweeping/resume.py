"""Where a run starts: a checkpoint the user names, or the earlier work in its own folder.

``resume=true`` reads the run folder (``hydra.run.dir``, or a sweep job's folder) as "this
may hold earlier work; use it": a run that finished (``metrics.json``) is not run again and
its metrics are returned as they are; a run with ``checkpoints/last.ckpt`` continues from it;
an empty folder starts fresh. A job that SLURM requeued (after preemption or a time limit)
resumes the same way by itself. Either way the folder's earlier work must come from this
run's settings: a run records them in ``settings.yaml`` when it starts, and a folder whose
record differs (apart from paths and ``resume``) is refused, as is a checkpoint that holds
another model.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mia.errors import UserError
from mia.sweeping.ddp import in_multirun

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
SETTINGS_FILE = "settings.yaml"
# Top-level keys that do not change what a run computes: where it writes, where it starts
# from (resume, ckpt_path), and the Optuna trial it reports to.
NOT_SETTINGS = ("paths", "resume", "ckpt_path", "optuna_trial", "hydra")


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
    refusal = other_settings(run_dir, cfg, "hydra.sweep.dir" if in_multirun() else "hydra.run.dir")
    if refusal:
        raise UserError(refusal)
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


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """What a run computes from: its config as given (interpolations unresolved, so a folder
    that moved compares equal), without the keys of NOT_SETTINGS."""
    values = OmegaConf.to_container(cfg, resolve=False)
    return {k: v for k, v in values.items() if k not in NOT_SETTINGS}


def record_settings(cfg: DictConfig) -> None:
    """Write this run's settings into its folder, for a later resume=true to compare."""
    import yaml

    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SETTINGS_FILE).write_text(yaml.safe_dump(run_settings(cfg), sort_keys=True))


def settings_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key old -> new`` for each dotted key whose value differs; the model's first, since
    they decide whether the folder's checkpoints fit this run at all. A key that one side
    lacks and the other holds as null (a setting added to MIA since) does not differ."""
    old, new = _flat(recorded), _flat(current)
    absent = "(absent)"
    keys = sorted(old.keys() | new.keys(), key=lambda k: (not k.startswith("model."), k))

    def differs(key: str) -> bool:
        if key in old and key in new:
            return old[key] != new[key]
        return (old[key] if key in old else new[key]) is not None

    return [
        f"{key} {old.get(key, absent)} -> {new.get(key, absent)}" for key in keys if differs(key)
    ]


def other_settings(run_dir: Path, cfg: DictConfig, folder_key: str) -> str | None:
    """Why `run_dir` cannot be resumed by a run with `cfg`: it recorded other settings
    (`folder_key`: the setting that names another folder)."""
    import yaml

    record = run_dir / SETTINGS_FILE
    if not record.is_file():
        if (run_dir / METRICS_FILE).is_file() or (run_dir / "checkpoints").is_dir():
            log.warning(
                "%s has no %s (made by an older MIA); settings not compared", run_dir, SETTINGS_FILE
            )
        return None
    try:
        recorded = yaml.safe_load(record.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        return f"{record}: unreadable ({err}); use another folder or remove it"
    differences = settings_differences(recorded, run_settings(cfg))
    if not differences:
        return None
    shown = ", ".join(differences[:4]) + (
        f", and {len(differences) - 4} more" if len(differences) > 4 else ""
    )
    return (
        f"resume=true: {run_dir} ran other settings ({shown}); use another "
        f"{folder_key} or remove it"
    )


def _flat(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict) and values:
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): values}


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
