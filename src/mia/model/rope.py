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
