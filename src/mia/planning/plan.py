"""A recommendation for a compute budget: the model, tokens, steps and learning rate, the
val loss it should reach, its wall time, and the `mia-train` command that trains it.

The model is the width of the sweep's family (same depth, heads and everything else) whose
N comes nearest to N_opt(budget) in log scale, among widths the family allows (a multiple
of the head count, and of twice it under RoPE); its steps are what `budget_flops` buys it,
exactly as `mia-train` will compute them.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

from mia.errors import UserError
from mia.planning.flops import (
    matmul_parameters,
    step_flops,
    steps_for_budget,
    training_flops_per_token,
)
from mia.planning.isoflop import bootstrap, check_sweep_shape, fit_isoflop, interpolate_log
from mia.planning.runs import Sweep

EPOCH_WARNING = 4.0  # past about 4 epochs repeated data bends the scaling law (Muennighoff)


@dataclass
class Plan:
    values: dict[str, Any]
    warnings: list[str]

    def text(self) -> str:
        v = self.values
        lo, hi = v["interval"]
        lines = [
            f"IsoFLOP fit of {v['runs']} runs at {len(v['sweep_budgets'])} budgets "
            f"({', '.join(f'{b:.3g}' for b in v['sweep_budgets'])} FLOPs): "
            f"N_opt ~ C^{v['laws']['a']:.3f} [{v['laws']['a_interval'][0]:.3f}, "
            f"{v['laws']['a_interval'][1]:.3f}], D_opt ~ C^{v['laws']['b']:.3f}, "
            f"L_opt = {v['laws']['loss_offset']:.3f} + {v['laws']['loss_k']:.3g} "
            f"C^{v['laws']['loss_exponent']:.3f}",
            f"budget:          {v['budget']:.4g} FLOPs (training: 6N + 12 L T H D per token)",
            f"model:           width {v['width']}, depth {v['depth']}, "
            f"{v['params']:,} parameters (N, matmul weights; N_opt {v['n_opt']:,.0f})",
            f"tokens:          {v['tokens']:,} ({v['steps']:,} steps of {v['tokens_per_step']:,} "
            f"tokens; {v['epochs']:.2f} epochs of the train split; D_opt {v['d_opt']:,.0f})",
            f"learning rate:   {v['lr']:g}"
            + (
                f" (µP from base width {v['mup_base_dim']}: hidden matrices at "
                f"{v['hidden_lr']:.4g})"
                if v.get("hidden_lr") is not None
                else ""
            ),
            f"predicted {v['metric']}: {v['predicted_val_loss']:.4f} "
            f"[{lo:.4f}, {hi:.4f}] ({v['confidence']:.0%} bootstrap interval)",
            f"wall time:       about {_duration(v['wall_s'])} of fit at the sweep's speed "
            f"({v['flops_per_s'] / 1e9:.2f} GFLOP/s at this size)",
            "command:",
            f"  {v['command']}",
        ]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def family_widths(sweep: Sweep, upto: int) -> list[int]:
    """Widths the family's model allows, up to `upto`."""
    model = sweep.family.model
    step = int(model["n_heads"]) * (2 if model.get("position", "rope") == "rope" else 1)
    return list(range(step, upto + 1, step))


