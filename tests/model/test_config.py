import re

import pytest

from mia.errors import UserError
from mia.model import ModelConfig, ModelConfigError


def test_presets_choose_components():
    llama = ModelConfig.preset("llama", dim=64, n_heads=4)
    gpt = ModelConfig.preset("gpt", dim=64, n_heads=4)
    assert (llama.norm, llama.position, llama.mlp, llama.bias) == (
        "rmsnorm",
        "rope",
        "swiglu",
        False,
    )
    assert (gpt.norm, gpt.position, gpt.mlp, gpt.bias) == ("layernorm", "learned", "gelu", True)
    assert gpt.n_kv_heads == gpt.n_heads == 4


def test_swiglu_hidden_size_follows_llama_rule():
    # LLaMA-7B: dim 4096, multiple_of 256 -> 11008.
    assert ModelConfig(dim=4096, n_heads=32, multiple_of=256).hidden_dim == 11008
    assert ModelConfig(dim=128, n_heads=4, multiple_of=32).hidden_dim == 352  # 341.3 -> 352
    assert ModelConfig(dim=128, n_heads=4, mlp="gelu").hidden_dim == 512


def test_round_trips_through_dict():
    config = ModelConfig.preset("llama", dim=64, n_heads=4, n_kv_heads=2)
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(dim=66, n_heads=4), "dim (66) must be divisible by n_heads (4)"),
        (dict(dim=64, n_heads=4, n_kv_heads=3), "n_heads (4) must be divisible by n_kv_heads (3)"),
        (dict(dim=36, n_heads=12), "must be even for RoPE"),
        (dict(dim=0), "dim must be a positive integer"),
        (dict(n_layers=-1), "n_layers must be a positive integer"),
        (dict(vocab_size=0), "vocab_size must be a positive integer"),
        (dict(max_seq_len=0), "max_seq_len must be a positive integer"),
        (dict(norm="batchnorm"), "norm must be one of rmsnorm, layernorm"),
        (dict(position="alibi"), "position must be one of rope, learned"),
        (dict(mlp="relu"), "mlp must be one of swiglu, gelu"),
        (dict(dropout=1.5), "dropout must be in [0, 1)"),
        (dict(norm_eps=0.0), "norm_eps must be positive"),
    ],
)
def test_each_invalid_value_has_its_message(overrides, message):
    with pytest.raises(ModelConfigError, match=re.escape(message)):
        ModelConfig(**overrides)


def test_every_problem_is_listed_in_one_error():
    with pytest.raises(ValueError) as info:
        ModelConfig(dim=0, n_layers=0, norm="x", dropout=2.0)
    message = str(info.value)
    for part in ("dim must", "n_layers must", "norm must", "dropout must"):
        assert part in message
    assert isinstance(info.value, UserError)


def test_odd_head_size_is_fine_with_learned_positions():
    assert ModelConfig(dim=36, n_heads=12, position="learned").head_dim == 3


def test_unknown_keys_and_presets_are_named():
    with pytest.raises(ModelConfigError, match=r"unknown model setting.*widht"):
        ModelConfig.from_dict({"widht": 3})
    with pytest.raises(ModelConfigError, match="unknown preset 'gpt5'"):
        ModelConfig.preset("gpt5")
