import pytest
import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig
from mia.model.attention import CPU_FLOAT32_ATTENTION_MAX_T
from mia.model.mlp import swiglu
from mia.model.norm import LayerNorm, RMSNorm, rms_norm
from mia.model.rope import apply_rope, rope_cache, rope_heads


def test_rmsnorm_matches_torch():
    torch.manual_seed(0)
    ours = RMSNorm(48, eps=1e-5)
    ours.weight.data.normal_()
    ref = torch.nn.RMSNorm(48, eps=1e-5)
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(3, 7, 48)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=1e-5)


def values_and_grads(fn, *inputs: torch.Tensor, seed: int = 1) -> list[torch.Tensor]:
    """fn(*inputs) and the gradients of a random projection of it, for every input."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    generator = torch.Generator().manual_seed(seed)
    total = sum((o.float() * torch.randn(o.shape, generator=generator)).sum() for o in outputs)
    total.backward()
    return [o.detach() for o in outputs] + [t.grad for t in inputs]


def assert_all_close(ours: list[torch.Tensor], reference: list[torch.Tensor], **tol) -> None:
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_backward_is_autograds(dtype):
    """The hand-written backward gives the plain formula's gradients, for x and the gain."""
    torch.manual_seed(0)
    x, weight = torch.randn(3, 7, 48).to(dtype), torch.randn(48)

    def reference(x, weight):
        return F.rms_norm(x.float(), (48,), weight, 1e-5).to(x.dtype)

    tol = {} if dtype == torch.float32 else {"atol": 1e-2, "rtol": 1e-2}
    ours = values_and_grads(lambda x, w: rms_norm(x, w, 1e-5), x, weight)
    assert_all_close(ours, values_and_grads(reference, x, weight), **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_backward_is_autograds(dtype):
    torch.manual_seed(0)
    gate_up = (3 * torch.randn(2, 5, 2 * 24)).to(dtype)

    def reference(gate_up):
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up

    tol = {} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    assert_all_close(values_and_grads(swiglu, gate_up), values_and_grads(reference, gate_up), **tol)


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize(
    ("dtype", "out_dtype"), [(torch.float32, None), (torch.bfloat16, torch.float32)]
)
def test_rope_heads_is_split_rotate_and_transpose(heads, kv_heads, dtype, out_dtype):
    """The fused step equals splitting the projection, apply_rope on queries and keys and
    head-major transposes, in values and in the projection's gradient; it casts to
    out_dtype (float32 attention under CPU autocast) and gives the gradient in the input's."""
    torch.manual_seed(0)
    B, T, D = 2, 9, 8
    cos, sin = rope_cache(T, D, theta=10000.0)
    qkv = torch.randn(B, T, heads + 2 * kv_heads, D).to(dtype)

    def reference(qkv):
        target = out_dtype or qkv.dtype
        qk, v = qkv.to(target).split((heads + kv_heads, kv_heads), dim=2)
        q, k = apply_rope(qk, cos[:, None], sin[:, None]).split((heads, kv_heads), dim=2)
        return tuple(t.transpose(1, 2) for t in (q, k, v))

    def fused(qkv):
        return rope_heads(qkv, cos, sin, heads, kv_heads, out_dtype)

    ours = values_and_grads(fused, qkv)
    assert [t.is_contiguous() for t in ours[:3]] == [True] * 3
    assert ours[0].dtype == (out_dtype or dtype) and ours[3].dtype == dtype
    assert_all_close(ours, values_and_grads(reference, qkv), atol=1e-5, rtol=1e-5)


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
