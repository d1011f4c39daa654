"""Achieved FLOP/s and model FLOPs utilisation (MFU) of training.

The FLOPs of one training step (forward and backward) are counted from the model's shape
by `mia.planning.flops`, the one FLOP rule of the project; Lightning's `Throughput` keeps
a rolling window of step times. The peak a step is compared with is the GPU's datasheet
figure (Lightning's table) or, where it has none (every CPU), a short matrix-multiply probe
of this machine, cached per processor, thread count and dtype, so later runs skip it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput, get_available_flops

from mia.planning.flops import step_flops
from mia.results import processor_name
from mia.training.machine_cache import read_entries, write_entry
from mia.training.module import logged_step

log = logging.getLogger(__name__)

PROBE_SIZE = 1024  # square matmuls of this size, as BENCHMARKS.md's raw-compute figures


def probe_matmul_flops(device: torch.device, dtype: torch.dtype, seconds: float = 0.5) -> float:
    """FLOP/s of square matrix multiplies on `device` in `dtype`, best of a few timed runs."""
    a = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device).to(dtype)
    b = torch.randn(PROBE_SIZE, PROBE_SIZE, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b  # warm up
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        best = max(best, 4 * 2 * PROBE_SIZE**3 / (time.perf_counter() - start))
    return best


def peak_key(device: torch.device, dtype: torch.dtype) -> str:
    """The cache key of a probed peak: device, its name, thread count and dtype."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else processor_name()
    return f"{device.type}|{name}|threads={torch.get_num_threads()}|{str(dtype).split('.')[-1]}"


def datasheet_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The GPU's datasheet FLOP/s in `dtype` (Lightning's table), or None (every CPU)."""
    listed = get_available_flops(device, dtype) if device.type == "cuda" else None
    return float(listed) if listed else None


def peak_flops(device: torch.device, dtype: torch.dtype, cache_dir: str | Path | None) -> float:
    """The FLOP/s one device can reach in `dtype`: the datasheet's, else a cached probe."""
    listed = datasheet_flops(device, dtype)
    if listed:
        return listed
    key = peak_key(device, dtype)
    path = Path(cache_dir) / "peak_flops.json" if cache_dir else None
    known = read_entries(path) if path is not None else {}
    if key in known:
        return float(known[key])
    value = probe_matmul_flops(device, dtype)
    log.info("peak %s: %.0f GFLOP/s (matmul probe, cached in %s)", key, value / 1e9, path)
    if path is not None:
        write_entry(path, key, value)
    return value


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype matrix multiplies run in under a Lightning precision setting."""
    if "bf16" in precision:
        return torch.bfloat16
    if "16" in precision:
        return torch.float16
    if "64" in precision:
        return torch.float64
    return torch.float32


class FlopsMonitor(L.Callback):
    """Logs `train/flops_per_s` (achieved, per device) and `train/mfu` on the logger's
    steps, averaged over the last `window` steps; the progress lines show MFU too."""

    def __init__(self, window: int = 20, cache_dir: str | None = None) -> None:
        self.window = window
        self.cache_dir = cache_dir
        self._throughput: Throughput | None = None
        self._flops_per_batch = 0
        self._shape: tuple[int, int] | None = None
        self._elapsed = 0.0
        self._steps = 0
        self._started: float | None = None
        self._probed: str | None = None  # the cache key of a probed (not listed) peak

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = pl_module.device
        dtype = compute_dtype(str(trainer.precision))
        peak = peak_flops(device, dtype, self.cache_dir)
        self._probed = None if datasheet_flops(device, dtype) else peak_key(device, dtype)
        self._throughput = Throughput(available_flops=peak, window_size=self.window)
        if trainer.is_global_zero:
            log.info("MFU is against %.1f GFLOP/s per device (%s)", peak / 1e9, dtype)

    def _raise_peak(self, achieved: float) -> None:
        """A window faster than the probed peak: the probe ran in a slow spell (a busy
        machine), so the peak becomes the achieved rate, here and in the cache, and MFU
        stays a fraction of what this machine has shown it can do."""
        assert self._throughput is not None
        probed = float(self._throughput.available_flops or 0.0)
        self._throughput.available_flops = achieved
        where = "peak_flops.json"
        if self._probed is not None and self.cache_dir:
            write_entry(Path(self.cache_dir) / where, self._probed, achieved)
            where = str(Path(self.cache_dir) / where)
        log.warning(
            "training ran at %.1f GFLOP/s, above the %.1f GFLOP/s the matmul probe measured "
            "(the machine was busier then); MFU is now against %.1f GFLOP/s (kept in %s)",
            achieved / 1e9,
            probed / 1e9,
            achieved / 1e9,
            where,
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        shape = tuple(batch[0].shape)
        if shape != self._shape:  # counted once per batch shape (it stays the same)
            self._shape = shape
            self._flops_per_batch = step_flops(pl_module.config, *shape)
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._started is None or self._throughput is None:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        # Only time spent in steps: validation and checkpoints between them do not count.
        self._elapsed += time.perf_counter() - self._started
        self._steps += 1
        self._throughput.update(
            time=self._elapsed,
            batches=self._steps,
            samples=self._steps * self._shape[0],
            flops=self._flops_per_batch,
        )
        if not logged_step(trainer, trainer.global_step):
            return  # computed and logged on the logger's steps only
        metrics: dict[str, Any] = self._throughput.compute()
        if "device/mfu" in metrics:
            achieved = float(metrics["device/flops_per_sec"])
            if achieved > float(self._throughput.available_flops or 0.0):
                self._raise_peak(achieved)  # a utilisation above 100 % is impossible
            pl_module.log("train/flops_per_s", achieved)
            pl_module.log(
                "train/mfu", achieved / float(self._throughput.available_flops), prog_bar=True
            )
