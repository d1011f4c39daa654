"""An IsoFLOP sweep's runs and fit as files, and the held-out check of a plan.

    python scripts/isoflop.py collect outputs/multiruns/train/<time>
        every finished run of the sweep (parameters, tokens, FLOPs, val loss, seconds, seed)
        and the fit to docs/results/isoflop.json, the curves and frontier to isoflop.png
    nice -n 5 python scripts/isoflop.py check --budget 1e12 --run-dir outputs/check
        the plan at --budget from docs/results/isoflop.json, its printed command run in
        --run-dir (a finished run there is not run again: resume=true), and predicted
        against measured to docs/results/isoflop_check.json

The sweep itself is `mia-train -m experiment=isoflop` (docs/planning.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mia.planning.isoflop import fit_isoflop, interpolate_log, parabola_optimum
from mia.planning.plan import make_plan
from mia.planning.runs import COLUMNS, read_sweep
from mia.results import RESULTS_DIR, make_result, write_result

CHECK_COLUMNS = [
    "budget",
    "width",
    "params",
    "steps planned",
    "steps run",
    "predicted val/loss",
    "interval low",
    "interval high",
    "measured val/loss",
    "error %",
    "wall s predicted",
    "fit s measured",
]


def collect(args: argparse.Namespace) -> None:
    sweep = read_sweep(args.sweep)
    runs = sorted(sweep.runs, key=lambda r: (r.budget, r.params, r.seed))
    budgets = [r.budget for r in runs]
    params = [r.params for r in runs]
    losses = [r.loss for r in runs]
    per_token = interpolate_log(params, [r.flops / r.tokens for r in runs])
    fit = fit_isoflop(budgets, params, losses, per_token)
    notes = (
        f"{len(runs)} finished runs of `mia-train -m experiment=isoflop` (width at depth "
        f"{runs[0].depth}); params is N, the matmul weights (mia.planning.flops); flops the "
        "exact training FLOPs of the tokens; seconds the wall time of fit (validation "
        "included). " + args.note
    ).strip()
    result = make_result(
        "isoflop",
        "IsoFLOP sweep: val loss of each run",
        COLUMNS,
        [r.row() for r in runs],
        notes=notes,
        command=args.command or None,
    )
    result["family"] = asdict(sweep.family)
    result["fit"] = {
        "n_law": asdict(fit.n_law),
        "d_law": asdict(fit.d_law),
        "loss_law": asdict(fit.loss_law),
        "optima": [asdict(o) for o in fit.optima],
    }
    path = write_result(result, Path(args.results))
    print(f"written to {path}")
    plot(sweep, fit, Path(args.plot))
    print(f"written to {args.plot}")


def plot(sweep, fit, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, laws) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(sweep.budgets)))
    for colour, budget in zip(colours, sweep.budgets, strict=True):
        at = sorted((r for r in sweep.runs if r.budget == budget), key=lambda r: r.params)
        n = np.array([r.params for r in at], dtype=float)
        loss = np.array([r.loss for r in at])
        curves.scatter(n, loss, color=colour, label=f"C = {budget:.0e} FLOPs", zorder=3)
        optimum = parabola_optimum(budget, n, loss)
        xs = np.log(n)
        best = int(np.argmin(loss))
        near = slice(max(0, best - 2), best + 3)
        a, b, c = np.polyfit(xs[near], loss[near], 2)
        grid = np.linspace(xs[near].min(), xs[near].max(), 50)
        curves.plot(np.exp(grid), np.polyval([a, b, c], grid), color=colour)
        curves.scatter([optimum.n_opt], [optimum.loss_opt], color=colour, marker="*", s=160,
                       edgecolor="black", zorder=4)  # fmt: skip
    curves.set_xscale("log")
    curves.set_xlabel("parameters N (matmul weights)")
    curves.set_ylabel(f"{sweep.family.metric} (nats per character)")
    curves.set_title("IsoFLOP curves; stars: each parabola's minimum")
    curves.legend()
    cs = np.array([o.budget for o in fit.optima])
    span = np.logspace(np.log10(cs.min()), np.log10(cs.max()) + 0.8, 50)
    laws.scatter(cs, [o.n_opt for o in fit.optima], color="C0", zorder=3)
    laws.plot(span, [fit.n_law(c) for c in span], color="C0",
              label=f"N_opt = {fit.n_law.k:.3g} C^{fit.n_law.exponent:.3f}")  # fmt: skip
    laws.set_xscale("log")
    laws.set_yscale("log")
    laws.set_xlabel("training FLOPs C")
    laws.set_ylabel("N_opt", color="C0")
    loss_axis = laws.twinx()
    loss_axis.scatter(cs, [o.loss_opt for o in fit.optima], color="C3", marker="s", zorder=3)
    law = fit.loss_law
    label = f"L_opt = {law.offset:.3f} + {law.k:.3g} C^{law.exponent:.3f}"
    loss_axis.plot(span, [law(c) for c in span], color="C3", linestyle="--", label=label)
    loss_axis.set_ylabel("L_opt", color="C3")
    lines = laws.get_legend_handles_labels()
    more = loss_axis.get_legend_handles_labels()
    laws.legend(lines[0] + more[0], lines[1] + more[1], loc="upper center", fontsize=8)
    laws.set_title("The frontier and its power laws (extrapolated)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def check(args: argparse.Namespace) -> None:
    sweep = read_sweep(args.sweep)
    plan = make_plan(sweep, args.budget).values
    command = [*shlex.split(plan["command"]), f"hydra.run.dir={args.run_dir}", "resume=true"]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(f"{time.perf_counter() - started:.0f} s", flush=True)
    metrics = json.loads((Path(args.run_dir) / "metrics.json").read_text())
    measured = metrics[plan["metric"]]
    error = 100 * (plan["predicted_val_loss"] - measured) / measured
    row = [
        plan["budget"],
        plan["width"],
        plan["params"],
        plan["steps"],
        int(metrics["train/steps"]),
        round(plan["predicted_val_loss"], 4),
        round(plan["interval"][0], 4),
        round(plan["interval"][1], 4),
        round(measured, 4),
        round(error, 2),
        round(plan["wall_s"], 1),
        round(metrics["time/fit_s"], 1),
    ]
    path = Path(args.results)
    rows, plans = [], {}
    if path.is_file():  # earlier checks at other budgets stay
        earlier = json.loads(path.read_text())
        rows = [r for r in earlier["rows"] if r[0] != plan["budget"]]
        plans = earlier.get("plans", {})
    result = make_result(
        "isoflop_check",
        "IsoFLOP plans checked: predicted against measured val loss",
        CHECK_COLUMNS,
        sorted([*rows, row]),
        notes=args.note,
    )
    result["plans"] = {**plans, f"{plan['budget']:g}": plan}
    write_result(result, path)
    print(json.dumps(dict(zip(CHECK_COLUMNS, row, strict=True)), indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("collect", help="the sweep's runs and fit as files")
    one.add_argument("sweep", help="the sweep folder (mia-train -m experiment=isoflop)")
    one.add_argument("--results", default=str(RESULTS_DIR / "isoflop.json"))
    one.add_argument("--plot", default=str(RESULTS_DIR / "isoflop.png"))
    one.add_argument("--command", default="", help="the sweep's command, for the file")
    one.add_argument("--note", default="", help="more notes for the file")
    two = sub.add_parser("check", help="run a plan's command and compare")
    two.add_argument("--sweep", default=str(RESULTS_DIR / "isoflop.json"))
    two.add_argument("--budget", type=float, required=True)
    two.add_argument("--run-dir", required=True)
    two.add_argument("--results", default=str(RESULTS_DIR / "isoflop_check.json"))
    two.add_argument("--note", default="")
    args = parser.parse_args()
    collect(args) if args.what == "collect" else check(args)


if __name__ == "__main__":
    main()
