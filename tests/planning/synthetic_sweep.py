"""IsoFLOP runs drawn from a known law, L(N, D) = E + A / N^alpha + B / D^beta, with noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mia.model import ModelConfig
from mia.planning.flops import matmul_parameters, training_flops_per_token
from mia.planning.runs import COLUMNS

# Chinchilla's fitted law (Hoffmann et al. 2022, approach 3).
LAW = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def loss(n: float, d: float, law: dict = LAW) -> float:
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


def n_opt(budget: float, law: dict = LAW) -> float:
    """The law's best size at C = 6 N D (Chinchilla's closed form)."""
    a, b = law["alpha"], law["beta"]
    g = (a * law["A"] / (b * law["B"])) ** (1 / (a + b))
    return g * (budget / 6) ** (b / (a + b))


def isoflop_grid(budgets, sizes=7, spread=0.7, noise=0.005, seeds=1, seed=0, law=LAW):
    """(budget, N, D, loss) of runs at `sizes` sizes log-spaced about each budget's best,
    `spread` decades either side; D = C / 6N."""
    rng = np.random.default_rng(seed)
    runs = []
    for budget in budgets:
        for n in n_opt(budget, law) * np.logspace(-spread, spread, sizes):
            for _ in range(seeds):
                d = budget / (6 * n)
                runs.append((budget, n, d, loss(n, d, law) + rng.normal(0, noise)))
    return runs


# The family's model as a sweep records it: sizes that follow the width (hidden_dim) unset.
FAMILY_MODEL = {
    **ModelConfig.preset("llama", vocab_size=65, dim=32, n_layers=2, n_heads=4, n_kv_heads=4,
                         multiple_of=8, max_seq_len=64).to_dict(),
    "hidden_dim": None,
}  # fmt: skip
WIDTHS = (16, 24, 32, 48, 64)


def results_file(
    path: Path,
    budgets=(5e10, 1e11, 2e11),
    widths=WIDTHS,
    train_tokens: int = 4_000_000,
    law: dict = LAW,
) -> Path:
    """A results file (the format scripts/isoflop.py writes) of runs of MIA's IsoFLOP family
    at `widths`, their losses drawn from a law whose best sizes fall among those widths."""
    rng = np.random.default_rng(1)
    rows = []
    for budget in budgets:
        for width in widths:
            config = ModelConfig.from_dict({**FAMILY_MODEL, "dim": width})
            n = matmul_parameters(config)
            per_token = training_flops_per_token(config, 64)
            steps = int(budget // (per_token * 2048))
            tokens = steps * 2048
            value = loss(n, tokens, law) + rng.normal(0, 0.002)
            seconds = tokens * per_token / 3e9
            epochs = tokens / train_tokens
            row = [budget, width, 2, n, tokens, steps, tokens * per_token, value, seconds, 1337]
            rows.append([*row, epochs])  # in the order of COLUMNS
    result = {
        "name": "isoflop",
        "title": "synthetic",
        "columns": COLUMNS,
        "rows": rows,
        "family": {
            "overrides": ["experiment=isoflop"],
            "model": FAMILY_MODEL,
            "block_size": 64,
            "batch_size": 32,
            "tokens_per_step": 2048,
            "train_tokens": train_tokens,
            "lr": 0.01,
            "metric": "val/loss",
        },
    }
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


# A law whose best sizes at 5e10-2e11 FLOPs lie among the family's widths (N ~ 8k-105k).
SMALL_LAW = dict(E=1.2, A=160.0, B=300.0, alpha=0.34, beta=0.28)
