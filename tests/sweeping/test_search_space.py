"""Hydra's sweep syntax to Optuna distributions, and trial values back to overrides."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mia.errors import UserError
from mia.sweeping.search_space import as_override, search_space


def test_the_template_syntax_maps_to_optuna_distributions():
    space, fixed = search_space(
        {
            "optimizer.lr": "tag(log, interval(3e-4, 1e-2))",
            "optimizer.weight_decay": "interval(0.0, 0.2)",
            "model.n_layers": "int(interval(2, 6))",
            "model.dim": "choice(96, 128, 192)",
            "data.block_size": "range(64, 257, 64)",
            "seed": 7,
        },
        [],
    )
    assert space["optimizer.lr"] == FloatDistribution(3e-4, 1e-2, log=True)
    assert space["optimizer.weight_decay"] == FloatDistribution(0.0, 0.2)
    assert space["model.n_layers"] == IntDistribution(2, 6)
    assert space["model.dim"] == CategoricalDistribution([96, 128, 192])
    assert space["data.block_size"] == IntDistribution(64, 256, step=64)
    assert fixed == ["seed=7"]


def test_command_line_sweeps_join_the_space_and_plain_overrides_pass_through():
    space, fixed = search_space(
        {"optimizer.lr": "interval(1e-3, 1e-2)"},
        ["experiment=shakespeare_cpu", "model.dim=64,128", "data.files=[a.txt,b.txt]"],
    )
    assert set(space) == {"optimizer.lr", "model.dim"}
    assert space["model.dim"] == CategoricalDistribution([64, 128])
    assert fixed == ["experiment=shakespeare_cpu", "data.files=[a.txt,b.txt]"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model.dim": "choice(32,"}, "cannot parse 'model.dim=choice(32,'"),
        ({"optimizer.lr": "tag(log, interval(0.0, 1.0))"}, "hydra.sweeper.params.optimizer.lr"),
        ({"model.dim": "tag(log, choice(1, 2))"}, "applies to interval() and range()"),
        ({"model.dim": "range(5, 1)"}, "is empty"),
        ({}, "hydra.sweeper.params is empty"),
    ],
)
def test_a_search_space_that_does_not_parse_is_one_line(params, message):
    with pytest.raises(UserError) as err:
        search_space(params, [])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [3, 0.001, 1e-07, "gpt", "a b", True, None, "x=y"])
def test_overrides_parse_back_to_the_same_value(value):
    (override,) = OverridesParser.create().parse_overrides([as_override("k", value)])
    assert override.value() == value
