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
from mia.model.rope import apply_rope, rope_heads

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
        self.scale = config.attention_scale  # None: 1/sqrt(D); µP: 1/D (see ModelConfig)
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
        if input_pos is None and rope is not None and self.q_norm is None:
            # Training and full passes: split, rotate and transpose in one fused step.
            float32 = _attend_in_float32(qkv, T)
            q, k, v = rope_heads(qkv, *rope, H, G, torch.float32 if float32 else None)
            return self._attend(q, k, v, float32, qkv.dtype)
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

        if input_pos is None:
            float32 = _attend_in_float32(q, T)
            if float32:
                q, k, v = q.float(), k.float(), v.float()
            return self._attend(q, k, v, float32, qkv.dtype)
        if self.kv_cache is None:
            raise RuntimeError("input_pos given but no KV cache: call setup_cache() first")
        k, v = self.kv_cache.update(input_pos, k, v)  # (B, G, S, D), S = input_pos[-1] + 1
        if T == 1:
            # One new token sees every cached key, so no mask; each key/value head's H/G
            # query heads go in as H/G query rows of that head (one attention per group,
            # no copies of keys and values, unlike enable_gqa).
            y = F.scaled_dot_product_attention(q.reshape(B, G, H // G, D), k, v, scale=self.scale)
            return self.proj(y.reshape(B, 1, H * D))  # (B, G, H/G, D) -> (B, 1, C)
        # A prompt: query i sees keys 0..input_pos[i].
        S = k.shape[2]
        mask = input_pos[:, None] >= torch.arange(S, device=x.device)[None, :]  # (T, S)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, enable_gqa=G != H, scale=self.scale
        )
        return self._project(y)

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, float32: bool, dtype: torch.dtype
    ) -> torch.Tensor:
        """Causal attention over the whole sequence. q: (B, H, T, D); k, v: (B, G, T, D).
        float32: q, k, v are float32 copies of `dtype` values, attended with autocast off
        (autocast lists attention among its bf16 ops and would cast them back)."""
        precision = torch.autocast("cpu", enabled=False) if float32 else contextlib.nullcontext()
        with precision:
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=True,
                enable_gqa=self.n_kv_heads != self.n_heads,
                scale=self.scale,
            )  # (B, H, T, D)
        return self._project(y.to(dtype))

    def _project(self, y: torch.Tensor) -> torch.Tensor:
        """y: (B, H, T, D) -> the output projection of the heads side by side, (B, T, C)."""
        B, H, T, D = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, H * D))

    def _norm_queries_and_keys(self, qk: torch.Tensor) -> torch.Tensor:
        """qk: (B, T, H + G, D) -> each head's query and key vector RMS-normalised over D."""
        q, k = qk.split((self.n_heads, self.n_kv_heads), dim=2)  # (B, T, H, D), (B, T, G, D)
        return torch.cat((self.q_norm(q), self.k_norm(k)), dim=2)  # (B, T, H + G, D)


def _attend_in_float32(q: torch.Tensor, T: int) -> bool:
    """True for a short (T positions) bf16/fp16 sequence on CPU (see the constant above)."""
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.bfloat16, torch.float16)
        and T <= CPU_FLOAT32_ATTENTION_MAX_T
    )
