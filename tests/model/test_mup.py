"""µP (model.parametrization=mup): the coordinate check, and what each µP rule does.

The coordinate check (Yang et al., Tensor Programs V, §D): train a few steps at growing
widths and look at the mean absolute size of each layer's output. Under µP it stays in a
band of constant width as the model widens; under the standard parametrisation attention
scores and hidden activations grow with width.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig, ModelConfigError
from mia.training.optim import build_optimizer

VOCAB = 64
WIDTHS = (64, 128, 256, 512, 1024)
BASE = 64


def config(width: int, parametrization: str, base: int | None = BASE, **overrides):
    values = dict(
        vocab_size=VOCAB,
        dim=width,
        n_layers=2,
        n_heads=4,
        n_kv_heads=4,
        max_seq_len=8,
        parametrization=parametrization,
        mup_base_dim=base,
    )
    return ModelConfig.preset("llama", **{**values, **overrides})


def activation_sizes(width: int, parametrization: str, steps: int = 3) -> dict[str, float]:
    """Mean |output| of the embedding, each block's attention scores and output, and the
    logits, after `steps` AdamW steps at lr 1e-2 on one fixed random batch."""
    torch.manual_seed(0)
    model = Decoder(config(width, parametrization))
    optimizer = build_optimizer(model, {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0})
    batch = torch.randint(0, VOCAB, (4, 9), generator=torch.Generator().manual_seed(1))
    x, y = batch[:, :-1], batch[:, 1:]
    for _ in range(steps):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    sizes: dict[str, float] = {}

    def record(name):
        def hook(module, inputs, output):
            sizes[name] = output.abs().mean().item()

        return hook

    def record_scores(name, attn):
        def hook(module, inputs, qkv):  # the scores q.k * scale, before RoPE and softmax
            H, G, D = attn.n_heads, attn.n_kv_heads, attn.head_dim
            q, k, _ = qkv.split((H * D, G * D, G * D), dim=-1)
            B, T, _ = qkv.shape
            q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
            k = k.view(B, T, G, D).transpose(1, 2)  # (B, G, T, D), G == H here
            scale = attn.scale if attn.scale is not None else D**-0.5
            sizes[name] = (q @ k.transpose(-1, -2) * scale).abs().mean().item()

        return hook

    hooks = [model.tok_emb.register_forward_hook(record("embedding"))]
    for i, block in enumerate(model.blocks):
        hooks.append(block.register_forward_hook(record(f"block{i}")))
        hooks.append(block.attn.qkv.register_forward_hook(record_scores(f"scores{i}", block.attn)))
    with torch.no_grad():
        sizes["logits"] = model(x).abs().mean().item()
    for hook in hooks:
        hook.remove()
    return sizes


def spread(table: dict[int, dict[str, float]], layer: str) -> float:
    """Largest over smallest size of one layer across the widths."""
    values = [sizes[layer] for sizes in table.values()]
    return max(values) / min(values)


@pytest.fixture(scope="module")
def coordinates() -> dict[str, dict[int, dict[str, float]]]:
    return {p: {w: activation_sizes(w, p) for w in WIDTHS} for p in ("sp", "mup")}


def test_coordinate_check_mup_stays_in_a_band(coordinates):
    mup = coordinates["mup"]
    for layer in mup[BASE]:
        assert spread(mup, layer) < 4, (layer, {w: s[layer] for w, s in mup.items()})


def test_coordinate_check_sp_blows_up(coordinates):
    sp = coordinates["sp"]
    for layer in ("scores0", "scores1", "block0", "block1"):
        assert spread(sp, layer) > 20, (layer, {w: s[layer] for w, s in sp.items()})
        assert sp[1024][layer] > 20 * coordinates["mup"][1024][layer]
    assert sp[1024]["logits"] > 2 * sp[64]["logits"]


def test_mup_at_its_base_width_is_sp():
    torch.manual_seed(0)
    sp = Decoder(config(128, "sp", base=None))
    for base in (None, 128):
        torch.manual_seed(0)
        mup = Decoder(config(128, "mup", base=base))
        assert mup.config.width_multiplier == 1.0 and mup.config.attention_scale is None
        for a, b in zip(sp.state_dict().values(), mup.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        groups = build_optimizer(mup, {"name": "adamw", "lr": 1e-3}).param_groups
        assert len(groups) == 2 and all(g["lr"] == 1e-3 for g in groups)


def test_mup_rules_at_four_times_the_base_width():
    torch.manual_seed(0)
    model = Decoder(config(256, "mup", base=64))  # m = 4
    assert model.config.width_multiplier == 4.0
    head_dim = 256 // 4
    # 1/D with the constant that gives 1/sqrt(D_base) at the base width (D_base = D / 4)
    assert model.config.attention_scale == pytest.approx(math.sqrt(head_dim / 4) / head_dim)
    hidden = model.blocks[0].attn.qkv.weight
    assert hidden.std().item() == pytest.approx(0.02 / 2, rel=0.05)  # 0.02 / sqrt(m)
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.lm_head.weight.std().item() == pytest.approx(0.02, rel=0.05)
    # logits = lm_head(norm(x)) / m
    idx = torch.randint(0, VOCAB, (2, 8))
    captured = {}
    model.norm.register_forward_hook(lambda mod, inp, out: captured.update(h=out))
    logits = model(idx)
    assert torch.allclose(logits, model.lm_head(captured["h"]) / 4, atol=1e-6)

    groups = build_optimizer(model, {"name": "adamw", "lr": 1e-3}).param_groups
    by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
    for name, param in model.named_parameters():
        expected = 1e-3 / 4 if name.startswith("blocks.") and param.ndim == 2 else 1e-3
        assert by_param[id(param)] == pytest.approx(expected), name


def test_mup_with_muon_keeps_muon_rate_and_constant_adamw_rates():
    model = Decoder(config(256, "mup", base=64))
    optimizer = build_optimizer(model, {"name": "muon", "lr": 3e-3, "muon_lr": 0.02})
    muon_params = {id(p) for g in optimizer.muon.param_groups for p in g["params"]}
    assert all(g["lr"] == 0.02 for g in optimizer.muon.param_groups)
    assert all(g["lr"] == 3e-3 for g in optimizer.adamw.param_groups)
    for name, param in model.named_parameters():
        hidden = name.startswith("blocks.") and param.ndim == 2
        assert (id(param) in muon_params) == hidden, name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(parametrization="up"), "parametrization must be one of sp, mup"),
        (dict(parametrization="mup", mup_base_dim=0), "mup_base_dim must be a positive integer"),
        (dict(parametrization="mup", mup_base_dim=1.5), "mup_base_dim must be a positive integer"),
    ],
)
def test_mup_settings_are_checked(overrides, message):
    with pytest.raises(ModelConfigError, match=message):
        config(128, **{"parametrization": "sp", **overrides})
