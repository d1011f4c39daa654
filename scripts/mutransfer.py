"""µP learning-rate transfer on Tiny Shakespeare: val loss against AdamW's learning rate at
several widths, under the standard parametrisation (sp) and under µP (mup, base width the
narrowest), with the speedrun's data settings (corpus, split, SentencePiece 1,024 without
byte pieces, shuffled epochs) and a fixed number of steps.

It writes docs/results/mutransfer.json and mutransfer.png (one curve per width, sp beside
mup), the pair of runs at the widest width (the narrow search's best rate under sp and under
mup) to docs/results/mutransfer_pair.json, and prints a Markdown table.

    OMP_NUM_THREADS=1 nice -n 5 python scripts/mutransfer.py \\
        --data <Tiny Shakespeare's input.txt>

The narrowest width runs the whole x2 grid (there sp and mup are the same model); each wider
width starts at the previous width's best rate and walks out one grid step at a time in
each direction until a step is worse (--full-grid runs everything). With --cache, finished
runs are kept in a JSONL file and a rerun with the same settings reuses them (--cached-only
writes the results from them alone).

Each run is a plain loop over MIA's own parts (Decoder, build_optimizer, the lr schedule,
the data module's (seed, step) batches) rather than a Lightning fit: on one thread the
study is dozens of short runs; val loss is over the first --val-windows windows of
the val split, the same for every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="Tiny Shakespeare's input.txt")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument(
        "--log2-lrs",
        type=float,
        nargs="+",
        default=[-12, -11, -10, -9, -8, -7, -6, -5, -4],
        help="the grid, as log2 of AdamW's rate (x2 steps)",
    )
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--val-windows", type=int, default=128, help="the first N windows of the val split"
    )
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "docs" / "results"))
    parser.add_argument(
        "--cache", help="a JSONL file of finished runs: reused by a rerun with the same settings"
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing: write the results of the runs in --cache",
    )
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="run every rate at every width (default: the whole grid at the narrowest width; "
        "wider ones walk out from the previous width's best until a step is worse)",
    )
    return parser.parse_args()


def data_module(args: argparse.Namespace):
    """The speedrun's data settings, at this study's context and batch size."""
    from mia.cli.train import build_datamodule
    from mia.conf import compose

    cfg = compose(
        "train",
        [
            "experiment=speedrun_cpu",
            f"data.path={Path(args.data).resolve()}",
            f"data.block_size={args.block_size}",
            f"data.batch_size={args.batch_size}",
            f"seed={args.seed}",
        ],
    )
    return build_datamodule(cfg)


def run(dm, args, width: int, parametrization: str, lr: float) -> dict[str, float]:
    """Train one model for args.steps steps; the whole val split's loss (nats per token)."""
    import torch
    import torch.nn.functional as F

    from mia.model import Decoder, ModelConfig
    from mia.training.module import next_token_loss
    from mia.training.optim import build_optimizer, lr_at

    torch.manual_seed(args.seed)
    config = ModelConfig.preset(
        "llama",
        vocab_size=dm.vocab_size,
        dim=width,
        n_layers=args.layers,
        n_heads=args.heads,
        n_kv_heads=args.heads,
        max_seq_len=args.block_size,
        parametrization=parametrization,
        mup_base_dim=min(args.widths) if parametrization == "mup" else None,
    )
    model = Decoder(config)
    settings = {"name": "adamw", "lr": lr, "betas": (0.9, 0.95), "weight_decay": 0.0}
    optimizer = build_optimizer(model, settings)
    initial = [group["lr"] for group in optimizer.param_groups]
    started = time.perf_counter()
    batches = iter(dm.train_dataloader())
    train_loss = math.nan
    for step in range(args.steps):
        factor = lr_at(step, 1.0, args.warmup, args.steps, 0.0, "linear")
        for group, rate in zip(optimizer.param_groups, initial, strict=True):
            group["lr"] = rate * factor
        x, y = next(batches)
        loss = next_token_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        train_loss = loss.item()
        if not math.isfinite(train_loss):
            break
    model.eval()
    nats = tokens = 0.0
    if math.isfinite(train_loss):
        with torch.no_grad():
            for x, y in val_batches(dm, args):
                logits = model(x).float()
                nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
                tokens += y.numel()
    val = nats / tokens if tokens else math.inf
    return {
        "val_loss": val if math.isfinite(val) else math.inf,
        "train_loss": train_loss,
        "seconds": time.perf_counter() - started,
    }


def val_batches(dm, args):
    """The first args.val_windows windows of the val split, in order, a batch at a time."""
    from torch.utils.data import DataLoader, Subset

    windows = dm.val_dataloader().dataset
    chosen = Subset(windows, range(min(args.val_windows, len(windows))))
    return DataLoader(chosen, batch_size=32, shuffle=False)


