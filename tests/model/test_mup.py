"""µP (model.parametrization=mup): the coordinate check, and what each µP rule does.

The coordinate check (Yang et al., Tensor Programs V, §D.1; mia.training.coord_check):
train a few steps at a large rate at widths 32 to 1,024 and compare the mean absolute size
of each layer's output across widths. Under µP every layer stays within 1.5x; under the
standard parametrisation the attention scores and the logits grow with width.
"""

import math

import pytest
import torch

from mia.model import Decoder, ModelConfig, ModelConfigError
from mia.model.mup import block_multipliers
from mia.training.coord_check import activation_sizes, layer_names, spread
from mia.training.optim import build_optimizer

VOCAB = 32
WIDTHS = (32, 64, 128, 256, 512, 1024)
BASE = 32
# The two ways to widen: a fixed head size (more heads) or a fixed head count (wider heads).
HEADS = {"head_size": dict(head_size=8), "head_count": dict(n_heads=4)}
# The check's vocabulary: with 8 symbols the readout's first Adam steps line up with the
# hidden state; with 32 over 32 tokens a width-32 model's logits carry a random part that
# fades as 1/sqrt(width) and alone spans 1.5x (mean |logit| 0.18 at 32, 0.12 at 1,024).
CHECK_VOCAB = 8


def config(width: int, parametrization: str, base: int | None = BASE, **overrides):
    values = dict(
        vocab_size=VOCAB,
        dim=width,
        n_layers=2,
        n_heads=4,
        n_kv_heads=None,
        max_seq_len=8,
        parametrization=parametrization,
        mup_base_dim=base,
    )
    return ModelConfig.preset("llama", **{**values, **overrides})


@pytest.fixture(scope="module", params=list(HEADS))
def coordinates(request) -> tuple[str, dict[str, dict[int, list[dict[str, float]]]]]:
    """The widening mode, and parametrization -> width -> the sizes after each of 3 AdamW
    steps at lr 1e-2 (under mup averaged over 3 seeds)."""
    heads = dict(HEADS[request.param], vocab_size=CHECK_VOCAB)
    seeds = {"sp": (0,), "mup": (0, 1, 2)}  # sp's growth is plain in one draw
    return request.param, {
        p: {
            w: activation_sizes(config(w, p, **heads), steps=3, lr=1e-2, seeds=seeds[p])
            for w in WIDTHS
        }
        for p in ("sp", "mup")
    }


def at_step(table: dict[int, list[dict[str, float]]], step: int) -> dict[int, dict[str, float]]:
    return {width: history[step] for width, history in table.items()}


def test_coordinate_check_mup_stays_within_one_and_a_half(coordinates):
    """Every layer after steps 2 and 3, and the logits from step 1 (with zero readout and
    query, the first step moves only the readout: the scores are still exactly zero).

    With a fixed head count the attention scores are the exception: they shrink with the
    width, by up to 2x from 32 to 1,024 (measured: 0.0087 -> 0.0052 and 0.0095 -> 0.0047
    after step 2, 1.5x after step 3). The scale sqrt(D_base)/D multiplies the part of q·k
    that is not aligned (random) by sqrt(D_base/D), which µP means to vanish as the head
    size D grows from 8 to 256; after a few steps that part is still much of the scores.
    With a fixed head size D does not grow, and the scores hold within 1.5x."""
    mode, table = coordinates
    mup = table["mup"]
    assert spread(at_step(mup, 0), "logits") < 1.5
    for step in (1, 2):
        sizes = at_step(mup, step)
        for layer in layer_names(2):
            trace = (step, layer, {w: s[layer] for w, s in sizes.items()})
            if mode == "head_count" and layer.startswith("scores"):
                assert sizes[1024][layer] < sizes[32][layer] and spread(sizes, layer) < 2.5, trace
                continue
            assert spread(sizes, layer) < 1.5, trace


def test_coordinate_check_sp_grows(coordinates):
    _, table = coordinates
    sizes = at_step(table["sp"], 2)
    for layer in ("scores0", "scores1", "logits"):
        assert sizes[1024][layer] > 2 * sizes[32][layer], (layer, sizes[32], sizes[1024])
    mup = at_step(table["mup"], 2)
    assert sizes[1024]["logits"] > 4 * mup[1024]["logits"]


