#!/usr/bin/env python
"""Causal attention forward and backward on CPU: bf16 against float32 (with the casts),
at the shapes of MIA's CPU experiments and at a long context.

Why `CPU_FLOAT32_ATTENTION_MAX_T` exists: PyTorch's CPU flash-attention kernel is slow in
bf16 at short contexts, so attention under bf16 autocast runs in float32 up to that length.

    python scripts/bench_attention.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mia.results import add_results_argument, make_result, save

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_results_argument(parser, "bench_attention")
    args = parser.parse_args()
    table = []
    for name, shape in SHAPES.items():
        bf16, fp32 = milliseconds(shape, upcast=False), milliseconds(shape, upcast=True)
        table.append([f"{name} {shape}", round(bf16, 2), round(fp32, 2), round(bf16 / fp32, 2)])
        print(table[-1], flush=True)
    columns = ["shape (B, H, T, D)", "bf16 ms", "float32 with casts ms", "bf16 / float32"]
    notes = "Causal attention forward and backward on the CPU, medians of 20."
    title = "CPU attention, bf16 against float32"
    save(make_result("bench_attention", title, columns, table, notes), args.results)


if __name__ == "__main__":
    main()
