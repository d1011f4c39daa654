"""Progress for a terminal (Lightning's rich bar) or for a log file (plain lines).

A rich bar draws only in a terminal: with stdout redirected (``mia-train ... > log``, a
SLURM job) it would leave the log empty until the end. `LogLines` writes one line every
`every_n_steps` steps or `every_n_seconds` seconds, whichever comes first, and one line per
validation, through the logging system (so Hydra also copies them into the run's log).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger(__name__)


def progress_bar(
    every_n_steps: int = 50, every_n_seconds: float = 30.0, **rich: Any
) -> ProgressBar:
    """The rich bar when stdout is a terminal, else `LogLines` (chosen in conf/callbacks)."""
    if sys.stdout.isatty():
        return RichProgressBar(**rich)
    return LogLines(every_n_steps, every_n_seconds)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class LogLines(ProgressBar):
    """Plain progress lines: step/max_steps, train loss, tokens/s, elapsed and ETA."""

    def __init__(self, every_n_steps: int = 50, every_n_seconds: float = 30.0) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.every_n_seconds = every_n_seconds
        self._enabled = True
        self._started = 0.0
        self._first_step = 0
        self._window_started = 0.0
        self._window_tokens = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _show(self, trainer: L.Trainer) -> bool:
        return self._enabled and trainer.is_global_zero

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._window_started = time.monotonic()
        self._first_step = trainer.global_step
        self._window_tokens = 0
        if self._show(trainer):
            log.info("training: step %d to %d", trainer.global_step, trainer.max_steps)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._window_tokens += batch[0].numel() * trainer.world_size
        step, now = trainer.global_step, time.monotonic()
        due = self.every_n_steps > 0 and step % self.every_n_steps == 0
        due = due or now - self._window_started >= self.every_n_seconds
        if not (due or step == trainer.max_steps) or not self._show(trainer):
            return
        loss = trainer.callback_metrics.get("train/loss")
        elapsed = now - self._started
        done = max(step - self._first_step, 1)
        eta = (trainer.max_steps - step) * elapsed / done
        tokens_per_s = self._window_tokens / max(now - self._window_started, 1e-9)
        mfu = trainer.callback_metrics.get("train/mfu")  # with FlopsMonitor
        log.info(
            "step %d/%d | loss %s | %s tokens/s%s | elapsed %s | ETA %s",
            step,
            trainer.max_steps,
            "-" if loss is None else f"{float(loss):.4f}",
            f"{tokens_per_s:,.0f}",
            "" if mfu is None else f" | MFU {float(mfu):.1%}",
            _clock(elapsed),
            _clock(eta),
        )
        self._window_started, self._window_tokens = now, 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._show(trainer):
            return
        log.info("validation at step %d: %s", trainer.global_step, _metrics(trainer, "val/"))
        # Time spent validating is not training throughput: start a new window.
        self._window_started, self._window_tokens = time.monotonic(), 0

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._show(trainer) and any(k.startswith("test/") for k in trainer.callback_metrics):
            log.info("test: %s", _metrics(trainer, "test/"))


def _metrics(trainer: L.Trainer, prefix: str) -> str:
    values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
    return " | ".join(f"{k[len(prefix) :]} {v:.4f}" for k, v in values.items()) or "-"
