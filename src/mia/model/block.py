"""One pre-norm decoder block: x + attn(norm(x)), then x + mlp(norm(x))."""

from __future__ import annotations

import torch
from torch import nn

from mia.model.attention import CausalSelfAttention
from mia.model.config import ModelConfig
from mia.model.mlp import build_mlp
from mia.model.norm import build_norm


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = build_norm(config.norm, config.dim, config.norm_eps, config.bias)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = build_norm(config.norm, config.dim, config.norm_eps, config.bias)
        self.mlp = build_mlp(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.attn_norm(x), rope, input_pos))
        return x + self.drop(self.mlp(self.mlp_norm(x)))
