"""µP's coordinate check (Yang et al., Tensor Programs V, §D.1): train a model a few AdamW
steps at a large rate, at growing widths, and follow the mean absolute size of each layer's
output. Under µP every size stays in a band as the model widens; under the standard
parametrisation the attention scores, the hidden activations and the logits grow with width.

`activation_sizes` measures one model; `spread` compares one layer across widths. The
coordinate-check test and scripts/coord_check.py (the figure) both use them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig
from mia.training.optim import build_optimizer


def layer_names(n_layers: int) -> list[str]:
    """The measured layers, in order: embedding, each block's scores and output, logits."""
    names = ["embedding"]
    for i in range(n_layers):
        names += [f"scores{i}", f"block{i}"]
    return [*names, "logits"]


def activation_sizes(
    config: ModelConfig,
    steps: int = 3,
    lr: float = 1e-2,
    batch_size: int = 4,
    seeds: tuple[int, ...] = (0, 1, 2),
) -> list[dict[str, float]]:
    """Mean |output| of every layer in `layer_names` after each of `steps` AdamW updates
    (entry k: the forward pass after k + 1 updates) on one fixed random batch of
    max_seq_len + 1 tokens, averaged over `seeds` (each its own init and batch: at width
    32 one draw alone varies by tens of percent). `scores{i}` are block i's attention
    scores q·k times the attention scale (before RoPE and the softmax)."""
    runs = [_one_run(config, steps, lr, batch_size, seed) for seed in seeds]
    return [
        {name: sum(run[k][name] for run in runs) / len(runs) for name in runs[0][k]}
        for k in range(steps)
    ]


def _one_run(
    config: ModelConfig, steps: int, lr: float, batch_size: int, seed: int
) -> list[dict[str, float]]:
    torch.manual_seed(seed)
    model = Decoder(config)
    optimizer = build_optimizer(model, {"name": "adamw", "lr": lr, "weight_decay": 0.0})
    generator = torch.Generator().manual_seed(seed + 1)
    shape = (batch_size, config.max_seq_len + 1)
    batch = torch.randint(0, config.vocab_size, shape, generator=generator)
    x, y = batch[:, :-1], batch[:, 1:]
    history = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(_measure(model, x))
    return history


def _measure(model: Decoder, x: torch.Tensor) -> dict[str, float]:
    """Every layer's mean |output| in one forward pass over x."""
    sizes: dict[str, float] = {}
    hooks = [model.tok_emb.register_forward_hook(_record(sizes, "embedding"))]
    for i, block in enumerate(model.blocks):
        hooks.append(block.register_forward_hook(_record(sizes, f"block{i}")))
        scores = _record_scores(sizes, f"scores{i}", block.attn)
        hooks.append(block.attn.qkv.register_forward_hook(scores))
    with torch.no_grad():
        sizes["logits"] = model(x).abs().mean().item()
    for hook in hooks:
        hook.remove()
    return sizes


def spread(sizes_by_width: dict[int, dict[str, float]], layer: str) -> float:
    """Largest over smallest size of one layer across the widths (1 when all are zero, as
    the scores are after the first step from a zero query)."""
    values = [sizes[layer] for sizes in sizes_by_width.values()]
    if max(values) == 0:
        return 1.0
    return max(values) / min(values) if min(values) > 0 else math.inf


def _record(sizes: dict[str, float], name: str):
    def hook(module, inputs, output):
        sizes[name] = output.detach().abs().mean().item()

    return hook


def _record_scores(sizes: dict[str, float], name: str, attn):
    def hook(module, inputs, qkv):
        H, G, D = attn.n_heads, attn.n_kv_heads, attn.head_dim
        B, T, _ = qkv.shape
        q, k, _ = qkv.detach().split((H * D, G * D, G * D), dim=-1)
        q = q.view(B, T, G, H // G, D).permute(0, 2, 3, 1, 4)  # (B, G, H/G, T, D)
        k = k.view(B, T, G, 1, D).permute(0, 2, 3, 1, 4)  # (B, G, 1, T, D)
        scale = attn.scale if attn.scale is not None else D**-0.5
        sizes[name] = (q @ k.transpose(-1, -2) * scale).abs().mean().item()

    return hook
