#!/usr/bin/env python
"""Measure what pruning saves: the same Optuna search with and without a pruner.

Runs `mia-train hparams_search=optuna` on Tiny Shakespeare (characters, a small LLaMA model,
a few hundred steps per trial), alternating a search without a pruner and one with
`--pruner`, each in a fresh folder with its own study. Prints the wall time of each
search, its best val/bpc and how many trials were pruned, then the medians.

    python scripts/bench_pruning.py --pruner median --n-trials 12 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mia.results import add_results_argument, make_result, save

REPO = Path(__file__).resolve().parents[1]
TINY_SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pruner", default="median", help="median | successive_halving | hyperband")
    p.add_argument("--n-trials", type=int, default=12)
    p.add_argument("--repeats", type=int, default=1, help="pairs of searches, alternated")
    p.add_argument("--steps", type=int, default=300, help="training steps per trial")
    p.add_argument("--val-every", type=int, default=25, help="validation (and report) cadence")
    p.add_argument("--data", type=Path, default=TINY_SHAKESPEARE, help="Tiny Shakespeare")
    p.add_argument("overrides", nargs="*", help="more mia-train overrides")
    add_results_argument(p, "bench_pruning")
    return p.parse_args()


def search(args: argparse.Namespace, pruner: str | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="mia-pruning-"))
    storage = f"sqlite:///{folder}/optuna.db"
    command = [
        sys.executable,
        "-m",
        "mia.cli.train",
        "hparams_search=optuna",
        "experiment=nanogpt_baby_llama",
        f"data.path={args.data}",
        f"trainer.max_steps={args.steps}",
        f"scheduler.decay_steps={args.steps}",
        "scheduler.warmup_steps=20",
        f"trainer.val_check_interval={args.val_every}",
        "trainer.limit_val_batches=20",
        "test=false",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "callbacks.text_samples=null",
        f"hydra.sweeper.n_trials={args.n_trials}",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.pruner={pruner or 'null'}",
        "hydra.sweeper.plots=false",
        'hydra.sweeper.params={optimizer.lr:"tag(log, interval(1e-4, 3e-2))",'
        'model.dim:"choice(32, 64, 96)",model.n_layers:"choice(1, 2, 4)"}',
        *args.overrides,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"search failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    pruned = sum(t.state == TrialState.PRUNED for t in study.trials)
    return {"pruner": pruner or "none", "wall": wall, "best": study.best_value, "pruned": pruned}


def main() -> None:
    args = parse_args()
    if not args.data.is_file():
        sys.exit(f"no Tiny Shakespeare at {args.data}: pass --data")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    print(f"{'pruner':<20}{'wall s':>8}{'best val/bpc':>14}{'pruned':>8}", flush=True)
    for _ in range(args.repeats):
        for pruner in (None, args.pruner):
            row = search(args, pruner)
            rows.append(row)
            print(
                f"{row['pruner']:<20}{row['wall']:>8.1f}{row['best']:>14.4f}{row['pruned']:>8}",
                flush=True,
            )
    base = [r for r in rows if r["pruner"] == "none"]
    pruned = [r for r in rows if r["pruner"] != "none"]
    wall0, wall1 = (statistics.median(r["wall"] for r in rs) for rs in (base, pruned))
    best0, best1 = (statistics.median(r["best"] for r in rs) for rs in (base, pruned))
    columns = ["pruner", "wall s, median", "vs no pruner", "best val/bpc", "trials pruned"]
    table = []
    for name, rs, wall, best in (("none", base, wall0, best0), (args.pruner, pruned, wall1, best1)):
        pruned_trials = statistics.median(r["pruned"] for r in rs)
        table.append([name, round(wall, 1), round(wall / wall0, 2), round(best, 4), pruned_trials])
    notes = (
        f"{args.n_trials}-trial searches of {args.steps} steps, validation every "
        f"{args.val_every}; each in a fresh study, alternated with one without a pruner."
    )
    result = make_result("bench_pruning", "What pruning saves", columns, table, notes)
    save(result, args.results)


if __name__ == "__main__":
    main()