def _bracket(loss, lrs: list[float], start: int) -> None:
    """Walk the grid from lrs[start] down, then up, one x2 step at a time, until a step is
    worse than the best so far: the optimum is then bracketed by worse neighbours (on a
    curve with one minimum) without running the whole grid at the costly widths."""
    best_loss = loss(lrs[start])
    for direction in (-1, 1):
        i = start + direction
        while 0 <= i < len(lrs):
            value = loss(lrs[i])
            if not value < best_loss:
                break
            best_loss = value
            i += direction


def _settings(args: argparse.Namespace) -> dict:
    keys = ("steps", "warmup", "layers", "heads", "block_size", "batch_size", "seed")
    return {k: getattr(args, k) for k in (*keys, "val_windows", "widths")}


def _cached(cache: Path | None, args: argparse.Namespace) -> dict:
    """Runs recorded in the --cache file with these settings, by (parametrization, width, lr)."""
    if cache is None or not cache.is_file():
        return {}
    rows = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    settings = _settings(args)
    return {
        (r["parametrization"], r["width"], r["lr"]): {k: v for k, v in r.items() if k != "settings"}
        for r in rows
        if r.get("settings") == settings
    }


def best(rows: list[dict], parametrization: str, width: int) -> dict:
    mine = [r for r in rows if r["parametrization"] == parametrization and r["width"] == width]
    return min(mine, key=lambda r: r["val_loss"])


