"""The table a grid ends with: one row per job, its overrides and metrics, and a figure
format shared with the search's table (a count prints as an integer)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

COLUMNS = ("val/loss", "val/bpc", "val/acc", "test/loss", "test/bpc")


def metric_text(value: Any) -> str:
    """A metric for a table: "-" where there is none, an integral value (a parameter count)
    as an integer, any other to four decimals."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}"


def sweep_table(sweep_dir: Path, failures: dict[str, str] | None = None) -> str:
    """One row per job folder of `sweep_dir` holding a metrics.json: its overrides and metrics;
    and one per failed job (`failures`: folder name -> reason), ending in its reason."""
    failures = failures or {}
    rows = []
    for job in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        metrics_file = job / "metrics.json"
        if job.name not in failures and not metrics_file.is_file():
            continue
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        metrics = {} if job.name in failures else json.loads(metrics_file.read_text())
        rows.append((job.name, overrides or [], metrics))
    found = {name for name, _, _ in rows}
    rows += [(name, [], {}) for name in failures if name not in found]  # a job with no folder
    if not rows:
        return f"no finished jobs in {sweep_dir}"
    # Show what tells the jobs apart, not the overrides they share.
    shared = set.intersection(*(set(o) for _, o, _ in rows)) if len(rows) > 1 else set()
    rows = [(n, " ".join(x for x in o if x not in shared), m) for n, o, m in rows]
    columns = [c for c in COLUMNS if any(c in m for _, _, m in rows)]
    width = max(len("overrides"), *(len(o) for _, o, _ in rows))
    header = f"{'job':<5}{'overrides':<{width + 2}}" + "".join(f"{c:>11}" for c in columns)
    lines = [header + ("  status" if failures else "")]
    for name, overrides, metrics in rows:
        cells = "".join(f"{metric_text(metrics.get(c)):>11}" for c in columns)
        status = f"  failed: {failures[name]}" if name in failures else "  done" if failures else ""
        lines.append(f"{name:<5}{overrides:<{width + 2}}{cells}{status}")
    return "\n".join(lines)
