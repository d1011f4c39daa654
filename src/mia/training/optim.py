"""The optimizer's parameter groups and the learning-rate schedule.

The schedule is a pure function of the step, so a resumed run continues on the same curve
and tests can check it directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mia.errors import UserError

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def lr_at(
    step: int,
    base_lr: float,
    warmup_steps: int,
    decay_steps: int | None,
    min_lr: float,
    kind: str = "cosine",
) -> float:
    """Learning rate after `step` optimizer steps: linear warmup from 0 over warmup_steps,
    then cosine decay to min_lr at decay_steps (and min_lr after); `constant` stays at
    base_lr after warmup."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if kind == "constant" or not decay_steps or decay_steps <= warmup_steps:
        return base_lr
    progress = min(1.0, (step - warmup_steps) / (decay_steps - warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


@dataclass
class LrSchedule:
    """`lr_at` with its settings, as a multiplier of base_lr for torch's LambdaLR.

    decay_steps (the cosine horizon) may change after construction: a resumed run takes
    the horizon its checkpoint stored."""

    base_lr: float
    warmup_steps: int
    decay_steps: int | None
    min_lr: float
    kind: str = "cosine"

    def factor(self, step: int) -> float:
        if self.base_lr == 0:
            return 0.0  # the schedule of a zero learning rate is zero throughout
        schedule = (self.warmup_steps, self.decay_steps, self.min_lr, self.kind)
        return lr_at(step, self.base_lr, *schedule) / self.base_lr


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (linear and embedding weights); never decay biases and norm gains."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, settings: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named by `optimizer.name` (adamw | adam) over decay/no-decay groups."""
    name = settings.get("name", "adamw")
    if name not in OPTIMIZERS:
        raise UserError(
            f"optimizer.name={name!r} is not known; choose one of {', '.join(OPTIMIZERS)}"
        )
    device = next(model.parameters()).device
    fused = settings.get("fused")
    if fused is None:  # fused kernels exist for CPU and CUDA tensors and are faster
        fused = device.type in ("cpu", "cuda")
    kwargs = dict(
        lr=settings["lr"],
        betas=tuple(settings.get("betas", (0.9, 0.999))),
        eps=settings.get("eps", 1e-8),
        fused=bool(fused),
    )
    return OPTIMIZERS[name](parameter_groups(model, settings.get("weight_decay", 0.0)), **kwargs)
