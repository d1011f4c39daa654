import pytest
import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig
from mia.model.attention import CPU_FLOAT32_ATTENTION_MAX_T
from mia.model.norm import LayerNorm, RMSNorm
from mia.model.rope import apply_rope, rope_cache


def test_rmsnorm_matches_torch():
    torch.manual_seed(0)
    ours = RMSNorm(48, eps=1e-5)
    ours.weight.data.normal_()
    ref = torch.nn.RMSNorm(48, eps=1e-5)
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(3, 7, 48)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=1e-5)


def test_norms_keep_the_input_dtype():
    x = torch.randn(2, 5, 16, dtype=torch.bfloat16)
    assert RMSNorm(16)(x).dtype == torch.bfloat16
    assert LayerNorm(16)(x).dtype == torch.bfloat16


def test_rope_scores_depend_only_on_distance():
    torch.manual_seed(0)
    D = 16
    cos, sin = rope_cache(64, D, theta=10000.0)
    q = torch.randn(1, 1, 1, D)
    k = torch.randn(1, 1, 1, D)

    def score(i: int, j: int) -> torch.Tensor:
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return (qi * kj).sum()

    for offset in (0, 5, 40):
        torch.testing.assert_close(score(3 + offset, 1 + offset), score(3, 1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(3, 1), score(9, 1))


def test_rope_is_hugging_faces_rotate_half():
    """Channel i pairs with i + D/2: x * cos + rotate_half(x) * sin, as transformers' Llama."""
    D, T = 8, 5
    cos, signed_sin = rope_cache(T, D, theta=10000.0)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2).float() / D))
    angles = torch.outer(torch.arange(T).float(), inv_freq).repeat(1, 2)  # (T, D)
    x = torch.randn(2, T, D)
    x1, x2 = x.chunk(2, dim=-1)
    expected = x * angles.cos() + torch.cat((-x2, x1), dim=-1) * angles.sin()
    torch.testing.assert_close(apply_rope(x, cos, signed_sin), expected)


def test_rope_is_a_rotation():
    cos, sin = rope_cache(32, 8, theta=10000.0)
    x = torch.randn(2, 3, 32, 8)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


@pytest.mark.parametrize("T", [16, CPU_FLOAT32_ATTENTION_MAX_T + 16])
def test_cpu_autocast_attention_precision(monkeypatch, T):
    """Under CPU bf16 autocast, short contexts attend in float32 (the CPU kernel is slow in
    bf16), long ones in bf16; the block sees bf16 either way, and values match float32."""
    config = ModelConfig.preset("llama", vocab_size=32, dim=32, n_layers=1, n_heads=4,
                                n_kv_heads=2, max_seq_len=512)  # fmt: skip
    decoder = Decoder(config)
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording(q, *args, **kwargs):
        seen.append(q.dtype)
        return sdpa(q, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    idx = torch.randint(0, 32, (2, T))
    attn = decoder.blocks[0].attn
    x = torch.randn(2, T, 32)
    rope = (decoder.rope_cos[:T], decoder.rope_sin[:T])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attn(x, rope)
        logits = decoder(idx)
    assert seen[0] == (torch.float32 if T <= CPU_FLOAT32_ATTENTION_MAX_T else torch.bfloat16)
    assert y.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), attn(x, rope), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize(("attention_dropout", "expected"), [(None, 0.5), (0.0, 0.0), (0.2, 0.2)])
def test_attention_dropout_defaults_to_dropout(monkeypatch, attention_dropout, expected):
    """Attention drops with attention_dropout, or with dropout when that is null; the
    residual stream drops with dropout either way; evaluation drops nothing."""
    config = ModelConfig.preset("llama", vocab_size=32, dim=32, n_layers=1, n_heads=4,
                                dropout=0.5, attention_dropout=attention_dropout)  # fmt: skip
    decoder = Decoder(config)
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording(*args, dropout_p=0.0, **kwargs):
        seen.append(dropout_p)
        return sdpa(*args, dropout_p=dropout_p, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    idx = torch.randint(0, 32, (2, 16))
    decoder.train()
    torch.manual_seed(0)
    first = decoder(idx)
    assert seen == [expected]
    assert not torch.equal(first, decoder(idx))  # the residual dropout still draws
    decoder.eval()
    assert torch.equal(decoder(idx), decoder(idx))
    assert seen[-1] == 0.0
