"""The IsoFLOP fit: Chinchilla's approach 2 (Hoffmann et al. 2022, section 3.2).

At each compute budget C, a parabola of the loss in ln N through that budget's runs near
its best (the best size and up to two sizes either side: far from the best, small budgets'
curves are lopsided, the widest models getting too few steps) gives the best size N_opt(C)
(its vertex) and the loss there, L_opt(C). Across budgets, straight
lines in log-log space give the power laws

    N_opt = k_N C^a,   D_opt = k_D C^b,   L_opt = E + k_L C^-c

(D_opt(C) is C over the training FLOPs per token of an N_opt model). The loss law has its
irreducible term E (0 <= E < the lowest L_opt) from three budgets on; with two it is a pure
power law (E = 0). A pure power law keeps falling where the true curve flattens, so it errs
low far from the sweep: on MIA's own sweep (docs/planning.md) it predicted 7 % below the
loss then measured at three times the top budget (the saturating law, fitted to the same
runs afterwards, 0.2 %). Intervals come
from a bootstrap: the runs of each budget are drawn again with replacement (seeds are runs
too), and the whole fit is repeated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mia.errors import UserError

SATURATING_MIN_BUDGETS = 3  # L = E + A C^-c: three parameters, three budgets at least


@dataclass(frozen=True)
class PowerLaw:
    """y = offset + k * x**exponent (offset 0: a straight line in log-log space)."""

    k: float
    exponent: float
    offset: float = 0.0

    def __call__(self, x: float) -> float:
        return self.offset + self.k * x**self.exponent

    @classmethod
    def fit(cls, x: Sequence[float], y: Sequence[float]) -> PowerLaw:
        slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
        return cls(float(math.exp(intercept)), float(slope))

    @classmethod
    def fit_saturating(cls, x: Sequence[float], y: Sequence[float]) -> PowerLaw:
        """y = E + k x^exponent with 0 <= E < min(y): the E (on a fine grid) whose power law
        of y - E fits best in log-log space (least squares, all grid points at once)."""
        y_a = np.asarray(y, dtype=float)
        lx = np.log(np.asarray(x, dtype=float))
        offsets = np.linspace(0.0, 0.995 * y_a.min(), 400)
        ly = np.log(y_a[None, :] - offsets[:, None])  # (offsets, points)
        dx = lx - lx.mean()
        slopes = (ly - ly.mean(axis=1, keepdims=True)) @ dx / (dx @ dx)
        intercepts = ly.mean(axis=1) - slopes * lx.mean()
        errors = ((ly - intercepts[:, None] - slopes[:, None] * lx) ** 2).sum(axis=1)
        errors[slopes >= 0] = np.inf
        if not np.isfinite(errors).any():
            return cls.fit(x, y)
        i = int(np.argmin(errors))
        return cls(float(math.exp(intercepts[i])), float(slopes[i]), float(offsets[i]))


@dataclass(frozen=True)
class Optimum:
    """One budget's parabola: its vertex (N_opt, L_opt) and the curvature in ln N."""

    budget: float
    n_opt: float
    loss_opt: float
    curvature: float
    inside: bool  # the vertex lies between the budget's smallest and largest size


@dataclass(frozen=True)
class IsoFlopFit:
    optima: list[Optimum]
    n_law: PowerLaw
    d_law: PowerLaw
    loss_law: PowerLaw

    @property
    def curvature(self) -> float:
        """The parabolas' mean curvature: the loss over (ln N - ln N_opt)^2."""
        return float(np.mean([o.curvature for o in self.optima]))

    def predict(self, budget: float, n: float | None = None) -> dict[str, float]:
        """N_opt, D_opt and the loss at `budget`; the loss of a model of size `n` (default
        N_opt) adds the parabola's rise away from the optimum."""
        n_opt = self.n_law(budget)
        off = 0.0 if n is None else math.log(n / n_opt)
        return {
            "n_opt": n_opt,
            "d_opt": self.d_law(budget),
            "loss": self.loss_law(budget) + self.curvature * off * off,
        }


NEIGHBOURS = 2  # sizes either side of a budget's best that its parabola is fitted through


def parabola_optimum(
    budget: float, params: Sequence[float], losses: Sequence[float], neighbours: int = NEIGHBOURS
) -> Optimum | None:
    """The vertex of loss = a (ln N)^2 + b ln N + c through the runs of the best size and of
    up to `neighbours` sizes either side, or None where there is none (fewer than three
    sizes, or a curve that opens downwards)."""
    x_all = np.log(np.asarray(params, dtype=float))
    y_all = np.asarray(losses, dtype=float)
    sizes = np.unique(x_all)
    if len(sizes) < 3:
        return None
    means = np.array([y_all[x_all == size].mean() for size in sizes])
    best = int(np.argmin(means))
    low, high = max(0, best - neighbours), min(len(sizes), best + neighbours + 1)
    if high - low < 3:  # the best at an end: take the three nearest it
        low, high = (0, 3) if best == 0 else (len(sizes) - 3, len(sizes))
    near = (x_all >= sizes[low]) & (x_all <= sizes[high - 1])
    x = x_all[near]
    a, b, c = np.polyfit(x, y_all[near], 2)
    if not a > 0:
        return None
    x_opt = -b / (2 * a)
    return Optimum(
        budget=budget,
        n_opt=float(math.exp(x_opt)),
        loss_opt=float(c - b * b / (4 * a)),
        curvature=float(a),
        inside=bool(x_all.min() <= x_opt <= x_all.max()),
    )


