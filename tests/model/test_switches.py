"""The speedrun switches: QK-norm, ReLU² MLP, logit soft-capping, zero-initialised residuals.

Cached/uncached decoding and causality with each switch are in test_decoder.py's
parametrisation; here is what each switch itself does.
"""

import pytest
import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig
from mia.model.mlp import ReLU2MLP, build_mlp
from mia.model.rope import apply_rope

VOCAB = 61
T = 12


def tiny(preset: str = "llama", **overrides) -> Decoder:
    torch.manual_seed(0)
    values = dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=32)
    return Decoder(ModelConfig.preset(preset, **{**values, **overrides})).eval()


def rope_for(model: Decoder, length: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    if model.config.position != "rope":
        return None
    return model.rope_cos[:length], model.rope_sin[:length]


def training_step(model: Decoder, lr: float = 1e-2) -> torch.Tensor:
    """One AdamW step on a random batch; returns the loss before the step."""
    model.train()
    batch = torch.randint(0, VOCAB, (2, T + 1))
    loss = F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten())
    loss.backward()
    torch.optim.AdamW(model.parameters(), lr=lr).step()
    return loss.detach()


def rms(x: torch.Tensor) -> torch.Tensor:
    return x.float().pow(2).mean(dim=-1).sqrt()


# --- QK-norm ------------------------------------------------------------------------------


@pytest.mark.parametrize("qk_norm", [True, False])
def test_queries_and_keys_entering_attention_have_unit_rms(monkeypatch, qk_norm):
    """In every attention path: the full pass, a cached prompt and cached single tokens
    (unit gains at init; RoPE is a rotation, so it keeps each head's RMS)."""
    model = tiny(qk_norm=qk_norm)
    with torch.no_grad():  # queries and keys far from unit RMS without the norm
        for block in model.blocks:
            block.attn.qkv.weight.mul_(30)
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, *args, **kwargs):
        seen.append((q, k))
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    idx = torch.randint(0, VOCAB, (2, T))
    model(idx)
    model.setup_cache(batch_size=2, max_len=T)
    model(idx[:, :8], input_pos=torch.arange(8))
    for t in range(8, T):
        model(idx[:, t : t + 1], input_pos=torch.tensor([t]))
    model.reset_cache()

    assert len(seen) == 2 * (2 + T - 8)  # two layers: full, prompt, then each single token
    for q, k in seen:
        unit = [torch.allclose(rms(t), torch.ones(()), atol=1e-4) for t in (q, k)]
        assert unit == [qk_norm, qk_norm]


def test_qk_norm_comes_before_rope_with_a_gain_per_head_dim():
    model = tiny(qk_norm=True)
    attn = model.blocks[0].attn
    assert attn.q_norm.weight.shape == attn.k_norm.weight.shape == (8,)
    with torch.no_grad():  # gains that do not commute with the rotation
        attn.q_norm.weight.normal_(1.0, 0.5)
        attn.k_norm.weight.normal_(1.0, 0.5)
    x = torch.randn(2, T, 32)
    cos, sin = rope_for(model, T)
    q, k, v = attn.qkv(x).view(2, T, 4 + 2 * 2, 8).split((4, 2, 2), dim=2)  # (B, T, H|G, D)
    q = apply_rope(F.rms_norm(q, (8,), eps=1e-5) * attn.q_norm.weight, cos[:, None], sin[:, None])
    k = apply_rope(F.rms_norm(k, (8,), eps=1e-5) * attn.k_norm.weight, cos[:, None], sin[:, None])
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = attn.proj(y.transpose(1, 2).reshape(2, T, 32))
    torch.testing.assert_close(attn(x, (cos, sin)), expected, atol=1e-5, rtol=1e-5)


def test_qk_norm_keeps_the_input_dtype():
    model = tiny(qk_norm=True).to(torch.bfloat16)
    assert model(torch.randint(0, VOCAB, (1, T))).dtype == torch.bfloat16


