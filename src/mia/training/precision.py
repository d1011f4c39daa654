"""The precision a run trains in on this machine.

bfloat16 autocast makes a CPU faster only where the processor multiplies bfloat16 in
hardware (AMX or AVX512-BF16, as on recent Xeons). Elsewhere (AVX2-only processors: many
AMD EPYC and older Intel ones) PyTorch multiplies bfloat16 in reference kernels about 100x
slower than float32, and a two-minute run would take hours. So where a run asks for a
bfloat16 precision on the CPU and a short probe finds bfloat16 matmuls at under half the
float32 rate, it trains in float32 instead, and says so in one log line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

log = logging.getLogger(__name__)

PROBE_SIZE = 256  # small enough that the slow kernels take ~25 ms a multiply
SLOW_RATIO = 0.5  # bf16 below half the float32 rate falls back (well clear of noise)
FALLBACK = "32-true"


def cpu_matmul_rate(dtype: torch.dtype, size: int = PROBE_SIZE, repeats: int = 3) -> float:
    """FLOP/s of one (size, size) @ (size, size) multiply on the CPU, best of `repeats`."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / max(best, 1e-9)


def trains_on_cpu(accelerator: Any) -> bool:
    """Whether Lightning's `accelerator` setting puts the run on the CPU."""
    name = str(accelerator).lower()
    if name == "cpu":
        return True
    if name != "auto":
        return False
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def run_precision(precision: Any, accelerator: Any) -> str:
    """`precision` as asked, or float32 where bfloat16 would be slow on this CPU."""
    asked = str(precision)
    if "bf16" not in asked or not trains_on_cpu(accelerator):
        return asked
    bf16, fp32 = cpu_matmul_rate(torch.bfloat16), cpu_matmul_rate(torch.float32)
    if bf16 >= SLOW_RATIO * fp32:
        return asked
    log.warning(
        "trainer.precision=%s: this CPU multiplies bfloat16 at %.1f GFLOP/s against %.0f in "
        "float32 (no AMX or AVX512-BF16), so this run trains in float32 (%s)",
        asked,
        bf16 / 1e9,
        fp32 / 1e9,
        FALLBACK,
    )
    return FALLBACK


def use_run_precision(trainer_cfg: Any) -> None:
    """Set `trainer_cfg.precision` (a Trainer config) to the precision this machine trains in."""
    precision = run_precision(trainer_cfg.precision, trainer_cfg.get("accelerator", "auto"))
    if precision != str(trainer_cfg.precision):
        trainer_cfg.precision = precision
