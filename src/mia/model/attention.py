"""Causal self-attention: multi-head, grouped-query and multi-query in one module.

Notation: B batch, T time (query positions), S key positions, C model width,
H query heads, G key/value heads (H % G == 0), D head size (C // H).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from mia.model.config import ModelConfig
from mia.model.kv_cache import KVCache
from mia.model.norm import RMSNorm
from mia.model.rope import apply_rope

# On CPU, PyTorch's flash-attention kernel is slow in bf16 at short contexts: forward and
# backward take 2.2-2.5x as long as in float32 (casts included) at T 64-128, about the same
# at T 256-512, and bf16 wins only from about T 1024 (scripts/bench_attention.py). So under
# CPU autocast, attention runs in float32 up to this many positions.
CPU_FLOAT32_ATTENTION_MAX_T = 256


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.dropout = config.attention_dropout_rate
        # One projection for queries, keys and values: one matmul instead of three.
        qkv_dim = (self.n_heads + 2 * self.n_kv_heads) * self.head_dim
        self.qkv = nn.Linear(config.dim, qkv_dim, bias=config.bias)
        self.proj = nn.Linear(self.n_heads * self.head_dim, config.dim, bias=config.bias)
        # QK-norm: one gain of size D for all query heads, one for all key heads.
        self.q_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None
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
        qkv = self.qkv(x).view(B, T, H + 2 * G, D)
        qk, v = qkv.split((H + G, G), dim=2)  # (B, T, H + G, D), (B, T, G, D)
        if self.q_norm is not None:
            # Before RoPE and before the cache, so cached keys are normalised keys.
            qk = self._norm_queries_and_keys(qk)
        if rope is not None:
            # Queries and keys rotate together: one set of elementwise ops, not two.
            cos, sin = (t[:, None] for t in rope)  # (T, 1, D): broadcast over heads
            qk = apply_rope(qk, cos, sin)  # (B, T, H + G, D)
        q, k = qk.split((H, G), dim=2)
        q = q.transpose(1, 2)  # (B, H, T, D)
        k = k.transpose(1, 2)  # (B, G, T, D)
        v = v.transpose(1, 2)  # (B, G, T, D)

        if input_pos is not None:
            if self.kv_cache is None:
                raise RuntimeError("input_pos given but no KV cache: call setup_cache() first")
            k, v = self.kv_cache.update(input_pos, k, v)  # (B, G, S, D), S = input_pos[-1] + 1
            if T == 1:
                # One new token sees every cached key, so no mask; each key/value head's H/G
                # query heads go in as H/G query rows of that head (one attention per group,
                # no copies of keys and values, unlike enable_gqa).
                y = F.scaled_dot_product_attention(q.reshape(B, G, H // G, D), k, v)
                return self.proj(y.reshape(B, 1, H * D))  # (B, G, H/G, D) -> (B, 1, C)
            # A prompt: query i sees keys 0..input_pos[i].
            S = k.shape[2]
            mask = input_pos[:, None] >= torch.arange(S, device=x.device)[None, :]  # (T, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=G != H)
        else:
            dtype, precision = q.dtype, contextlib.nullcontext()
            if _attend_in_float32(q):
                q, k, v = q.float(), k.float(), v.float()
                # Autocast off: it lists attention among its bf16 ops and would cast back.
                precision = torch.autocast("cpu", enabled=False)
            with precision:
                y = F.scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    dropout_p=self.dropout if self.training else 0.0,
                    is_causal=True,
                    enable_gqa=G != H,
                )  # (B, H, T, D)
            y = y.to(dtype)
        y = y.transpose(1, 2).reshape(B, T, H * D)
        return self.proj(y)

    def _norm_queries_and_keys(self, qk: torch.Tensor) -> torch.Tensor:
        """qk: (B, T, H + G, D) -> each head's query and key vector RMS-normalised over D."""
        q, k = qk.split((self.n_heads, self.n_kv_heads), dim=2)  # (B, T, H, D), (B, T, G, D)
        return torch.cat((self.q_norm(q), self.k_norm(k)), dim=2)  # (B, T, H + G, D)


def _attend_in_float32(q: torch.Tensor) -> bool:
    """q: (B, H, T, D). True for a short bf16/fp16 sequence on CPU (see the constant above)."""
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.bfloat16, torch.float16)
        and q.shape[2] <= CPU_FLOAT32_ATTENTION_MAX_T
    )
