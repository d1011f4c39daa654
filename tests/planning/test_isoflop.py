"""The IsoFLOP fit recovers a known law's exponents from noisy synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_sweep import LAW, isoflop_grid, n_opt

from mia.errors import UserError
from mia.planning.isoflop import (
    bootstrap,
    check_sweep_shape,
    fit_isoflop,
    interpolate_log,
    parabola_optimum,
)

BUDGETS = (1e18, 1e19, 1e20, 1e21)
A_TRUE = LAW["beta"] / (LAW["alpha"] + LAW["beta"])  # N_opt ~ C^a, a = 0.452
B_TRUE = LAW["alpha"] / (LAW["alpha"] + LAW["beta"])  # D_opt ~ C^b, b = 0.548
TOLERANCE = 0.02  # on the exponents, with 0.005 nats of noise on every run


def six_n(n: float) -> float:
    return 6 * n


def columns(runs):
    return [np.array(c) for c in zip(*runs, strict=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fit_recovers_the_exponents_of_the_law(seed):
    budgets, params, _, losses = columns(isoflop_grid(BUDGETS, noise=0.005, seed=seed))
    fit = fit_isoflop(budgets, params, losses, six_n)
    assert fit.n_law.exponent == pytest.approx(A_TRUE, abs=TOLERANCE)
    assert fit.d_law.exponent == pytest.approx(B_TRUE, abs=TOLERANCE)
    for optimum in fit.optima:  # each parabola's vertex near the law's best size
        assert optimum.inside
        assert optimum.n_opt == pytest.approx(n_opt(optimum.budget), rel=0.15)
    # The loss falls with compute, and the law's prediction one decade up is close.
    assert fit.loss_law.exponent < 0
    truth = min(isoflop_grid([1e22], sizes=41, spread=0.5, noise=0.0), key=lambda r: r[3])[3]
    assert fit.predict(1e22)["loss"] == pytest.approx(truth, rel=0.02)


def test_the_bootstrap_interval_holds_the_true_exponent():
    one = columns(isoflop_grid(BUDGETS, noise=0.01, seed=3))
    three = columns(isoflop_grid(BUDGETS, noise=0.01, seed=3, seeds=3))
    wide = bootstrap(one[0], one[1], one[3], six_n, samples=200).exponent_interval("n_law", 0.9)
    narrow = bootstrap(three[0], three[1], three[3], six_n, samples=200)
    narrow = narrow.exponent_interval("n_law", 0.9)
    assert wide[0] < A_TRUE < wide[1]
    assert narrow[0] < A_TRUE < narrow[1]
    assert wide[1] - wide[0] < 0.1 and narrow[1] - narrow[0] < 0.1


def test_a_parabola_needs_three_sizes_and_a_minimum():
    assert parabola_optimum(1.0, [1e3, 2e3], [3.0, 2.9]) is None
    assert parabola_optimum(1.0, [1e3, 2e3, 4e3], [3.0, 3.2, 3.0]) is None  # opens downwards
    optimum = parabola_optimum(1.0, [1e3, 2e3, 4e3], [3.0, 2.9, 3.0])
    assert optimum.n_opt == pytest.approx(2e3) and optimum.inside


def test_a_parabola_is_fitted_near_the_best_size_only():
    """Sizes far from the best (here the widest, starved of steps) do not move the vertex."""
    n = np.logspace(3, 5, 9)
    loss = 2.0 + 0.1 * (np.log(n) - np.log(1e4)) ** 2
    lopsided = loss + np.where(n > 4e4, 1.0, 0.0)  # the two widest sizes far worse
    assert parabola_optimum(1.0, n, lopsided).n_opt == pytest.approx(1e4, rel=1e-6)
    assert parabola_optimum(1.0, n, lopsided, neighbours=9).n_opt < 0.9e4


def test_sweeps_that_cannot_be_fitted_are_named_in_one_line():
    with pytest.raises(UserError, match="runs at 1 budget"):
        check_sweep_shape([1e10] * 3, [1, 2, 3], "sweep")
    with pytest.raises(UserError, match=r"three or more model sizes .*2e\+10: 1"):
        check_sweep_shape([1e10] * 3 + [2e10] * 3, [1, 2, 3, 5, 5, 5], "sweep")
    check_sweep_shape([1e10] * 3 + [2e10] * 3, [1, 2, 3, 1, 2, 3], "sweep")


def test_log_interpolation_is_exact_on_a_power_law():
    f = interpolate_log([1, 10, 100], [3, 30 * 10**0.5 / 10**0.5, 300])
    assert f(1000) == pytest.approx(3000)
    assert f(5) == pytest.approx(15)
