#!/usr/bin/env python
"""Time to quality, side by side: nanoGPT's CPU baby GPT and MIA's runs, alternated.

Runs nanoGPT from a scratch checkout outside this repository (a clone of karpathy/nanoGPT
with its data prepared), then each MIA experiment, round after round, on Tiny Shakespeare.
Each run's whole command is timed, and every validation it prints is stamped with the
seconds since the command started, so the curves are val nats/char against wall time.
The results go to a JSON file (for `scripts/plot_time_to_quality.py`) and a Markdown table
of medians.

    python scripts/side_by_side.py --nanogpt <nanoGPT checkout> --repeats 3 \\
        --experiments nanogpt_baby_llama speedrun_cpu
    python scripts/side_by_side.py --repeats 1 --experiments speedrun_cpu \\
        --run "relu2=experiment=speedrun_cpu model.mlp=relu2"         # and a variant

MIA prepares its data, and compiles what it compiles, in one short run before the timed
runs (later runs reuse those caches, as a user's second run does); nanoGPT's data must be
prepared in its checkout beforehand.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mia.results import RESULTS_DIR, make_result, save

REPO = Path(__file__).resolve().parents[1]
TINY_SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
NANOGPT_ARGS = [
    "config/train_shakespeare_char.py",
    *("--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1"),
    *("--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128"),
    *("--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"),
]
NANOGPT_VAL = re.compile(r"step (\d+): train loss [\d.]+, val loss ([\d.]+)")
MIA_VAL = re.compile(r"validation at step (\d+): .*nats_per_char ([\d.]+)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout with shakespeare_char data")
    p.add_argument("--experiments", nargs="*", default=["nanogpt_baby_llama", "speedrun_cpu"])
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=OVERRIDES",
        help="also run mia-train with these overrides (space-separated, experiment=... among "
        "them), under NAME",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path, default=TINY_SHAKESPEARE)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "time_to_quality.json",
        help="JSON file for the medians and every run's curve (the set it replaces moves into "
        "its history)",
    )
    p.add_argument("overrides", nargs="*", help="more overrides for every MIA run")
    return p.parse_args()


def timed(command: list[str], cwd: Path, pattern: re.Pattern) -> dict:
    """Run `command`, stamping each line that matches `pattern` (step, value)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    curve, tail = [], []
    for line in proc.stdout:
        tail = [*tail[-39:], line]
        if m := pattern.search(line):
            curve.append((time.perf_counter() - start, int(m.group(1)), float(m.group(2))))
    if proc.wait() != 0:
        sys.exit(f"failed: {' '.join(command)}\n{''.join(tail)}")
    wall = time.perf_counter() - start
    return {"wall": wall, "curve": curve, "final": curve[-1][2] if curve else None}


def mia_command(args: argparse.Namespace, overrides: list[str], out: Path) -> list:
    return [
        sys.executable,
        "-m",
        "mia.cli.train",
        *overrides,
        f"data.path={args.data}",
        f"hydra.run.dir={out}",
        *args.overrides,
    ]


def main() -> None:
    args = parse_args()
    runs = {e: [f"experiment={e}"] for e in args.experiments}
    for run in args.run:
        name, _, overrides = run.partition("=")
        runs[name] = overrides.split()
    scratch = Path(tempfile.mkdtemp(prefix="mia-side-by-side-"))
    # Prepare data, the MFU peak and compiled code (training and validation graphs) once.
    for name, overrides in runs.items():
        warm = [*overrides, "trainer.max_steps=1", "trainer.val_check_interval=1", "test=false"]
        subprocess.run(mia_command(args, warm, scratch / f"warm-{name}"), check=True,
                       capture_output=True)  # fmt: skip
    results: dict[str, list[dict]] = {}
    for round_ in range(args.repeats):
        if args.nanogpt:
            command = [sys.executable, "train.py", *NANOGPT_ARGS]
            result = timed(command, args.nanogpt, NANOGPT_VAL)
            results.setdefault("nanoGPT baby", []).append(result)
            print(f"round {round_ + 1} nanoGPT baby: {result['wall']:.1f} s, {result['final']}")
        for name, overrides in runs.items():
            out = scratch / f"{name}-{round_}"
            result = timed(mia_command(args, overrides, out), REPO, MIA_VAL)
            metrics = json.loads((out / "metrics.json").read_text())
            result["final"] = metrics.get("val/nats_per_char", result["final"])
            results.setdefault(name, []).append(result)
            print(f"round {round_ + 1} {name}: {result['wall']:.1f} s, {result['final']:.4f}")
    base = statistics.median(r["wall"] for r in results.get("nanoGPT baby", [])) or None
    table = []
    for name, rs in results.items():
        wall = statistics.median(r["wall"] for r in rs)
        final = statistics.median(r["final"] for r in rs)
        each = ", ".join(f"{r['wall']:.1f}" for r in rs)
        speed = round(base / wall, 2) if base else None
        table.append([name, round(wall, 1), speed, round(final, 4), each])
    columns = ["run", "wall s, median", "nanoGPT's speed ×", "val nats/char", "each run s"]
    notes = (
        f"Whole commands timed from start to exit, {args.repeats} rounds alternated; "
        "× is nanoGPT's wall over the run's (above 1 is faster)."
    )
    result = make_result(
        "time_to_quality", "Time to quality against nanoGPT", columns, table, notes
    )
    save({**result, "runs": results}, str(args.out))


if __name__ == "__main__":
    main()
