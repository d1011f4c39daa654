"""Rotary position encoding in the half-split ("rotate half") layout.

Channel i of a head pairs with channel i + D/2, as in Hugging Face's Llama, so weights
export by renaming keys rather than permuting rows.
"""

from __future__ import annotations

import torch


def rope_cache(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin tables, each (seq_len, head_dim), in float32.

    The sin table's first half is negated: rotate_half(x) * sin equals
    roll(x, D/2) * signed_sin, one copy instead of a negation and a concatenation."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (T, D/2)
    sin = angles.sin()
    return torch.cat((angles, angles), dim=-1).cos(), torch.cat((-sin, sin), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """x: (..., T, D); cos, signed_sin: rope_cache's tables for the positions of x's T axis,
    broadcastable to x. Channel i < D/2 becomes x_i cos - x_{i+D/2} sin, channel i + D/2
    becomes x_{i+D/2} cos + x_i sin."""
    cos, signed_sin = cos.to(x.dtype), signed_sin.to(x.dtype)
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


def _rotate(
    x: torch.Tensor, c: torch.Tensor, s: torch.Tensor, out: torch.Tensor, sign: int
) -> None:
    """out = x rotated by +angle (sign 1) or -angle (sign -1); x, out: (..., D), c, s: the
    (..., D/2) cos and sin of the angles. Four kernels on half-width views, no copies."""
    h = x.shape[-1] // 2
    x1, x2, out1, out2 = x[..., :h], x[..., h:], out[..., :h], out[..., h:]
    torch.mul(x1, c, out=out1)
    out1.addcmul_(x2, s, value=-sign)  # x1 cos - x2 sin
    torch.mul(x2, c, out=out2)
    out2.addcmul_(x1, s, value=sign)  # x2 cos + x1 sin


class _RopeHeadsFunction(torch.autograd.Function):
    """Fused qkv -> rotated queries and keys and the values, each head-major.

    In one step: the split into q, k, v, the rotation of q and k, the transposes to
    (B, heads, T, D) and the cast attention wants. Autograd through `apply_rope` on views of
    the fused projection makes the backward concatenate the q, k and v gradients twice and
    roll the sin half; this backward writes them straight into one (B, T, H + 2G, D) tensor."""

    @staticmethod
    def forward(ctx, qkv, cos, signed_sin, n_heads, n_kv_heads, dtype):
        B, T, _, D = qkv.shape
        H, G, h = n_heads, n_kv_heads, D // 2
        c, s = cos[:, :h].to(dtype), signed_sin[:, h:].to(dtype)  # (T, D/2): cos, +sin
        q = torch.empty(B, H, T, D, dtype=dtype, device=qkv.device)
        k = torch.empty(B, G, T, D, dtype=dtype, device=qkv.device)
        _rotate(qkv[:, :, :H].transpose(1, 2), c, s, q, 1)
        _rotate(qkv[:, :, H : H + G].transpose(1, 2), c, s, k, 1)
        v = torch.empty(B, G, T, D, dtype=dtype, device=qkv.device)
        v.copy_(qkv[:, :, H + G :].transpose(1, 2))
        ctx.save_for_backward(c, s)
        ctx.heads, ctx.input_dtype = (H, G), qkv.dtype
        return q, k, v

    @staticmethod
    def backward(ctx, grad_q, grad_k, grad_v):
        c, s = ctx.saved_tensors
        H, G = ctx.heads
        B, _, T, D = grad_q.shape
        dtype = torch.promote_types(grad_q.dtype, c.dtype)
        grad = torch.empty(B, T, H + 2 * G, D, dtype=dtype, device=grad_q.device)
        # The transpose of a rotation is the rotation back.
        _rotate(grad_q, c, s, grad[:, :, :H].transpose(1, 2), -1)
        _rotate(grad_k, c, s, grad[:, :, H : H + G].transpose(1, 2), -1)
        grad[:, :, H + G :].transpose(1, 2).copy_(grad_v)
        return grad.to(ctx.input_dtype), None, None, None, None, None


def rope_heads(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    signed_sin: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """qkv: (B, T, H + 2G, D), the fused projection's H query, G key and G value heads;
    cos, signed_sin: rope_cache's tables for the T positions, (T, D).

    Returns q (B, H, T, D) and k (B, G, T, D) rotated, and v (B, G, T, D), contiguous and in
    `dtype` (default qkv's)."""
    dtype = dtype or qkv.dtype
    if torch.compiler.is_compiling():  # the compiler fuses the plain form by itself
        H, G = n_heads, n_kv_heads
        qk, v = qkv.split((H + G, G), dim=2)
        qk = apply_rope(qk.to(dtype), cos[:, None], signed_sin[:, None])
        q, k = qk.split((H, G), dim=2)
        return q.transpose(1, 2), k.transpose(1, 2), v.to(dtype).transpose(1, 2)
    return _RopeHeadsFunction.apply(qkv, cos, signed_sin, n_heads, n_kv_heads, dtype)