def fit_isoflop(
    budgets: Sequence[float],
    params: Sequence[float],
    losses: Sequence[float],
    flops_per_token: Callable[[float], float],
) -> IsoFlopFit:
    """The fit of runs (budget, N, loss); `flops_per_token(N)` turns a size into the
    training FLOPs each token costs it (6 N in Chinchilla's rule)."""
    budgets_a = np.asarray(budgets, dtype=float)
    optima = []
    for budget in sorted(set(budgets_a.tolist())):
        at = budgets_a == budget
        optimum = parabola_optimum(budget, np.asarray(params)[at], np.asarray(losses)[at])
        if optimum is None:
            raise ValueError(f"no parabola at budget {budget:g}")
        optima.append(optimum)
    if len(optima) < 2:
        raise ValueError("one budget: a power law needs two or more")
    cs = [o.budget for o in optima]
    loss_fit = PowerLaw.fit_saturating if len(cs) >= SATURATING_MIN_BUDGETS else PowerLaw.fit
    return IsoFlopFit(
        optima=optima,
        n_law=PowerLaw.fit(cs, [o.n_opt for o in optima]),
        d_law=PowerLaw.fit(cs, [o.budget / flops_per_token(o.n_opt) for o in optima]),
        loss_law=loss_fit(cs, [o.loss_opt for o in optima]),
    )


def check_sweep_shape(budgets: Sequence[float], params: Sequence[float], where: str) -> None:
    """A user's sweep that cannot be fitted, in one line: fewer than two budgets, or a
    budget with fewer than three sizes."""
    sizes: dict[float, set[float]] = {}
    for budget, n in zip(budgets, params, strict=True):
        sizes.setdefault(float(budget), set()).add(float(n))
    if len(sizes) < 2:
        raise UserError(
            f"from={where}: runs at {len(sizes)} budget; the power laws need two or more "
            "(sweep budget_flops over several values)"
        )
    thin = sorted(b for b, s in sizes.items() if len(s) < 3)
    if thin:
        counts = ", ".join(f"{b:g}: {len(sizes[b])}" for b in thin)
        raise UserError(
            f"from={where}: a parabola needs three or more model sizes at each budget "
            f"(sizes per budget {counts}); sweep model.dim over several widths"
        )


@dataclass(frozen=True)
class Bootstrap:
    """The fit redone on resampled runs: its predictions' quantiles at a budget."""

    fits: list[IsoFlopFit]

    def interval(
        self, budget: float, key: str, confidence: float, n: float | None = None
    ) -> tuple[float, float]:
        values = np.array([f.predict(budget, n)[key] for f in self.fits])
        tail = (1 - confidence) / 2
        return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))

    def exponent_interval(self, law: str, confidence: float) -> tuple[float, float]:
        values = np.array([getattr(f, law).exponent for f in self.fits])
        tail = (1 - confidence) / 2
        return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def bootstrap(
    budgets: Sequence[float],
    params: Sequence[float],
    losses: Sequence[float],
    flops_per_token: Callable[[float], float],
    samples: int = 400,
    seed: int = 0,
) -> Bootstrap:
    """`samples` fits, each on the runs of every budget drawn again with replacement; a
    draw without a parabola at some budget (too few distinct sizes), or whose vertex falls
    outside the sizes swept there, is drawn again."""
    rng = np.random.default_rng(seed)
    budgets_a = np.asarray(budgets, dtype=float)
    params_a, losses_a = np.asarray(params, dtype=float), np.asarray(losses, dtype=float)
    groups = [np.flatnonzero(budgets_a == b) for b in sorted(set(budgets_a.tolist()))]
    fits: list[IsoFlopFit] = []
    tries = 0
    while len(fits) < samples and tries < 20 * samples:
        tries += 1
        pick = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        try:
            fit = fit_isoflop(budgets_a[pick], params_a[pick], losses_a[pick], flops_per_token)
        except ValueError:
            continue
        if all(o.inside for o in fit.optima):
            fits.append(fit)
    return Bootstrap(fits)


def interpolate_log(xs: Sequence[float], ys: Sequence[float]) -> Callable[[float], float]:
    """y(x) through the points, linear in log-log space (a power law between neighbours, the
    end segments extended); points that share an x count as their geometric mean."""
    lx_all = np.log(np.asarray(xs, dtype=float))
    ly_all = np.log(np.asarray(ys, dtype=float))
    lx = np.unique(lx_all)
    ly = np.array([ly_all[lx_all == x].mean() for x in lx])
    if len(lx) == 1:
        return lambda x: float(math.exp(ly[0]) * x / math.exp(lx[0]))

    def f(x: float) -> float:
        t = math.log(x)
        i = int(np.clip(np.searchsorted(lx, t) - 1, 0, len(lx) - 2))
        slope = (ly[i + 1] - ly[i]) / (lx[i + 1] - lx[i])
        return float(math.exp(ly[i] + slope * (t - lx[i])))

    return f
