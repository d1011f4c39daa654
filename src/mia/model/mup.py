"""µP's per-matrix width multipliers, read from the real shapes of the model and its base.

Each 2-D weight inside a block (query/key/value, attention output, the MLP's matrices) gets
m_t = fan_in_t / the same matrix's fan_in in the base model (`ModelConfig.base_config`, this
config at width mup_base_dim). Rounding makes these differ from m = dim / mup_base_dim: the
SwiGLU hidden size is a multiple of 32, so at width 256 over a base of 64 the down
projection's fan-in grows 3.67x, not 4x. `Decoder.init_weights` (std base_std / sqrt(m_t))
and `build_optimizer` (AdamW rate lr / m_t, weight decay λ·m_t) both read this table.
"""

from __future__ import annotations

import torch

from mia.model.block import Block
from mia.model.config import ModelConfig


def _block_fan_ins(config: ModelConfig) -> dict[str, int]:
    """Fan-in of every 2-D weight of one block, by its name inside the block. The block is
    built on the meta device: shapes only, nothing allocated."""
    with torch.device("meta"):
        block = Block(config)
    return {name: p.shape[1] for name, p in block.named_parameters() if p.ndim == 2}


def block_multipliers(config: ModelConfig) -> dict[str, float]:
    """m_t of each 2-D weight inside a block, by its name inside the block (e.g.
    ``mlp.down.weight``); every block has the same. Empty under sp and at the base width."""
    if config.parametrization != "mup" or config.width_multiplier == 1.0:
        return {}
    own = _block_fan_ins(config)
    base = _block_fan_ins(config.base_config())
    return {name: fan_in / base[name] for name, fan_in in own.items()}


def hidden_multipliers(blocks: torch.nn.ModuleList, config: ModelConfig) -> dict[int, float]:
    """m_t of each hidden matrix of a decoder's `blocks`, keyed by the parameter's id()."""
    table = block_multipliers(config)
    return {
        id(param): table[name]
        for block in blocks
        for name, param in block.named_parameters()
        if name in table
    }
