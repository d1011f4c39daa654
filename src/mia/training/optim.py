"""The optimizer's parameter groups and the learning-rate schedule.

The schedule is a pure function of the step, so a resumed run continues on the same curve
and tests can check it directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mia.errors import UserError
from mia.model.config import ModelConfig
from mia.model.mup import hidden_multipliers

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
# Every choice of optimizer.name: the two above, and Muon for hidden matrices with AdamW.
OPTIMIZER_NAMES = (*OPTIMIZERS, "muon")
# The schedules (scheduler.name) of `lr_at` that decay to min_lr at a horizon.
DECAYING_SCHEDULES = ("cosine", "linear")


def lr_at(
    step: int,
    base_lr: float,
    warmup_steps: int,
    decay_steps: int | None,
    min_lr: float,
    kind: str = "cosine",
) -> float:
    """Learning rate after `step` optimizer steps: linear warmup from 0 over warmup_steps,
    then decay to min_lr at decay_steps (and min_lr after), along a half cosine (`cosine`)
    or a straight line (`linear`); `constant` stays at base_lr after warmup."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if kind == "constant" or not decay_steps or decay_steps <= warmup_steps:
        return base_lr
    progress = min(1.0, (step - warmup_steps) / (decay_steps - warmup_steps))
    remaining = 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr + remaining * (base_lr - min_lr)


@dataclass
class LrSchedule:
    """`lr_at` with its settings, as a multiplier of base_lr for torch's LambdaLR.

    decay_steps (the decay horizon) may change after construction: a resumed run takes
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


def embedding_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The matrices outside the decoder's blocks: token (and position) embeddings and the
    output head (once, if tied)."""
    return [
        p for name, p in model.named_parameters() if not name.startswith("blocks.") and p.ndim >= 2
    ]


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    embedding_weight_decay: float | None = None,
    exclude: Iterable[nn.Parameter] = (),
    lr: float | None = None,
    multipliers: Mapping[int, float] | None = None,
) -> list[dict[str, Any]]:
    """Decay matrices (linear and embedding weights); never decay biases and norm gains.

    With `embedding_weight_decay` set apart from `weight_decay`, the embeddings and the
    output head get a group of their own with that decay (a third group, so only then:
    the optimizer state of a run without it keeps its two groups). `multipliers` (µP: a
    matrix's id -> its width multiplier m_t, see `mia.model.mup`) puts the matrices of
    each multiplier other than 1 into a group of their own, after the others, at rate
    lr / m_t and weight decay weight_decay * m_t. Parameters in `exclude` (those another
    optimizer steps) are left out."""
    skip = {id(p) for p in exclude}
    multipliers = {k: m for k, m in (multipliers or {}).items() if m != 1.0 and k not in skip}
    if multipliers and lr is None:
        raise ValueError("parameter_groups: multipliers need the base rate lr")
    apart = embedding_weight_decay is not None and embedding_weight_decay != weight_decay
    embeddings = {id(p) for p in embedding_matrices(model)} if apart else set()
    decay, no_decay, embedding = [], [], []
    scaled: dict[float, list[nn.Parameter]] = {}  # m_t -> its matrices, in model order
    for param in model.parameters():
        if not param.requires_grad or id(param) in skip:
            continue
        skip.add(id(param))
        if id(param) in embeddings:
            embedding.append(param)
        elif id(param) in multipliers:
            scaled.setdefault(multipliers[id(param)], []).append(param)
        else:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if apart:
        groups.append({"params": embedding, "weight_decay": embedding_weight_decay})
    # µP for Adam: a hidden matrix's update moves its output by about lr * fan_in per
    # coordinate, so its rate is lr / m_t. AdamW decays by rate * decay per step, which
    # would then weaken as 1/m_t: the decay is weight_decay * m_t instead, so every hidden
    # matrix shrinks by lr * weight_decay per step at every width (in effect independent
    # weight decay, as Microsoft's mup package does by default), and a tuned decay
    # transfers with the tuned rate.
    for m, params in scaled.items():
        groups.append({"params": params, "weight_decay": weight_decay * m, "lr": lr / m})
    return groups


def mup_multipliers(model: nn.Module) -> dict[int, float]:
    """µP's m_t of each hidden matrix of a decoder, by id (empty under sp, at the base
    width, and for anything that is not a decoder)."""
    config, blocks = getattr(model, "config", None), getattr(model, "blocks", None)
    if not isinstance(config, ModelConfig) or blocks is None:
        return {}
    return hidden_multipliers(blocks, config)


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The 2-D weights inside the decoder's blocks (attention and MLP projections): what
    Muon orthogonalises. Embeddings, the output head and gains stay with AdamW."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise UserError("optimizer.name=muon needs a decoder with blocks")
    return [p for p in blocks.parameters() if p.requires_grad and p.ndim == 2]


def build_optimizer(model: nn.Module, settings: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named by `optimizer.name` (adamw | adam | muon) over decay/no-decay
    groups."""
    name = settings.get("name", "adamw")
    if name not in OPTIMIZER_NAMES:
        raise UserError(
            f"optimizer.name={name!r} is not known; choose one of {', '.join(OPTIMIZER_NAMES)}"
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
    decays = settings.get("weight_decay", 0.0), settings.get("embedding_weight_decay")
    if name != "muon":
        # µP: the hidden matrices at lr / m_t and decay * m_t (see parameter_groups);
        # embeddings, head, gains and biases keep lr.
        groups = parameter_groups(
            model, *decays, lr=settings["lr"], multipliers=mup_multipliers(model)
        )
        return OPTIMIZERS[name](groups, **kwargs)
    # µP for Muon: its orthogonalised update has spectral norm lr * sqrt(max(1, out/in)) of
    # each matrix's own shape, already the size µP asks of a hidden matrix
    # (sqrt(fan_out/fan_in) in spectral norm, whatever the rounding of the MLP's width), so
    # muon_lr and Muon's decay (lr * decay per step) need no width factor and no per-matrix
    # multiplier; init, the logits' 1/m and the attention scale come from the model.
    matrices = hidden_matrices(model)
    muon = torch.optim.Muon(
        matrices,
        lr=settings.get("muon_lr", 0.02),
        momentum=settings.get("muon_momentum", 0.95),
        weight_decay=settings.get("muon_weight_decay", 0.0),
        ns_steps=settings.get("muon_ns_steps", 5),
    )
    adamw = torch.optim.AdamW(parameter_groups(model, *decays, exclude=matrices), **kwargs)
    return MuonWithAdamW(muon, adamw)


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon and AdamW stepping together as one optimizer.

    One optimizer rather than two under Lightning's manual optimization: there each
    optimizer's step counts towards `global_step`, which `trainer.max_steps`, the
    learning-rate schedule and the (seed, step) batch stream all read. Here Lightning sees
    one optimizer, so clipping, gradient accumulation, the LambdaLR schedule (it scales
    every group's own rate: Muon's and AdamW's) and checkpoints work as for AdamW.
    """

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer) -> None:
        self.muon, self.adamw = muon, adamw
        super().__init__([p for g in self._groups() for p in g["params"]], {})
        self.param_groups = self._groups()  # the inner optimizers' own group dicts

    def _groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = self._groups()  # loading replaces the group dicts
