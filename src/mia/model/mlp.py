"""Feed-forward layers: LLaMA's SwiGLU, the classic GELU MLP and the speedrun's ReLU²."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mia.model.config import ModelConfig


class _SwiGLUFunction(torch.autograd.Function):
    """(..., 2H) gate and up side by side -> silu(gate) * up (..., H).

    The backward writes both halves' gradients into one (..., 2H) tensor, where autograd
    through `chunk` would concatenate them in an extra pass."""

    @staticmethod
    def forward(ctx, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        ctx.save_for_backward(gate_up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (gate_up,) = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        grad_gate_up = torch.empty_like(gate_up)
        grad_gate, grad_up = grad_gate_up.chunk(2, dim=-1)
        torch.ops.aten.silu_backward.grad_input(grad * up, gate, grad_input=grad_gate)
        torch.mul(grad, F.silu(gate), out=grad_up)
        return grad_gate_up


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up: (..., 2H), the gate's H channels then the up projection's -> (..., H)."""
    if torch.compiler.is_compiling():  # the compiler fuses the plain form by itself
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up
    return _SwiGLUFunction.apply(gate_up)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)); gate and up share one matmul."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.hidden_dim = config.hidden_dim
        self.gate_up = nn.Linear(config.dim, 2 * config.hidden_dim, bias=config.bias)
        self.down = nn.Linear(config.hidden_dim, config.dim, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(swiglu(self.gate_up(x)))


class UpDownMLP(nn.Module):
    """down(activation(up(x))): the one-matrix-in, one-out MLPs; subclasses set the activation."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.dim, config.hidden_dim, bias=config.bias)
        self.down = nn.Linear(config.hidden_dim, config.dim, bias=config.bias)

    @staticmethod
    def activation(x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.activation(self.up(x)))


class GELUMLP(UpDownMLP):
    activation = staticmethod(F.gelu)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


class ReLU2MLP(UpDownMLP):
    """down(relu(up(x))²): squared ReLU (So et al., Primer; the modded-nanoGPT speedrun)."""

    activation = staticmethod(relu_squared)


_MLPS: dict[str, type[nn.Module]] = {"swiglu": SwiGLU, "gelu": GELUMLP, "relu2": ReLU2MLP}


def build_mlp(config: ModelConfig) -> nn.Module:
    return _MLPS[config.mlp](config)