def test_mup_at_its_base_width_is_sp_but_for_the_zeroed_readout_and_query():
    torch.manual_seed(0)
    sp = Decoder(config(128, "sp", base=None))
    q_rows = 128  # n_heads * head size
    for base in (None, 128):
        for zero in (False, True):
            torch.manual_seed(0)
            mup = Decoder(config(128, "mup", base=base, mup_zero_init=zero))
            assert mup.config.width_multiplier == 1.0 and mup.config.attention_scale is None
            for (name, a), b in zip(
                sp.state_dict().items(), mup.state_dict().values(), strict=True
            ):
                if zero and name == "lm_head.weight":
                    assert not b.any()
                elif zero and name.endswith("attn.qkv.weight"):
                    assert not b[:q_rows].any() and torch.equal(a[q_rows:], b[q_rows:])
                else:
                    assert torch.equal(a, b), name
            groups = build_optimizer(mup, {"name": "adamw", "lr": 1e-3}).param_groups
            assert len(groups) == 2 and all(g["lr"] == 1e-3 for g in groups)


def test_multipliers_come_from_each_matrix_s_real_fan_in():
    # SwiGLU's hidden size is rounded up to a multiple of 32: 192 at width 64, 704 at 256,
    # so the down projection's fan-in grows 704/192 = 3.67x while the width grows 4x.
    model_config = config(256, "mup", base=64)
    assert model_config.hidden_dim == 704 and model_config.base_config().hidden_dim == 192
    assert block_multipliers(model_config) == {
        "attn.qkv.weight": 4.0,
        "attn.proj.weight": 4.0,
        "mlp.gate_up.weight": 4.0,
        "mlp.down.weight": pytest.approx(704 / 192),
    }
    assert block_multipliers(config(256, "sp", base=64)) == {}
    # an explicit hidden size keeps its ratio to the width in the base model
    assert block_multipliers(config(256, "mup", base=64, hidden_dim=512))["mlp.down.weight"] == 4.0
    with pytest.raises(ModelConfigError, match="hidden_dim=510 does not scale to width 64"):
        config(256, "mup", base=64, hidden_dim=510)


def test_mup_rules_at_four_times_the_base_width():
    torch.manual_seed(0)
    model = Decoder(config(256, "mup", base=64, n_layers=3))  # m = 4, head size 64 vs 16
    assert model.config.width_multiplier == 4.0
    assert model.config.attention_scale == pytest.approx(math.sqrt(16) / 64)  # sqrt(D_base)/D
    block = model.blocks[0]
    q_rows = 256
    assert not block.attn.qkv.weight[:q_rows].any()  # zero query
    assert block.attn.qkv.weight[q_rows:].std().item() == pytest.approx(0.02 / 2, rel=0.05)
    assert block.mlp.gate_up.weight.std().item() == pytest.approx(0.02 / 2, rel=0.05)
    depth = math.sqrt(2 * 3)
    assert block.attn.proj.weight.std().item() == pytest.approx(0.02 / 2 / depth, rel=0.05)
    down_std = 0.02 / math.sqrt(704 / 192) / depth
    assert block.mlp.down.weight.std().item() == pytest.approx(down_std, rel=0.05)
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert not model.lm_head.weight.any()  # zero readout
    # logits = lm_head(norm(x)) / m
    torch.nn.init.normal_(model.lm_head.weight, std=0.02)
    idx = torch.randint(0, VOCAB, (2, 8))
    captured = {}
    model.norm.register_forward_hook(lambda mod, inp, out: captured.update(h=out))
    logits = model(idx)
    assert torch.allclose(logits, model.lm_head(captured["h"]) / 4, atol=1e-6)

    settings = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1}
    groups = build_optimizer(model, settings).param_groups
    assert len(groups) == 4  # decay, no decay, m_t = 4, m_t = 3.67
    by_param = {id(p): g for g in groups for p in g["params"]}
    multipliers = block_multipliers(model.config)
    for name, param in model.named_parameters():
        group = by_param[id(param)]
        m_t = multipliers.get(name.split(".", 2)[-1], 1.0) if name.startswith("blocks.") else 1.0
        assert group["lr"] == pytest.approx(1e-3 / m_t), name
        decay = 0.1 * m_t if param.ndim == 2 else 0.0
        assert group["weight_decay"] == pytest.approx(decay), name
        if param.ndim == 2:  # AdamW's decay per step, lr * weight_decay, as at the base width
            assert group["lr"] * group["weight_decay"] == pytest.approx(1e-3 * 0.1), name


