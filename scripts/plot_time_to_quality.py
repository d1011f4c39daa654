#!/usr/bin/env python
"""Plot val nats/char against wall seconds from `scripts/side_by_side.py` results.

Each run is one line through its validations (seconds since its command started); the
run with the median wall time of each name is drawn bold, the others faint.

    python scripts/plot_time_to_quality.py    # docs/results/time_to_quality.json -> .png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mia.results import RESULTS_DIR, machine_line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("results", type=Path, nargs="?", default=RESULTS_DIR / "time_to_quality.json")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "time_to_quality.png")
    p.add_argument("--target", type=float, default=1.45, help="a dashed goal line")
    args = p.parse_args()
    data = json.loads(args.results.read_text())
    results: dict[str, list[dict]] = data["runs"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, (name, runs) in enumerate(results.items()):
        color = f"C{i}"
        median = statistics.median_low(r["wall"] for r in runs)
        for run in runs:
            seconds = [point[0] for point in run["curve"]]
            values = [point[2] for point in run["curve"]]
            bold = run["wall"] == median
            ax.plot(
                seconds,
                values,
                marker="o" if bold else None,
                markersize=3,
                color=color,
                alpha=1.0 if bold else 0.3,
                linewidth=2 if bold else 1,
                label=f"{name} (median {median:.0f} s, {run['final']:.3f})" if bold else None,
            )
            ax.axvline(run["wall"], color=color, alpha=0.15 if not bold else 0.5, linestyle=":")
    ax.axhline(args.target, color="grey", linestyle="--", linewidth=1, label=f"goal {args.target}")
    ax.set_xlabel("wall seconds since the command started (dotted: the command ends)")
    ax.set_ylabel("val nats per character")
    ax.set_title(f"Tiny Shakespeare, val loss against wall time\n{machine_line(data)}", fontsize=10)
    ax.set_ylim(1.35, 2.6)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
