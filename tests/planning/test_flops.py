"""The exact FLOP count against torch's FlopCounterMode on real decoders, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from mia.errors import UserError
from mia.model import Decoder, ModelConfig
from mia.planning.flops import (
    forward_flops_per_token,
    matmul_parameters,
    step_flops,
    steps_for_budget,
    training_flops_per_token,
)

CONFIGS = [  # (preset, sizes, sequence length)
    ("llama", dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=4), 16),
    ("llama", dict(dim=64, n_layers=3, n_heads=8, n_kv_heads=2), 48),  # GQA
    ("llama", dict(dim=48, n_layers=1, n_heads=4, n_kv_heads=1, multiple_of=8), 32),  # MQA
    ("gpt", dict(dim=32, n_layers=2, n_heads=4), 24),  # tied head, biases, GELU
    ("gpt", dict(dim=96, n_layers=4, n_heads=6), 8),
    ("llama", dict(dim=32, n_layers=2, n_heads=4, mlp="relu2", parametrization="mup",
                   mup_base_dim=16), 20),
]  # fmt: skip


def counted(config: ModelConfig, batch: int, seq_len: int) -> tuple[int, int]:
    """FlopCounterMode's forward and forward+backward FLOPs of a real decoder, with
    attention on PyTorch's math path (its matmuls are aten.bmm, which the counter counts)."""
    model = Decoder(config)
    idx = torch.randint(0, config.vocab_size, (batch, seq_len))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as forward:
        logits = model(idx)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as step:
        logits = model(idx)
        F.cross_entropy(logits.flatten(0, 1), idx.flatten()).backward()
    return forward.get_total_flops(), step.get_total_flops()


@pytest.mark.parametrize(("preset", "sizes", "seq_len"), CONFIGS)
def test_the_count_matches_flop_counter_mode(preset, sizes, seq_len):
    config = ModelConfig.preset(preset, vocab_size=67, max_seq_len=seq_len, **sizes)
    batch = 3
    forward, step = counted(config, batch, seq_len)
    tokens = batch * seq_len
    assert forward_flops_per_token(config, seq_len) * tokens == pytest.approx(forward, rel=0.02)
    assert training_flops_per_token(config, seq_len) * tokens == pytest.approx(step, rel=0.02)
    assert step_flops(config, batch, seq_len) == pytest.approx(step, rel=0.02)
    # In fact the rule is FlopCounterMode's own, term by term: equal, not just within 2 %.
    assert step_flops(config, batch, seq_len) == step


def test_the_cpu_attention_kernel_is_not_counted_by_flop_counter_mode():
    """Why the comparison forces the math path: on CPU, scaled-dot-product attention runs a
    fused kernel FlopCounterMode has no formula for, so it counts only the linear layers."""
    T = 16
    config = ModelConfig.preset("llama", vocab_size=67, dim=32, n_layers=2, n_heads=4,
                                max_seq_len=T)  # fmt: skip
    model = Decoder(config)
    idx = torch.randint(0, 67, (2, T))
    with FlopCounterMode(display=False) as default:
        model(idx)
    linear_only = 2 * matmul_parameters(config) * 2 * T
    assert default.get_total_flops() == linear_only
    assert forward_flops_per_token(config, T) * 2 * T > linear_only


def test_n_is_every_matmul_weight_and_no_embedding_table():
    for preset in ("llama", "gpt"):
        config = ModelConfig.preset(preset, vocab_size=50, dim=32, n_layers=2, n_heads=4,
                                    max_seq_len=16)  # fmt: skip
        model = Decoder(config)
        linears = {id(m.weight): m.weight.numel() for m in model.modules()
                   if isinstance(m, torch.nn.Linear)}  # fmt: skip
        assert matmul_parameters(config) == sum(linears.values())
        assert matmul_parameters(config) < model.num_parameters() or preset == "gpt"


def test_a_budget_buys_whole_steps_and_refuses_less_than_one():
    assert steps_for_budget(10.5e9, 1e9) == 10
    assert steps_for_budget(1e9, 1e9) == 1
    with pytest.raises(UserError, match=r"budget_flops=5e\+08: buys less than one training step"):
        steps_for_budget(5e8, 1e9)