def table(rows: list[dict], widths: list[int], lrs: list[float]) -> str:
    lines = []
    for p in ("sp", "mup"):
        lines.append(f"\n**{p}** (val loss, nats/token; best per width in bold)\n")
        lines.append("| lr | " + " | ".join(f"width {w}" for w in widths) + " |")
        lines.append("|---" * (len(widths) + 1) + "|")
        bests = {w: best(rows, p, w)["lr"] for w in widths}
        for lr in lrs:
            cells = []
            for w in widths:
                r = next(
                    (
                        r
                        for r in rows
                        if r["parametrization"] == p and r["width"] == w and r["lr"] == lr
                    ),
                    None,
                )
                if r is None:
                    cells.append("-")
                    continue
                v = r["val_loss"]
                text = f"{v:.4f}" if math.isfinite(v) else "diverged"
                cells.append(f"**{text}**" if bests[w] == lr else text)
            lines.append(f"| 2^{math.log2(lr):.0f} = {lr:.2e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], widths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    finite = [r["val_loss"] for r in rows if math.isfinite(r["val_loss"])]
    top = min(max(finite), min(finite) + 1.5)
    for ax, p in zip(axes, ("sp", "mup"), strict=True):
        for w in widths:
            mine = sorted(
                (r for r in rows if r["parametrization"] == p and r["width"] == w),
                key=lambda r: r["lr"],
            )
            xs = [r["lr"] for r in mine]
            ys = [min(r["val_loss"], top) for r in mine]
            (line,) = ax.plot(xs, ys, marker="o", label=f"width {w}")
            b = best(rows, p, w)
            ax.plot([b["lr"]], [b["val_loss"]], marker="*", ms=14, color=line.get_color())
        ax.set_xscale("log", base=2)
        ax.set_xlabel("AdamW learning rate")
        ax.set_title("standard parametrisation" if p == "sp" else f"µP (base width {widths[0]})")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("val loss (nats/token)")
    fig.suptitle("Tiny Shakespeare: learning-rate transfer across widths (star: best)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


RUN_COLUMNS = ["parametrization", "width", "lr", "val loss", "seconds"]


def run_row(run: dict) -> list:
    """A run as a row of the results file's table."""
    return [
        run["parametrization"],
        run["width"],
        run["lr"],
        round(run["val_loss"], 4),
        round(run["seconds"], 1),
    ]


def stamp(args: argparse.Namespace, seconds: float) -> dict:
    import torch

    from mia.results import processor_name

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": processor_name(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "command": "OMP_NUM_THREADS=1 nice -n 5 python " + " ".join(sys.argv),
        "wall_seconds": round(seconds, 1),
        "settings": {
            "depth": args.layers,
            "heads": args.heads,
            "context": args.block_size,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup": args.warmup,
            "schedule": "linear to zero",
            "optimizer": "AdamW betas (0.9, 0.95), weight decay 0, grad clip 1.0",
            "data": "experiment=speedrun_cpu data (Tiny Shakespeare 90/10, SentencePiece "
            "BPE 1024 without byte pieces, shuffled epochs)",
            "val": f"the first {args.val_windows} windows of the val split",
            "mup_base_dim": min(args.widths),
            "seed": args.seed,
        },
    }


def main() -> None:
    from mia.results import make_result, write_result

    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dm = data_module(args)
    lrs = [2.0**k for k in args.log2_lrs]
    cache = Path(args.cache) if args.cache else None
    done = _cached(cache, args)
    rows: list[dict] = []

    def evaluate(p: str, w: int, lr: float) -> dict:
        for row in rows:
            if (row["parametrization"], row["width"], row["lr"]) == (p, w, lr):
                return row
        if p == "mup" and w == min(args.widths):  # at its base width µP is sp: one run
            row = {**evaluate("sp", w, lr), "parametrization": "mup"}
        elif (p, w, lr) in done:
            row = done[(p, w, lr)]
        elif args.cached_only:
            return {"val_loss": math.nan}  # not run: left out of the results
        else:
            result = run(dm, args, w, p, lr)
            row = {"parametrization": p, "width": w, "lr": lr, **result}
            print(
                f"{p:3} width {w:4} lr {lr:.2e}: val {row['val_loss']:.4f} "
                f"({row['seconds']:.0f} s)",
                flush=True,
            )
            if cache is not None:
                with cache.open("a") as f:
                    f.write(json.dumps({**row, "settings": _settings(args)}) + "\n")
        rows.append(row)
        return row

    narrow, wide = min(args.widths), max(args.widths)
    for lr in lrs:  # the narrow search: the whole grid (sp and mup are one model there)
        evaluate("sp", narrow, lr)
        evaluate("mup", narrow, lr)
    tuned = best(rows, "sp", narrow)["lr"]
    # The pair first (the narrow search's best rate at the widest width, mup and sp), then
    # each parametrisation's own optimum at the wider widths: a study stopped early (its
    # finished runs are in --cache) has the most telling runs.
    for p in ("mup", "sp"):
        evaluate(p, wide, tuned)
    for p in ("mup", "sp"):
        start = lrs.index(tuned)
        for w in args.widths[1:]:
            if args.full_grid:
                for lr in lrs:
                    evaluate(p, w, lr)
            else:
                _bracket(lambda lr, p=p, w=w: evaluate(p, w, lr)["val_loss"], lrs, start)
            start = lrs.index(best(rows, p, w)["lr"])
    for p, w, lr in done:  # finished runs the walk did not need (a --full-grid start, say)
        if w in args.widths and lr in lrs:
            evaluate(p, w, lr)
    seconds = time.perf_counter() - started
    narrow, wide = min(args.widths), max(args.widths)
    optimum = {p: {str(w): best(rows, p, w)["lr"] for w in args.widths} for p in ("sp", "mup")}
    drift = {
        p: {
            str(w): round(math.log2(optimum[p][str(w)] / optimum[p][str(narrow)]))
            for w in args.widths
        }
        for p in ("sp", "mup")
    }
    # Runs reused from --cache count with the time they took when they ran.
    trained = [r for r in rows if not (r["parametrization"] == "mup" and r["width"] == narrow)]
    results = {
        **make_result(
            "mutransfer",
            "µP learning-rate transfer on Tiny Shakespeare: val loss of each run",
            RUN_COLUMNS,
            [run_row(r) for r in rows],
        ),
        **stamp(args, seconds),
        "runs_total_seconds": round(sum(r["seconds"] for r in trained), 1),
        "best_lr": optimum,
        "best_lr_drift_in_grid_steps": drift,
        "runs": rows,
    }
    write_result(results, out / "mutransfer.json")
    plot(rows, args.widths, out / "mutransfer.png")
    # The pair: the narrow search's best rate (at the base width, where sp and mup are one
    # model) used at the widest width, under sp and under mup; runs of the study itself.
    pair = {
        p: next(
            r for r in rows if r["parametrization"] == p and r["width"] == wide and r["lr"] == tuned
        )
        for p in ("sp", "mup")
    }
    write_result(
        {
            **make_result(
                "mutransfer_pair",
                f"Tuned at width {narrow}, trained at width {wide}: sp against mup",
                RUN_COLUMNS,
                [run_row(pair["sp"]), run_row(pair["mup"])],
            ),
            **stamp(args, seconds),
            "tuned_at_width": narrow,
            "trained_at_width": wide,
            "lr_from_narrow_search": tuned,
            "sp": pair["sp"],
            "mup": pair["mup"],
            "mup_better_by_nats": pair["sp"]["val_loss"] - pair["mup"]["val_loss"],
        },
        out / "mutransfer_pair.json",
    )
    print(table(rows, args.widths, lrs))
    print(f"\nbest lr drift in x2 grid steps from width {narrow}: {json.dumps(drift)}")
    print(
        f"pair at width {wide}, lr {tuned:.2e} from width {narrow}: sp "
        f"{pair['sp']['val_loss']:.4f}, mup {pair['mup']['val_loss']:.4f}"
    )
    print(f"wall time {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
