"""µP learning-rate transfer on Tiny Shakespeare, character level: whole learning-rate curves
at several widths under the standard parametrisation (sp) and under µP (mup, base width the
narrowest), with several seeds per point, and the pass criteria computed.

    OMP_NUM_THREADS=1 nice python scripts/mutransfer.py --data input.txt --cache runs.jsonl

(--data: Tiny Shakespeare's input.txt.) Every model is a llama decoder of fixed head size
(--head-size) and depth, widened from the base width; every run of seed s sees the same
batches (the data module's (seed, step) stream) whatever its width and rate. The loss of a
run is its TRAIN loss averaged over the last half of its steps; the val loss over the first
--val-windows windows of the val split (4,096 characters by default; --pair-val-windows,
65,536, for the pair) is reported beside it. The defaults are the study in docs/model.md.

Criteria, written into the results: (a) under mup the best rate of every width is within one
x2 grid step of the base width's; (b) under sp, how many grid steps the best rate drifts;
(c) the pair: under mup, the base width and the widest trained for --pair-steps steps with
--pair-seeds seeds at the base width's best mup rate: the wide model's loss is lower by
more than 2 standard errors (of the difference of the means).

Writes docs/results/mutransfer.json (through mia.results) and mutransfer.png (sp beside mup,
mean ± standard error per width), prints a Markdown table and the wall time. With --cache,
finished runs go to a JSONL file as they end, and a rerun with the same settings reuses them.
Runs go to --workers processes, one thread each (a plain loop over MIA's own parts:
Decoder, build_optimizer, lr_at and the data module's batches, no Lightning).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from mia.results import RESULTS_DIR, add_results_argument, make_result, write_result

PARAMETRIZATIONS = ("sp", "mup")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="Tiny Shakespeare's input.txt")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument(
        "--log2-lrs",
        type=int,
        nargs="+",
        default=[-9, -8, -7, -6, -5, -4],
        help="the grid, as log2 of AdamW's rate (x2 steps)",
    )
    parser.add_argument("--steps", type=int, default=200, help="steps of each curve's runs")
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup, a share of steps")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per point")
    parser.add_argument("--base-seeds", type=int, default=3, help="seeds at the base width")
    parser.add_argument("--pair-steps", type=int, default=1000)
    parser.add_argument("--pair-seeds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--head-size", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--val-windows", type=int, default=64, help="curve runs: the first N val windows"
    )
    parser.add_argument(
        "--pair-val-windows", type=int, default=1024, help="pair runs: the first N val windows"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    parser.add_argument("--cache", help="JSONL file of finished runs, reused by a rerun")
    parser.add_argument(
        "--cached-only", action="store_true", help="run nothing: write the results of --cache"
    )
    parser.add_argument(
        "--figure", default=str(RESULTS_DIR / "mutransfer.png"), help="PNG path ('' for none)"
    )
    add_results_argument(parser, "mutransfer")
    return parser.parse_args()


# --- one run (in a worker process) --------------------------------------------------------

_DM = None


def _data_module(args: argparse.Namespace, seed: int):
    """Tiny Shakespeare at character level, this study's context and batch size; the batch
    stream is the data module's (seed, step) function."""
    global _DM
    from mia.cli.train import build_datamodule
    from mia.conf import compose

    if _DM is None:
        cfg = compose(
            "train",
            [
                "data=tiny_shakespeare",
                f"data.path={Path(args.data).resolve()}",
                "tokenizer=char",
                f"data.block_size={args.block_size}",
                f"data.batch_size={args.batch_size}",
                "seed=0",
            ],
        )
        _DM = build_datamodule(cfg)
    _DM.seed = seed
    return _DM


