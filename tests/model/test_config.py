import dataclasses
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


SWITCHES_ON = dict(qk_norm=True, mlp="relu2", logit_softcap=30, zero_init_residual=True)


@pytest.mark.parametrize("switches", [{}, SWITCHES_ON])
def test_round_trips_through_dict(switches):
    config = ModelConfig.preset("llama", dim=64, n_heads=4, n_kv_heads=2, **switches)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_speedrun_switches_are_off_by_default():
    config = ModelConfig()
    assert (config.qk_norm, config.logit_softcap, config.zero_init_residual) == (
        False,
        None,
        False,
    )


def test_a_dict_from_before_the_switches_loads_with_them_off():
    old = ModelConfig.preset("llama", dim=64, n_heads=4).to_dict()
    for key in ("qk_norm", "logit_softcap", "zero_init_residual"):
        del old[key]
    assert ModelConfig.from_dict(old) == ModelConfig.preset("llama", dim=64, n_heads=4)


def test_relu2_is_four_times_as_wide_and_softcap_a_float():
    config = ModelConfig(dim=64, n_heads=4, **SWITCHES_ON)
    assert config.hidden_dim == 256
    assert config.logit_softcap == 30.0 and isinstance(config.logit_softcap, float)


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
        (dict(mlp="relu3"), "mlp must be one of swiglu, gelu, relu2 (got 'relu3')"),
        (dict(qk_norm="yes"), "qk_norm must be true or false (got 'yes')"),
        (dict(qk_norm=1), "qk_norm must be true or false (got 1)"),
        (dict(zero_init_residual="no"), "zero_init_residual must be true or false"),
        (dict(bias=None), "bias must be true or false (got None)"),
        (dict(logit_softcap=0), "logit_softcap must be a positive number or null (got 0)"),
        (dict(logit_softcap=-1), "logit_softcap must be a positive number or null (got -1)"),
        (dict(logit_softcap="x"), "logit_softcap must be a positive number or null (got 'x')"),
        (dict(logit_softcap=True), "logit_softcap must be a positive number or null"),
        (dict(logit_softcap=float("inf")), "logit_softcap must be a positive number or null"),
        (dict(dropout=1.5), "dropout must be in [0, 1)"),
        (dict(attention_dropout=-0.1), "attention_dropout must be in [0, 1) or null"),
        (dict(attention_dropout="x"), "attention_dropout must be in [0, 1) or null (got 'x')"),
        (dict(norm_eps=0.0), "norm_eps must be positive"),
    ],
)
def test_each_invalid_value_has_its_message(overrides, message):
    with pytest.raises(ModelConfigError, match=re.escape(message)):
        ModelConfig(**overrides)


def test_every_problem_is_listed_in_one_error():
    with pytest.raises(ValueError) as info:
        ModelConfig(dim=0, n_layers=0, norm="x", dropout=2.0, qk_norm="x", logit_softcap=0)
    message = str(info.value)
    for part in ("dim must", "n_layers must", "norm must", "dropout must", "qk_norm", "softcap"):
        assert part in message
    assert isinstance(info.value, UserError)


def test_odd_head_size_is_fine_with_learned_positions():
    assert ModelConfig(dim=36, n_heads=12, position="learned").head_dim == 3


def test_unknown_keys_and_presets_are_named():
    with pytest.raises(ModelConfigError, match=r"unknown model setting.*widht"):
        ModelConfig.from_dict({"widht": 3})
    with pytest.raises(ModelConfigError, match="unknown preset 'gpt5'"):
        ModelConfig.preset("gpt5")


@pytest.mark.parametrize("model", ["llama", "gpt"])
def test_model_yaml_names_every_setting_with_the_switches_off(model, tmp_path):
    from mia.cli.train import model_settings
    from mia.conf import compose

    paths = [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}"]
    cfg = compose("train", [f"model={model}", *paths])
    settings = model_settings(cfg, vocab_size=300)
    assert {f.name for f in dataclasses.fields(ModelConfig)} <= set(settings)
    config = ModelConfig.from_dict(settings)
    assert (config.qk_norm, config.logit_softcap, config.zero_init_residual) == (
        False,
        None,
        False,
    )
    switched = ["model.qk_norm=true", "model.mlp=relu2", "model.logit_softcap=15"]
    cfg = compose("train", [f"model={model}", *paths, *switched])
    config = ModelConfig.from_dict(model_settings(cfg, vocab_size=300))
    assert (config.qk_norm, config.mlp, config.logit_softcap) == (True, "relu2", 15.0)
