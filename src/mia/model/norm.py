"""Normalisation layers. Both compute in float32 and cast back, so bf16 runs stay stable."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _RMSNormFunction(torch.autograd.Function):
    """RMSNorm with a hand-written backward: 13 kernels forward and backward together.

    On a CPU, `F.rms_norm` is a composite of small kernels whose autograd backward launches
    about twice as many again; LayerNorm has one fused kernel each way. At nanoGPT's shapes
    this made the LLaMA step's norms cost about three times LayerNorm's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        xf = x.float()
        rstd = torch.rsqrt(xf.square().mean(-1, keepdim=True).add_(eps))  # (..., 1)
        normed = xf * rstd
        ctx.save_for_backward(normed, rstd, weight)
        ctx.input_dtype = x.dtype
        return (normed * weight.float()).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        normed, rstd, weight = ctx.saved_tensors
        grad = grad.float()
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = (grad * normed).flatten(0, -2).sum(0).to(weight.dtype)
        grad_normed = grad * weight.float()
        # d/dx of x * rstd(x): (g - normed * mean(g * normed)) * rstd
        mean = (grad_normed * normed).mean(-1, keepdim=True)
        grad_x = torch.addcmul(grad_normed, normed, mean, value=-1).mul_(rstd)
        return grad_x.to(ctx.input_dtype), grad_weight, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x * rsqrt(mean(x², last dim) + eps) * weight, in float32, returned in x's dtype."""
    if torch.compiler.is_compiling():  # the compiler fuses the plain form by itself
        return F.rms_norm(x.float(), (x.shape[-1],), weight.float(), eps).to(x.dtype)
    return _RMSNormFunction.apply(x, weight, eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


class LayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float()
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def build_norm(kind: str, dim: int, eps: float, bias: bool) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(dim, eps)
    return LayerNorm(dim, eps=eps, bias=bias)
