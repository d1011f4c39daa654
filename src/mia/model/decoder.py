"""`Decoder`: the decoder-only language model, LLaMA or classic transformer by config."""

from __future__ import annotations

import math

import torch
from torch import nn

from mia.model.block import Block
from mia.model.config import ModelConfig
from mia.model.kv_cache import KVCache
from mia.model.mup import hidden_multipliers
from mia.model.norm import RMSNorm, build_norm
from mia.model.rope import rope_cache
from mia.model.sampling import stream_tokens


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.dim)
        self.pos_emb = (
            nn.Embedding(config.max_seq_len, config.dim) if config.position == "learned" else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = build_norm(config.norm, config.dim, config.norm_eps, config.bias)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        if config.position == "rope":
            cos, sin = rope_cache(config.max_seq_len, config.head_dim, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)  # (max_seq_len, D)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Set every tensor: N(0, 0.02) for embeddings and linears, zero biases, unit norms,
        and residual output projections scaled down by sqrt(2 * n_layers), or zero with
        zero_init_residual (then every block starts as the identity).

        Under µP each matrix inside the blocks takes 0.02 / sqrt(m_t), m_t its fan-in over
        the base model's (`mia.model.mup`), the residual projections' depth scaling on top;
        embeddings keep 0.02 and the head's 1/m is a multiplier in `forward`. With
        mup_zero_init (the default) the readout and the query projection start at zero
        (a tied readout is the embedding table and keeps its init)."""
        config = self.config
        base_std = 0.02
        multipliers = hidden_multipliers(self.blocks, config)  # empty under sp

        def std_of(weight: nn.Parameter) -> float:
            return base_std / math.sqrt(multipliers.get(id(weight), 1.0))

        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=std_of(module.weight))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=base_std)
            elif isinstance(module, RMSNorm | nn.LayerNorm):
                module.reset_parameters()
        depth = math.sqrt(2 * config.n_layers)
        for block in self.blocks:
            for weight in (block.attn.proj.weight, block.mlp.down.weight):
                if config.zero_init_residual:
                    nn.init.zeros_(weight)
                else:
                    nn.init.normal_(weight, mean=0.0, std=std_of(weight) / depth)
        if config.parametrization == "mup" and config.mup_zero_init:
            with torch.no_grad():
                for block in self.blocks:
                    block.attn.qkv.weight[: config.n_heads * config.head_dim].zero_()
                    if block.attn.qkv.bias is not None:
                        block.attn.qkv.bias[: config.n_heads * config.head_dim].zero_()
                if not config.tie_embeddings:
                    nn.init.zeros_(self.lm_head.weight)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameters, counting tied weights once; optionally without the embedding tables."""
        params = {id(p): p for p in self.parameters()}
        if exclude_embeddings:
            params.pop(id(self.tok_emb.weight), None)
            if self.pos_emb is not None:
                params.pop(id(self.pos_emb.weight), None)
        return sum(p.numel() for p in params.values())

    def forward(self, idx: torch.Tensor, input_pos: torch.Tensor | None = None) -> torch.Tensor:
        """idx: (B, T) token ids -> logits (B, T, vocab_size).

        input_pos: None for a full causal pass over positions 0..T-1; or the (T,) positions of
        idx while decoding with the KV cache (see `setup_cache`).
        """
        T = idx.shape[1]
        if input_pos is None:
            if T > self.config.max_seq_len:
                raise ValueError(
                    f"sequence length {T} exceeds max_seq_len {self.config.max_seq_len}"
                )
            positions = torch.arange(T, device=idx.device)
        else:
            positions = input_pos
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        x = self.drop(x)
        rope = None
        if self.config.position == "rope":
            rope = (self.rope_cos[positions], self.rope_sin[positions])  # (T, D) each
        for block in self.blocks:
            x = block(x, rope, input_pos)
        x = self.norm(x)
        m = self.config.width_multiplier
        if m != 1.0:
            x = x * (1.0 / m)  # µP's output multiplier, on (B, T, C) rather than the logits
        logits = self.lm_head(x)  # (B, T, vocab_size)
        cap = self.config.logit_softcap
        if cap is not None:
            logits = cap * torch.tanh(logits / cap)  # smooth, into (-cap, cap)
        return logits

    # --- decoding -------------------------------------------------------------------------

    def setup_cache(
        self, batch_size: int, max_len: int | None = None, dtype: torch.dtype | None = None
    ) -> None:
        """Give every attention layer a KV cache for batch_size sequences of up to max_len
        positions (default max_seq_len)."""
        max_len = max_len or self.config.max_seq_len
        if max_len > self.config.max_seq_len:
            raise ValueError(
                f"cache length {max_len} exceeds max_seq_len {self.config.max_seq_len}"
            )
        weight = self.lm_head.weight
        for block in self.blocks:
            block.attn.kv_cache = KVCache(
                batch_size,
                max_len,
                self.config.n_kv_heads,
                self.config.head_dim,
                dtype or weight.dtype,
                weight.device,
            )

    def reset_cache(self) -> None:
        for block in self.blocks:
            block.attn.kv_cache = None

    @property
    def cache_len(self) -> int:
        cache = self.blocks[0].attn.kv_cache
        return 0 if cache is None else cache.max_len

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Continue prompts idx (B, T) by max_new_tokens tokens -> (B, T + max_new_tokens).

        Temperature 0 is greedy; top_k and top_p filter before sampling; seed makes
        sampling repeatable.
        """
        new = list(
            stream_tokens(self, idx, max_new_tokens, temperature, top_k, top_p, seed, use_cache)
        )
        if not new:
            return idx
        return torch.cat((idx, torch.stack(new, dim=1)), dim=1)