def run(args: argparse.Namespace, job: dict) -> dict:
    """Train one model; its train loss over the last half of the steps and its val loss
    (nats per character)."""
    import torch

    from mia.model import Decoder, ModelConfig
    from mia.training.module import next_token_loss
    from mia.training.optim import build_optimizer, lr_at

    torch.set_num_threads(1)
    dm = _data_module(args, job["seed"])
    torch.manual_seed(job["seed"])
    config = ModelConfig.preset(
        "llama",
        vocab_size=dm.vocab_size,
        dim=job["width"],
        n_layers=args.layers,
        head_size=args.head_size,
        n_heads=1,
        n_kv_heads=1,  # with head_size: as many key/value heads as query heads
        max_seq_len=args.block_size,
        parametrization=job["parametrization"],
        mup_base_dim=min(args.widths),
    )
    model = Decoder(config)
    settings = {"name": "adamw", "lr": job["lr"], "betas": (0.9, 0.95), "weight_decay": 0.0}
    optimizer = build_optimizer(model, settings)
    initial = [group["lr"] for group in optimizer.param_groups]
    steps = job["steps"]
    warmup = max(1, round(args.warmup * steps))
    started = time.perf_counter()
    batches = iter(dm.train_dataloader())
    losses = []
    for step in range(steps):
        factor = lr_at(step, 1.0, warmup, steps, 0.0, "linear")
        for group, rate in zip(optimizer.param_groups, initial, strict=True):
            group["lr"] = rate * factor
        x, y = next(batches)
        loss = next_token_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    train = statistics.fmean(losses[steps // 2 :]) if len(losses) == steps else math.inf
    val = _val_loss(model, dm, job["val_windows"]) if math.isfinite(train) else math.inf
    return {
        **job,
        "train_loss": train if math.isfinite(train) else math.inf,
        "val_loss": val if math.isfinite(val) else math.inf,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _val_loss(model, dm, n_windows: int) -> float:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset

    windows = dm.val_dataloader().dataset
    chosen = Subset(windows, range(min(n_windows, len(windows))))
    nats = tokens = 0.0
    model.eval()
    with torch.no_grad():
        for x, y in DataLoader(chosen, batch_size=64, shuffle=False):
            logits = model(x).float()
            nats += F.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="sum", ignore_index=-100
            ).item()
            tokens += (y != -100).sum().item()
    return nats / tokens


# --- the study ----------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> dict:
    keys = ("layers", "head_size", "block_size", "batch_size", "warmup")
    return {**{k: getattr(args, k) for k in keys}, "base": min(args.widths)}


def _key(job: dict) -> tuple:
    fields = ("kind", "parametrization", "width", "lr", "seed", "steps", "val_windows")
    return tuple(job[k] for k in fields)


def _cached(cache: Path | None, args: argparse.Namespace) -> dict[tuple, dict]:
    if cache is None or not cache.is_file():
        return {}
    settings = _settings(args)
    rows = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    return {_key(r): r for r in rows if r.get("settings") == settings}


def curve_jobs(args: argparse.Namespace, widths: list[int]) -> list[dict]:
    base = min(args.widths)
    return [
        dict(
            kind="curve",
            parametrization=p,
            width=w,
            lr=2.0**k,
            seed=s,
            steps=args.steps,
            val_windows=args.val_windows,
        )
        for w in widths
        for p in PARAMETRIZATIONS
        for k in args.log2_lrs
        for s in range(args.base_seeds if w == base else args.seeds)
    ]


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (inf if any run diverged)."""
    if not all(math.isfinite(v) for v in values):
        return math.inf, 0.0
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def curves(runs: list[dict], metric: str = "train_loss") -> dict:
    """(parametrization, width) -> lr -> (mean, standard error) over seeds."""
    out: dict = {}
    for r in runs:
        if r["kind"] == "curve":
            out.setdefault((r["parametrization"], r["width"]), {}).setdefault(r["lr"], [])
            out[(r["parametrization"], r["width"])][r["lr"]].append(r[metric])
    return {key: {lr: mean_se(v) for lr, v in sorted(by.items())} for key, by in out.items()}


def best_lr(curve: dict[float, tuple[float, float]]) -> float:
    return min(curve, key=lambda lr: curve[lr][0])


def criteria(args, runs: list[dict], pair_lr: float | None) -> dict:
    table = curves(runs)
    base = min(args.widths)
    best = {
        p: {w: best_lr(table[(p, w)]) for w in args.widths if (p, w) in table}
        for p in PARAMETRIZATIONS
    }
    drift = {
        p: {w: round(math.log2(lr / best[p][base])) for w, lr in best[p].items()}
        for p in PARAMETRIZATIONS
    }
    result = {
        "best_lr": {p: {str(w): lr for w, lr in best[p].items()} for p in PARAMETRIZATIONS},
        "best_lr_drift_in_grid_steps": {
            p: {str(w): d for w, d in drift[p].items()} for p in PARAMETRIZATIONS
        },
        "a_mup_best_lr_within_one_grid_step": all(abs(d) <= 1 for d in drift["mup"].values()),
        "b_sp_largest_drift_in_grid_steps": max(drift["sp"].values(), key=abs),
    }
    pair = [r for r in runs if r["kind"] == "pair"]
    if pair_lr is not None and pair:
        wide = max(args.widths)
        by_width = {
            w: [r for r in pair if r["width"] == w and r["lr"] == pair_lr] for w in (base, wide)
        }
        stats = {}
        for metric in ("train_loss", "val_loss"):
            (mb, sb), (mw, sw) = (mean_se([r[metric] for r in by_width[w]]) for w in (base, wide))
            gap, se = mb - mw, math.hypot(sb, sw)
            stats[metric] = {
                f"width_{base}": [mb, sb],
                f"width_{wide}": [mw, sw],
                "wide_better_by": gap,
                "standard_error": se,
                "in_standard_errors": gap / se if se else math.inf,
            }
        result["c_pair"] = {
            "lr": pair_lr,
            "steps": args.pair_steps,
            "seeds": args.pair_seeds,
            **stats,
            "passes": stats["train_loss"]["wide_better_by"]
            > 2 * stats["train_loss"]["standard_error"],
        }
        result["c_pair_wide_beats_narrow_by_2_se"] = result["c_pair"]["passes"]
    return result


def markdown(args, runs: list[dict], found: dict) -> str:
    train, val = curves(runs), curves(runs, "val_loss")
    lines = []
    for p in PARAMETRIZATIONS:
        lines += [
            "",
            f"**{p}**: train loss over the last half of {args.steps} steps, mean ± standard "
            "error over seeds (val loss in brackets); best per width in bold",
            "",
            "| lr | " + " | ".join(f"width {w}" for w in args.widths) + " |",
            "|---" * (len(args.widths) + 1) + "|",
        ]
        for k in args.log2_lrs:
            lr = 2.0**k
            cells = []
            for w in args.widths:
                if lr not in train.get((p, w), {}):
                    cells.append("-")
                    continue
                (m, se), (v, _) = train[(p, w)][lr], val[(p, w)][lr]
                text = f"{m:.3f} ± {se:.3f} ({v:.3f})" if math.isfinite(m) else "diverged"
                cells.append(f"**{text}**" if lr == best_lr(train[(p, w)]) else text)
            lines.append(f"| 2^{k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(args, runs: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = curves(runs)
    finite = [m for c in table.values() for m, _ in c.values() if math.isfinite(m)]
    top = min(max(finite), min(finite) + 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, p in zip(axes, PARAMETRIZATIONS, strict=True):
        for w in args.widths:
            curve = table.get((p, w), {})
            lrs = list(curve)
            means = [min(curve[lr][0], top) for lr in lrs]
            errors = [curve[lr][1] if math.isfinite(curve[lr][0]) else 0 for lr in lrs]
            line = ax.errorbar(lrs, means, yerr=errors, marker="o", ms=4, capsize=3)
            line[0].set_label(f"width {w}")
            b = best_lr(curve)
            ax.plot([b], [curve[b][0]], marker="*", ms=14, color=line[0].get_color())
        ax.set_xscale("log", base=2)
        ax.set_xlabel("AdamW learning rate")
        title = "standard parametrisation" if p == "sp" else f"µP (base width {min(args.widths)})"
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("train loss, last half (nats/char)")
    fig.suptitle(
        f"Tiny Shakespeare, characters: learning-rate transfer, head size {args.head_size}, "
        f"{args.steps} steps (star: best; bars: standard error)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    cache = Path(args.cache) if args.cache else None
    done = _cached(cache, args)
    runs: list[dict] = []

    def execute(jobs: list[dict]) -> None:
        todo = []
        for job in jobs:
            if _key(job) in done:
                runs.append(done[_key(job)])
            elif not args.cached_only:
                todo.append(job)
        # the costliest first, so the two workers end together
        todo.sort(key=lambda j: -(j["width"] ** 2) * j["steps"])
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run, args, job) for job in todo]
            for future in as_completed(futures):
                row = future.result()
                runs.append(row)
                print(
                    f"{row['kind']:5} {row['parametrization']:3} width {row['width']:4} lr "
                    f"2^{math.log2(row['lr']):.0f} seed {row['seed']}: train "
                    f"{row['train_loss']:.4f} val {row['val_loss']:.4f} ({row['seconds']:.0f} s)",
                    flush=True,
                )
                if cache is not None:
                    with cache.open("a") as f:
                        f.write(json.dumps({**row, "settings": _settings(args)}) + "\n")

    base, wide = min(args.widths), max(args.widths)
    execute(curve_jobs(args, [base]))  # the base width first: it sets the pair's rate
    pair_lr = best_lr(curves(runs)[("mup", base)])
    pair = [
        dict(
            kind="pair",
            parametrization="mup",
            width=w,
            lr=pair_lr,
            seed=s,
            steps=args.pair_steps,
            val_windows=args.pair_val_windows,
        )
        for w in (base, wide)
        for s in range(args.pair_seeds)
    ]
    execute(pair + curve_jobs(args, [w for w in args.widths if w != base]))
    seconds = time.perf_counter() - started
    found = criteria(args, runs, pair_lr)
    train, val = curves(runs), curves(runs, "val_loss")
    rows = [
        [p, w, lr, *train[(p, w)][lr], val[(p, w)][lr][0]]
        for p in PARAMETRIZATIONS
        for w in args.widths
        for lr in train.get((p, w), {})
    ]
    notes = (
        f"Llama decoder, {args.layers} layers, head size {args.head_size}, context "
        f"{args.block_size}, batch {args.batch_size}, character level; AdamW betas (0.9, "
        f"0.95), no weight decay, no clipping, warmup {args.warmup:.0%} then linear to zero; "
        f"{args.steps} steps per curve run, {args.seeds} seeds per point ({args.base_seeds} at "
        f"the base width {base}); loss = train loss over the last half of the steps; val "
        f"loss over the first {args.val_windows * args.block_size:,} characters of the val "
        f"split ({args.pair_val_windows * args.block_size:,} for the pair: "
        f"{args.pair_steps} steps, {args.pair_seeds} seeds). Wall time "
        f"{seconds / 60:.1f} min on {args.workers} processes (cached runs count as free)."
    )
    result = {
        **make_result(
            "mutransfer",
            "µP learning-rate transfer on Tiny Shakespeare (characters): loss per rate and width",
            ["parametrization", "width", "lr", "train loss", "standard error", "val loss"],
            rows,
            notes,
        ),
        "wall_seconds": round(seconds, 1),
        "run_seconds": round(sum(r["seconds"] for r in runs), 1),
        "settings": {**_settings(args), "steps": args.steps, "widths": args.widths},
        "criteria": found,
        "runs": runs,
    }
    if args.results:
        write_result(result, Path(args.results))
    if args.figure:
        plot(args, runs, args.figure)
    print(markdown(args, runs, found))
    print("\ncriteria: " + json.dumps(found, indent=1))
    print(f"\nwall time {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
