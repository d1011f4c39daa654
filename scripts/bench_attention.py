#!/usr/bin/env python
"""Causal attention forward and backward on CPU: bf16 against float32 (with the casts),
at the shapes of MIA's CPU experiments and at a long context.

Why `CPU_FLOAT32_ATTENTION_MAX_T` exists: PyTorch's CPU flash-attention kernel is slow in
bf16 at short contexts, so attention under bf16 autocast runs in float32 up to that length.

    python scripts/bench_attention.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {  # (B, H, T, D)
    "nanogpt_baby": (12, 4, 64, 32),
    "speedrun_cpu": (8, 4, 128, 32),
    "shakespeare_cpu": (16, 6, 256, 32),
    "T 512": (4, 6, 512, 32),
    "T 1024": (4, 8, 1024, 64),
}


def milliseconds(shape: tuple[int, ...], upcast: bool, repeats: int = 20) -> float:
    q, k, v = (torch.randn(shape, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, dtype=torch.bfloat16)

    def step() -> None:
        a, b, c = (t.float() for t in (q, k, v)) if upcast else (q, k, v)
        F.scaled_dot_product_attention(a, b, c, is_causal=True).to(torch.bfloat16).backward(grad)

    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    print("| shape (B, H, T, D) | bf16 | float32 with casts | bf16 / float32 |")
    print("|---|---:|---:|---:|")
    for name, shape in SHAPES.items():
        bf16, fp32 = milliseconds(shape, upcast=False), milliseconds(shape, upcast=True)
        print(f"| {name} {shape} | {bf16:.2f} ms | {fp32:.2f} ms | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