def test_weight_decay_shrinks_a_hidden_matrix_as_at_the_base_width():
    """One step with zero gradients: only the decay moves the weights."""
    shrink = {}
    for width in (64, 256):
        model = Decoder(config(width, "mup", base=64))
        optimizer = build_optimizer(model, {"name": "adamw", "lr": 1e-2, "weight_decay": 0.5})
        for param in model.parameters():
            param.grad = torch.zeros_like(param)
        weight = model.blocks[0].mlp.down.weight
        before = weight.detach().clone()
        optimizer.step()
        shrink[width] = (weight / before).mean().item()
    assert shrink[64] == pytest.approx(1 - 1e-2 * 0.5)
    assert shrink[256] == pytest.approx(shrink[64])


def test_a_tied_readout_keeps_the_embedding_s_init():
    torch.manual_seed(0)
    model = Decoder(config(128, "mup", base=32, tie_embeddings=True))
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert not model.blocks[0].attn.qkv.weight[:128].any()


def test_a_fixed_head_size_grows_the_head_count():
    model_config = config(256, "mup", base=64, head_size=16, n_heads=8, n_kv_heads=2)
    assert (model_config.n_heads, model_config.n_kv_heads, model_config.head_dim) == (16, 4, 16)
    base = model_config.base_config()
    assert (base.n_heads, base.n_kv_heads, base.head_dim) == (4, 1, 16)
    with pytest.raises(ModelConfigError, match="mup_base_dim=32 gives no valid base model"):
        config(256, "mup", base=32, head_size=16, n_heads=8, n_kv_heads=2)  # 2 heads, groups of 4
    assert model_config.attention_scale is None  # sqrt(D_base) / D = 1 / sqrt(D)
    assert ModelConfig.from_dict(model_config.to_dict()) == model_config
    count = config(256, "mup", base=32, n_heads=2)  # head size 128, base head size 16
    assert count.attention_scale == pytest.approx(math.sqrt(16) / 128)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(parametrization="up"), "parametrization must be one of sp, mup"),
        (dict(parametrization="mup", mup_base_dim=0), "mup_base_dim must be a positive integer"),
        (dict(parametrization="mup", mup_base_dim=1.5), "mup_base_dim must be a positive integer"),
        (dict(head_size=0), "head_size must be a positive integer or null"),
        (dict(head_size=48), r"dim \(128\) must be divisible by head_size \(48\)"),
        (dict(head_size=64, n_heads=4, n_kv_heads=1), "head_size=64 gives 2 query heads"),
        (
            dict(parametrization="mup", mup_base_dim=18),
            r"mup_base_dim=18 gives no valid base model \(dim \(18\) must be divisible",
        ),
        (dict(parametrization="mup", mup_zero_init="yes"), "mup_zero_init must be true or false"),
    ],
)
def test_mup_settings_are_checked(overrides, message):
    with pytest.raises(ModelConfigError, match=message):
        config(128, **{"parametrization": "sp", **overrides})


def test_mup_with_muon_keeps_muon_rate_and_constant_adamw_rates():
    model = Decoder(config(256, "mup", base=64))
    optimizer = build_optimizer(model, {"name": "muon", "lr": 3e-3, "muon_lr": 0.02})
    muon_params = {id(p) for g in optimizer.muon.param_groups for p in g["params"]}
    assert all(g["lr"] == 0.02 for g in optimizer.muon.param_groups)
    assert all(g["lr"] == 3e-3 for g in optimizer.adamw.param_groups)
    for name, param in model.named_parameters():
        hidden = name.startswith("blocks.") and param.ndim == 2
        assert (id(param) in muon_params) == hidden, name