def make_plan(sweep: Sweep, budget: float, confidence: float = 0.9, samples: int = 400) -> Plan:
    """The recommendation at `budget` FLOPs from the sweep's runs."""
    where = sweep.source
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
        raise UserError(f"budget={budget}: must be a number of FLOPs > 0, e.g. budget=1e12")
    # In one order whatever the source's, so the bootstrap draws the same resamples.
    runs = sorted(sweep.runs, key=lambda r: (r.budget, r.params, r.seed, r.loss))
    budgets = [r.budget for r in runs]
    params = [r.params for r in runs]
    losses = [r.loss for r in runs]
    check_sweep_shape(budgets, params, where)
    smallest = min(budgets)
    if budget < smallest:
        raise UserError(
            f"budget={budget:g}: below the sweep's smallest budget ({smallest:g}); mia-plan "
            "extrapolates upwards only: give a budget of at least that"
        )
    per_token = interpolate_log(params, [r.flops / r.tokens for r in runs])
    try:
        fit = fit_isoflop(budgets, params, losses, per_token)
    except ValueError as err:
        raise UserError(
            f"from={where}: the IsoFLOP fit failed ({err}): the loss does not curve upwards "
            "on both sides of a best size at some budget; sweep wider or more widths"
        ) from None
    boot = bootstrap(budgets, params, losses, per_token, samples=samples)
    predicted = fit.predict(budget)

    family = sweep.family
    width = min(
        family_widths(sweep, max(4 * max(r.width for r in runs), 64) * 8),
        key=lambda w: abs(math.log(matmul_parameters(family.config(w)) / predicted["n_opt"])),
    )
    config = family.config(width)
    n = matmul_parameters(config)
    per_step = step_flops(config, family.tokens_per_step // family.block_size, family.block_size)
    steps = steps_for_budget(budget, per_step, setting="budget")
    tokens = steps * family.tokens_per_step
    flops = tokens * training_flops_per_token(config, family.block_size)
    speed = interpolate_log(params, [r.flops / r.seconds for r in runs])(n)
    predicted["loss"] = fit.predict(budget, n)["loss"]
    lo, hi = boot.interval(budget, "loss", confidence, n)
    epochs = tokens / family.train_tokens if family.train_tokens else 0.0
    m = config.width_multiplier
    overrides = [*family.overrides, f"model.dim={width}", f"budget_flops={budget:.6g}"]
    values: dict[str, Any] = {
        "command": shlex.join(["mia-train", *overrides]),
        "budget": float(budget),
        "width": width,
        "depth": config.n_layers,
        "params": n,
        "n_opt": predicted["n_opt"],
        "d_opt": predicted["d_opt"],
        "tokens": tokens,
        "steps": steps,
        "tokens_per_step": family.tokens_per_step,
        "flops": float(flops),
        "epochs": epochs,
        "lr": family.lr,
        "hidden_lr": family.lr / m if config.parametrization == "mup" else None,
        "mup_base_dim": config.mup_base_dim if config.parametrization == "mup" else None,
        "metric": family.metric,
        "predicted_val_loss": predicted["loss"],
        "interval": [lo, hi],
        "confidence": confidence,
        "wall_s": flops / speed,
        "flops_per_s": speed,
        "runs": len(runs),
        "sweep_budgets": sorted(set(budgets)),
        "laws": {
            "a": fit.n_law.exponent,
            "a_interval": list(boot.exponent_interval("n_law", confidence)),
            "b": fit.d_law.exponent,
            "b_interval": list(boot.exponent_interval("d_law", confidence)),
            "loss_exponent": fit.loss_law.exponent,
            "loss_offset": fit.loss_law.offset,
            "loss_k": fit.loss_law.k,
            "n_k": fit.n_law.k,
            "d_k": fit.d_law.k,
        },
        "optima": [
            {"budget": o.budget, "n_opt": o.n_opt, "loss_opt": o.loss_opt, "inside": o.inside}
            for o in fit.optima
        ],
    }
    warnings = []
    if epochs > EPOCH_WARNING:
        warnings.append(
            f"warning: {tokens:,} tokens are {epochs:.1f} epochs of the train split; past "
            f"about {EPOCH_WARNING:g} repeated data bends the law, so the loss will likely be "
            "higher than predicted"
        )
    outside = [o.budget for o in fit.optima if not o.inside]
    if outside:
        warnings.append(
            "warning: at budget(s) "
            + ", ".join(f"{b:g}" for b in outside)
            + " the best size lies outside the sizes swept; the fit extrapolates there"
        )
    values["warnings"] = warnings
    return Plan(values, warnings)


def fitted_curves(sweep: Sweep) -> dict[float, np.ndarray]:
    """Each budget's parabola coefficients (for plots)."""
    out = {}
    for budget in sweep.budgets:
        at = [r for r in sweep.runs if r.budget == budget]
        x = np.log([r.params for r in at])
        out[budget] = np.polyfit(x, [r.loss for r in at], 2)
    return out
