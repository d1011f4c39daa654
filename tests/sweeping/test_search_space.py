"""Hydra's sweep syntax to Optuna distributions, and trial values back to overrides."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mia.errors import UserError
from mia.sweeping.search_space import as_override, grid_points, search_space


def test_the_template_syntax_maps_to_optuna_distributions():
    space, fixed = search_space(
        {
            "optimizer.lr": "tag(log, interval(3e-4, 1e-2))",
            "optimizer.weight_decay": "interval(0.0, 0.2)",
            "model.n_layers": "int(interval(2, 6))",
            "model.dim": "choice(96, 128, 192)",
            "data.block_size": "range(64, 256, 64)",
            "model.n_heads": "range(2, 4)",
            "model.norm": "shuffle(choice(rmsnorm, layernorm))",
            "model.mlp_ratio": "range(2.0, 4.0, 0.5)",
            "seed": 7,
        },
        [],
    )
    assert space["optimizer.lr"] == FloatDistribution(3e-4, 1e-2, log=True)
    assert space["optimizer.weight_decay"] == FloatDistribution(0.0, 0.2)
    assert space["model.n_layers"] == IntDistribution(2, 6)
    assert space["model.dim"] == CategoricalDistribution([96, 128, 192])
    # range() includes its stop, as in Hydra's own Optuna sweeper
    assert space["data.block_size"] == IntDistribution(64, 256, step=64)
    assert space["model.n_heads"] == IntDistribution(2, 4)
    assert space["model.mlp_ratio"] == FloatDistribution(2.0, 4.0, step=0.5)
    assert set(space["model.norm"].choices) == {"rmsnorm", "layernorm"}
    assert fixed == ["seed=7"]


def test_command_line_sweeps_join_the_space_and_plain_overrides_pass_through():
    space, fixed = search_space(
        {"optimizer.lr": "interval(1e-3, 1e-2)"},
        ["experiment=shakespeare_cpu", "model.dim=64,128", "data.files=[a.txt,b.txt]"],
    )
    assert set(space) == {"optimizer.lr", "model.dim"}
    assert space["model.dim"] == CategoricalDistribution([64, 128])
    assert fixed == ["experiment=shakespeare_cpu", "data.files=[a.txt,b.txt]"]


def test_a_plain_command_line_value_pins_a_searched_key():
    space, fixed = search_space(
        {"model.dim": "choice(32, 64)", "optimizer.lr": "interval(1e-3, 1e-2)"},
        ["model.dim=48", "optimizer.lr=1e-3,2e-3", "~callbacks.early_stopping"],
    )
    assert set(space) == {"optimizer.lr"}  # pinned: no longer searched
    assert space["optimizer.lr"] == CategoricalDistribution([1e-3, 2e-3])  # a,b: a choice
    assert fixed == ["model.dim=48", "~callbacks.early_stopping"]


def test_the_grid_is_every_point_of_each_distribution():
    space, _ = search_space({"x": "choice(-1, 1)", "y": "range(-1.0, 1.0, step=1)"}, [])
    assert grid_points("x", space["x"]) == [-1, 1]
    assert grid_points("y", space["y"]) == [-1.0, 0.0, 1.0]
    with pytest.raises(UserError, match="grid sampler needs choice"):
        grid_points("lr", FloatDistribution(1e-3, 1e-2))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model.dim": "choice(32,"}, "cannot parse 'model.dim=choice(32,'"),
        ({"optimizer.lr": "tag(log, interval(0.0, 1.0))"}, "hydra.sweeper.params.optimizer.lr"),
        ({"model.dim": "tag(log, choice(1, 2))"}, "applies to interval() only"),
        ({"model.dim": "range(5, 1)"}, "is empty"),
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
