"""Causal self-attention: multi-head, grouped-query and multi-query in one module.

Notation: B batch, T time (query positions), S key positions, C model width,
H query heads, G key/value heads (H % G == 0), D head size (C // H).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mia.model.config import ModelConfig
from mia.model.kv_cache import KVCache
from mia.model.rope import apply_rope


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        # One projection for queries, keys and values: one matmul instead of three.
        qkv_dim = (self.n_heads + 2 * self.n_kv_heads) * self.head_dim
        self.qkv = nn.Linear(config.dim, qkv_dim, bias=config.bias)
        self.proj = nn.Linear(self.n_heads * self.head_dim, config.dim, bias=config.bias)
        self.kv_cache: KVCache | None = None

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C). rope: cos, sin (T, D) for these positions, or None (learned positions).
        input_pos: (T,) positions when decoding with the KV cache, else None."""
        B, T, _ = x.shape
        H, G, D = self.n_heads, self.n_kv_heads, self.head_dim
        q, k, v = self.qkv(x).split((H * D, G * D, G * D), dim=-1)
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, G, D).transpose(1, 2)  # (B, G, T, D)
        v = v.view(B, T, G, D).transpose(1, 2)  # (B, G, T, D)
        if rope is not None:
            q = apply_rope(q, *rope)
            k = apply_rope(k, *rope)

        mask = None
        is_causal = True
        if input_pos is not None:
            if self.kv_cache is None:
                raise RuntimeError("input_pos given but no KV cache: call setup_cache() first")
            k, v = self.kv_cache.update(input_pos, k, v)  # (B, G, S, D), S = input_pos[-1] + 1
            is_causal = False
            if T > 1:  # a prompt: query i sees keys 0..input_pos[i]
                S = k.shape[2]
                mask = input_pos[:, None] >= torch.arange(S, device=x.device)[None, :]  # (T, S)
            # T == 1: the newest token sees every cached key; no mask needed.

        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
            enable_gqa=G != H,
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, H * D)
        return self.proj(y)