@pytest.mark.parametrize("preset", ["llama", "gpt"])
def test_qk_norm_gains_train(preset):
    model = tiny(preset, qk_norm=True)
    loss = training_step(model)
    assert torch.isfinite(loss)
    for block in model.blocks:
        for norm in (block.attn.q_norm, block.attn.k_norm):
            assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0
            assert not torch.equal(norm.weight, torch.ones(8))  # the step moved the gain


# --- ReLU² --------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_relu2_mlp_is_down_of_squared_relu_of_up(bias):
    config = ModelConfig(dim=32, n_heads=4, mlp="relu2", bias=bias)
    assert config.hidden_dim == 4 * 32
    torch.manual_seed(0)
    mlp = build_mlp(config)
    assert isinstance(mlp, ReLU2MLP)
    x = torch.randn(3, 5, 32)
    hidden = x @ mlp.up.weight.T
    if bias:
        hidden = hidden + mlp.up.bias
    expected = hidden.clamp(min=0) ** 2 @ mlp.down.weight.T
    if bias:
        expected = expected + mlp.down.bias
    torch.testing.assert_close(mlp(x), expected, atol=1e-6, rtol=1e-5)


def test_relu2_model_trains():
    model = tiny(mlp="relu2")
    assert all(isinstance(block.mlp, ReLU2MLP) for block in model.blocks)
    torch.manual_seed(1)
    batch = torch.randint(0, VOCAB, (4, T + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 1.0


# --- logit soft-capping -------------------------------------------------------------------


def capped_and_uncapped(cap: float, weight_std: float | None = None):
    """Logits of the same weights with and without the cap, on one batch."""
    plain = tiny()
    if weight_std is not None:
        with torch.no_grad():
            for param in plain.parameters():
                if param.ndim == 2:
                    param.normal_(0.0, weight_std)
    capped = tiny(logit_softcap=cap)
    capped.load_state_dict(plain.state_dict())
    idx = torch.randint(0, VOCAB, (2, T))
    with torch.no_grad():
        return capped(idx), plain(idx)


def test_softcap_bounds_the_logits():
    cap = 3.0
    capped, plain = capped_and_uncapped(cap, weight_std=0.5)
    assert plain.abs().max() > 3 * cap  # the cap has work to do
    # Below c mathematically; float32 tanh rounds to exactly 1 far out, so <= c there.
    assert capped.abs().max() <= cap
    assert (capped.abs() < cap)[plain.abs() < 4 * cap].all()
    torch.testing.assert_close(capped, cap * torch.tanh(plain / cap))
    assert torch.equal(capped.argmax(-1), plain.argmax(-1))  # tanh keeps the order


def test_softcap_barely_changes_small_logits():
    capped, plain = capped_and_uncapped(30.0)
    assert plain.abs().max() < 1.0  # small logits at initialisation
    torch.testing.assert_close(capped, plain, atol=1e-4, rtol=0)


# --- zero-initialised residual projections ------------------------------------------------


@pytest.mark.parametrize("preset", ["llama", "gpt"])
def test_zero_init_blocks_start_as_the_identity_and_then_learn(preset):
    model = tiny(preset, zero_init_residual=True)
    residual = [(b.attn.proj.weight, b.mlp.down.weight) for b in model.blocks]
    assert all(torch.count_nonzero(w) == 0 for pair in residual for w in pair)
    x = torch.randn(2, T, 32)
    for block in model.blocks:
        assert torch.equal(block(x, rope_for(model, T)), x)
    assert model.blocks[0].attn.qkv.weight.std() > 0.01  # the rest is initialised as usual

    training_step(model)
    assert all(torch.count_nonzero(w) > 0 for pair in residual for w in pair)


def test_zero_init_is_off_by_default():
    model = tiny()
    assert all(torch.count_nonzero(b.mlp.down.weight) > 0 for b in model.blocks)
