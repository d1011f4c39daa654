"""µP's coordinate check as a figure: each layer's mean |activation| against the width,
after a few AdamW steps at a large rate, under the standard parametrisation (sp) beside µP.

Writes docs/results/coord_check.json (one row per parametrisation, step, width) and
docs/results/coord_check.png (one panel per parametrisation and step, one line per layer),
and prints the table. The model is tiny (2 layers, 8-symbol vocabulary, 8 positions, one
random batch, sizes averaged over 3 seeds), widened from the base width 32 with a fixed
head size (--head-size) or a fixed head count (--heads); tests/model/test_mup.py asserts
the same measurement.

    python scripts/coord_check.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mia.model import ModelConfig
from mia.results import RESULTS_DIR, add_results_argument, make_result, save
from mia.training.coord_check import activation_sizes, layer_names, spread


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--base", type=int, default=32, help="µP's base width")
    parser.add_argument("--steps", type=int, default=3, help="AdamW steps")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="sizes averaged over this many")
    heads = parser.add_mutually_exclusive_group()
    heads.add_argument("--head-size", type=int, default=8, help="fixed head size (default)")
    heads.add_argument("--heads", type=int, default=None, help="fixed head count instead")
    parser.add_argument(
        "--figure", default=str(RESULTS_DIR / "coord_check.png"), help="PNG path ('' for none)"
    )
    add_results_argument(parser, "coord_check")
    return parser.parse_args()


def model_config(args: argparse.Namespace, width: int, parametrization: str) -> ModelConfig:
    heads = dict(n_heads=args.heads) if args.heads else dict(head_size=args.head_size)
    return ModelConfig.preset(
        "llama",
        vocab_size=8,
        dim=width,
        n_layers=args.layers,
        n_kv_heads=None,
        max_seq_len=8,
        parametrization=parametrization,
        mup_base_dim=args.base,
        **heads,
    )


def plot(
    table: dict, layers: list[str], widths: list[int], steps: int, lr: float, base: int, path: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, steps, figsize=(3.6 * steps, 6.4), sharex=True, squeeze=False)
    for row, parametrization in enumerate(("sp", "mup")):
        for step in range(steps):
            ax = axes[row][step]
            for layer in layers:
                sizes = [table[parametrization][w][step][layer] for w in widths]
                ax.plot(widths, sizes, marker="o", label=layer)
            ax.set(xscale="log", yscale="log", title=f"{parametrization}, after step {step + 1}")
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.minorticks_off()
            if step == 0:
                ax.set_ylabel("mean |activation|")
            if row == 1:
                ax.set_xlabel("width")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Coordinate check: AdamW at lr {lr:g}, one batch, base width {base}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    layers = layer_names(args.layers)
    table = {
        p: {
            w: activation_sizes(
                model_config(args, w, p),
                steps=args.steps,
                lr=args.lr,
                seeds=tuple(range(args.seeds)),
            )
            for w in args.widths
        }
        for p in ("sp", "mup")
    }
    rows = [
        [p, step + 1, w, *(round(table[p][w][step][layer], 5) for layer in layers)]
        for p in ("sp", "mup")
        for step in range(args.steps)
        for w in args.widths
    ]
    spreads = {
        p: max(
            spread({w: table[p][w][step] for w in args.widths}, layer)
            for step in range(args.steps)
            for layer in layers
        )
        for p in ("sp", "mup")
    }
    mode = f"head count {args.heads}" if args.heads else f"head size {args.head_size}"
    notes = (
        f"Mean |output| of each layer of a {args.layers}-layer llama decoder (vocabulary 8, "
        f"8 positions, batch 4, one fixed random batch, mean over {args.seeds} seeds) after "
        f"each of {args.steps} AdamW "
        f"steps at lr {args.lr}, base width {args.base}, {mode}; scores are q.k times the "
        f"attention scale. Largest max/min ratio across widths of any layer at any step: "
        f"sp {spreads['sp']:.1f}x, mup {spreads['mup']:.2f}x. "
        f"Took {time.perf_counter() - start:.0f} s."
    )
    result = make_result(
        "coord_check",
        "µP coordinate check: mean |activation| per layer against width",
        ["parametrization", "step", "width", *layers],
        rows,
        notes,
    )
    save(result, args.results)
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot(table, layers, args.widths, args.steps, args.lr, args.base, args.figure)
        print(f"figure written to {args.figure}")


if __name__ == "__main__":
    main()
