"""FLOPs of a decoder, counted exactly from its `ModelConfig` and the sequence length.

The rule, the one MIA uses everywhere (MFU, budgets, the IsoFLOP fit):

- Every matrix multiply costs 2 FLOPs per multiply-add: the query/key/value projection,
  the attention scores Q K^T and the weighted sum over the values, the output projection,
  the MLP's matrices and the output head. Nothing else counts: embedding lookups are
  0 FLOPs, and norms, RoPE, activations, softmax, bias adds and residual adds are left
  out (as torch's `FlopCounterMode` leaves them out).
- Causal attention counts the full T x T score matrix per head (what `FlopCounterMode`
  counts for scaled-dot-product attention), not the half a causal mask keeps. Each query
  head costs 4 * T * D FLOPs per token, whatever the number of key/value heads.
- Training costs 3 x the forward pass: the backward of each matmul is two matmuls of the
  same size (gradients of its input and of its weight).

So, with N the parameters that every token multiplies (`matmul_parameters`: every linear
layer's weight, the output head included, tied or not; not the embedding tables, norms
or biases), forward FLOPs per token are ``2 N + 4 L T H D`` and training ``6 N + 12 L T H D``.
The IsoFLOP fit's N is this same N (Kaplan's non-embedding count, with the head kept:
it costs FLOPs like any other matrix).
"""

from __future__ import annotations

import math

from mia.errors import UserError
from mia.model.config import ModelConfig

TRAINING_FACTOR = 3  # forward + backward (twice the forward's matmuls)


def matmul_parameters(config: ModelConfig) -> int:
    """Weights that every token multiplies: attention (qkv and output projections), the
    MLP and the output head, over all layers."""
    C, H, G, D = config.dim, config.n_heads, config.n_kv_heads, config.head_dim
    hidden = config.hidden_dim
    attention = C * (H + 2 * G) * D + H * D * C
    mlp = (3 if config.mlp == "swiglu" else 2) * C * hidden  # SwiGLU: gate, up and down
    return config.n_layers * (attention + mlp) + C * config.vocab_size


def attention_flops_per_token(config: ModelConfig, seq_len: int) -> int:
    """Forward FLOPs of the scores and the weighted sum, per token, full T x T."""
    return 4 * config.n_layers * seq_len * config.n_heads * config.head_dim


def forward_flops_per_token(config: ModelConfig, seq_len: int) -> int:
    """Forward FLOPs per token of a (batch, seq_len) pass."""
    return 2 * matmul_parameters(config) + attention_flops_per_token(config, seq_len)


def training_flops_per_token(config: ModelConfig, seq_len: int) -> int:
    """Forward and backward FLOPs per token: 3 x the forward."""
    return TRAINING_FACTOR * forward_flops_per_token(config, seq_len)


def step_flops(config: ModelConfig, batch_size: int, seq_len: int) -> int:
    """Forward and backward FLOPs of one (batch_size, seq_len) batch."""
    return batch_size * seq_len * training_flops_per_token(config, seq_len)


def steps_for_budget(budget: float, flops_per_step: int, setting: str = "budget_flops") -> int:
    """Optimizer steps a compute budget buys: floor(budget / FLOPs per step), at least one."""
    steps = math.floor(budget / flops_per_step)
    if steps < 1:
        raise UserError(
            f"{setting}={budget:g}: buys less than one training step of this model "
            f"({flops_per_step:.3g} FLOPs a step); give a larger budget or a smaller model "
            "or batch"
        )
    return steps
