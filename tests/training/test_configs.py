"""Every config and experiment composes, and its parts instantiate."""

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from mia.cli.train import model_settings
from mia.conf import CONF_DIR, compose
from mia.model import Decoder, ModelConfig

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [
    (group, p.stem)
    for group in ("model", "data", "tokenizer", "optimizer", "scheduler", "trainer")
    for p in sorted((CONF_DIR / group).glob("*.yaml"))
]


def instantiate_run(cfg, tmp_path):
    model = ModelConfig.from_dict(model_settings(cfg, vocab_size=300))
    Decoder(ModelConfig.preset("llama", **{**model.to_dict(), "n_layers": 1}))  # builds
    for callback in cfg.callbacks.values():
        instantiate(callback)
    instantiate(cfg.logger)
    if cfg.trainer.accelerator in ("cpu", "auto") and cfg.trainer.get("strategy") is None:
        instantiate(cfg.trainer, logger=False)
    return model


@pytest.fixture
def overrides(tmp_path):
    return [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}"]


def test_experiments_exist():
    assert {"shakespeare_cpu", "shakespeare_gpu", "seed_llama", "nanogpt_baby"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment, overrides, tmp_path):
    cfg = compose("train", [f"experiment={experiment}", *overrides])
    model = instantiate_run(cfg, tmp_path)
    assert model.max_seq_len == cfg.data.block_size


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes(group, option, overrides, tmp_path):
    cfg = compose("train", [f"{group}={option}", *overrides])
    instantiate_run(cfg, tmp_path)


@pytest.mark.parametrize("extra", [["debug=fast"], ["hparams_search=optuna"]])
def test_optional_groups_compose(extra, overrides, tmp_path):
    instantiate_run(compose("train", [*extra, *overrides]), tmp_path)


@pytest.mark.parametrize("name", ["eval", "generate", "prepare"])
def test_other_commands_compose(name, overrides):
    extra = ["ckpt_path=x.ckpt"] if name in ("eval", "generate") else []
    cfg = compose(
        name, [*extra, *(o for o in overrides if name != "generate" or "output" not in o)]
    )
    assert cfg.task_name == name


def test_the_llama_experiment_reproduces_the_source_settings(overrides):
    cfg = compose("train", ["experiment=seed_llama", *overrides])
    assert (cfg.model.dim, cfg.model.n_layers, cfg.model.n_heads, cfg.model.n_kv_heads) == (
        128,
        4,
        8,
        1,
    )
    assert (cfg.data.block_size, cfg.data.batch_size, cfg.trainer.max_steps) == (16, 32, 1000)
    assert cfg.tokenizer.vocab_size == 130 and cfg.optimizer.name == "adam"


def test_nanogpt_presets_differ_only_in_parts(overrides):
    gpt = compose("train", ["experiment=nanogpt_baby", *overrides])
    llama = compose("train", ["experiment=nanogpt_baby_llama", *overrides])
    assert (gpt.model.norm, gpt.model.position, gpt.model.mlp) == ("layernorm", "learned", "gelu")
    assert (llama.model.norm, llama.model.position, llama.model.mlp) == (
        "rmsnorm",
        "rope",
        "swiglu",
    )
    for key in ("dim", "n_layers", "n_heads", "n_kv_heads", "dropout"):
        assert gpt.model[key] == llama.model[key]
    assert gpt.data == llama.data and gpt.optimizer == llama.optimizer


def teardown_module():
    GlobalHydra.instance().clear()
