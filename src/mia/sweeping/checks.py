"""Mistakes in a search, caught before its first trial: a search-space key that the composed
config does not have, an objective that no run reports, a val metric that no validation
produces, and a study name that another search already uses. Each is one line; nothing is
written to the study."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, distribution_to_json

from mia.errors import UserError

SEARCH_ATTR = "mia:search"  # what a study searches, recorded when it is created
_ABSENT = object()
# What mia-train returns (and writes to metrics.json) for a sweeper to optimise.
EVAL_METRICS = ("loss", "ppl", "acc", "nats_per_char", "bpc")
RUN_METRICS = (
    *(f"{split}/{name}" for split in ("val", "test") for name in EVAL_METRICS),
    "model/params",
    "time/fit_s",
    "time/tokens_per_s",
)


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, DictConfig):
        return [prefix]
    keys = [prefix] if prefix else []
    for key in node:
        keys += _leaves(node._get_node(key), f"{prefix}.{key}" if prefix else str(key))
    return keys


def check_keys(config: DictConfig, keys: Sequence[str]) -> None:
    """Every searched or pinned key names a setting of the composed config (a ``+key`` adds
    one, a config group is chosen by its name)."""
    choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
    for key in keys:
        bare = key.lstrip("~+")
        if key.startswith(("+", "~")) or bare in choices or "@" in bare:
            continue
        if OmegaConf.select(config, bare, default=_ABSENT) is not _ABSENT:
            continue
        known = [k for k in _leaves(config) if not k.startswith("hydra")]
        close = difflib.get_close_matches(bare, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"hydra.sweeper.params.{bare}: the config has no such setting{hint}")


def check_objectives(config: DictConfig, metrics: Sequence[str]) -> None:
    """For mia-train (a config with `optimized_metric`): each objective is a metric a run
    reports, and a val (test) metric has a validation before max_steps (a test)."""
    if "optimized_metric" not in config or "trainer" not in config:
        return  # another app: its return value is its business
    for metric in metrics:
        if metric not in RUN_METRICS:
            close = difflib.get_close_matches(metric, RUN_METRICS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(
                f"optimized_metric={metric}: no run reports it; {hint}a run reports "
                f"{', '.join(RUN_METRICS)}"
            )
    trainer = config.trainer
    if any(m.startswith("val/") for m in metrics):
        every, steps = trainer.get("val_check_interval"), trainer.get("max_steps")
        never = trainer.get("limit_val_batches") == 0 or (
            isinstance(every, int) and isinstance(steps, int) and 0 < steps < every
        )
        if never:
            raise UserError(
                f"optimized_metric={','.join(metrics)}: no validation runs before "
                f"trainer.max_steps={steps} (trainer.val_check_interval={every}, "
                f"limit_val_batches={trainer.get('limit_val_batches')}); validate at least once"
            )
    if any(m.startswith("test/") for m in metrics) and not config.get("test"):
        raise UserError(f"optimized_metric={','.join(metrics)}: test=false runs no test")


def search_record(
    space: Mapping[str, BaseDistribution],
    fixed: Sequence[str],
    metrics: Sequence[str],
    directions: Sequence[str],
) -> dict[str, Any]:
    return {
        "space": {k: json.loads(distribution_to_json(v)) for k, v in sorted(space.items())},
        "fixed": sorted(fixed),
        "metrics": list(metrics),
        "directions": list(directions),
    }


def check_same_search(name: str, recorded: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """A study belongs to the search that created it: another search under its name is
    refused, naming what differs."""
    differences = []
    for part in ("space", "fixed", "metrics", "directions"):
        old, new = recorded.get(part), record.get(part)
        if old == new:
            continue
        if part == "space":
            keys = sorted(set(old or {}) | set(new or {}))
            changed = [k for k in keys if (old or {}).get(k) != (new or {}).get(k)]
            differences.append(f"space differs in {', '.join(changed)}")
        elif part == "fixed":
            only_old = sorted(set(old or []) - set(new or []))
            only_new = sorted(set(new or []) - set(old or []))
            differences.append(f"fixed overrides: study {only_old}, this search {only_new}")
        else:
            differences.append(f"{part}: study {old}, this search {new}")
    if differences:
        raise UserError(
            f"hydra.sweeper.study_name={name}: the study belongs to another search "
            f"({'; '.join(differences)}); use another study_name"
        )
