"""`LanguageModel`: the LightningModule where the decoder meets data, optimizer and metrics.

Its hyperparameters are plain dicts (model config, optimizer, schedule, the tokenizer's
state, data settings), saved in every checkpoint: a checkpoint alone rebuilds the model
and its tokenizer for evaluation, generation and export, and loads with weights_only=True.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from mia.errors import UserError
from mia.model import Decoder, ModelConfig
from mia.training.optim import DECAYING_SCHEDULES, LrSchedule, build_optimizer

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
# The checkpoint key of the decay horizon the run used, so a resumed run keeps its curve.
HORIZON_KEY = "lr_horizon"


def logged_step(trainer: L.Trainer, steps_done: int) -> bool:
    """Whether the step that brings the run to `steps_done` optimizer steps reaches the
    logger (every trainer.log_every_n_steps steps). Metrics that only the logger shows are
    computed on these steps alone: each `self.log` costs time on every step it is called."""
    return steps_done % max(int(trainer.log_every_n_steps or 1), 1) == 0


# Autocast's enter/exit calls, which the attention's float32 region puts in the graph. Torch
# treats unknown calls as uncacheable and then redoes AOTAutograd's tracing on every run
# (about 3.5 s of the speedrun's start, and as much again for validation); their arguments
# are constants of the graph, so the cached graph is as exact as a fresh one.
_CACHEABLE_CALLS = (
    "torch.amp.autocast_mode._enter_autocast",
    "torch.amp.autocast_mode._exit_autocast",
)


def compile_cached(fn: Any) -> Any:
    """`torch.compile` of `fn` (the decoder, or its loss), with graphs that inductor's caches
    keep across runs."""
    import torch._inductor.config as inductor_config

    cacheable = inductor_config.unsafe_marked_cacheable_functions
    for name in _CACHEABLE_CALLS:
        cacheable.setdefault(name, torch.__version__)
    return torch.compile(fn)


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, T, V) against targets (B, T), in float32."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX
    )


def step_seed(seed: int, step: int, rank: int) -> int:
    """A seed for one training step on one rank (dropout), independent of RNG history."""
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63 - 1)


class LanguageModel(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        tokenizer: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        seed: int = 0,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # The tokenizer's state holds its model bytes: keep hyperparameters out of the logger.
        self.save_hyperparameters(logger=False)
        self.config = ModelConfig.from_dict(dict(model))
        self.decoder = Decoder(self.config)
        self._compiled: Any = None
        self._compiled_loss: Any = None
        self._eval_rows = 0  # the largest evaluation batch seen, for compiled evaluation
        self._eval_sums: dict[str, torch.Tensor] = {}
        self._step_started: float | None = None
        self.lr_schedule: LrSchedule | None = None
        self._stored_horizon: int | None = None
        self._resumed = False

    # --- forward --------------------------------------------------------------------------

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) through the compiled decoder when model.compile is set."""
        if not self.hparams.compile:
            return self.decoder(idx)
        if self._compiled is None:
            # Kept out of nn.Module's registry, so the state dict holds the weights once.
            self.__dict__["_compiled"] = compile_cached(self.decoder)
        return self._compiled(idx)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of inputs x (B, T) against targets y (B, T). Compiled, the
        decoder and its loss are one graph, so the softmax over the vocabulary and its
        backward fuse (about 7 % of the speedrun's step when they ran apart)."""
        if not self.hparams.compile:
            return next_token_loss(self.decoder(x), y)
        if self._compiled_loss is None:
            decoder = self.decoder

            def decoder_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return next_token_loss(decoder(x), y)

            self.__dict__["_compiled_loss"] = compile_cached(decoder_loss)
        return self._compiled_loss(x, y)

    @property
    def tokenizer(self):  # -> mia.tokenizer.Tokenizer
        from mia.tokenizer import tokenizer_from_state

        if self.hparams.tokenizer is None:
            raise ValueError("this model was saved without a tokenizer")
        return tokenizer_from_state(self.hparams.tokenizer)

    # --- training -------------------------------------------------------------------------

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout draws from the global generator: reseed it from (seed, step, rank), so a
        # resumed run uses the same masks as an uninterrupted one.
        if self.config.draws_dropout:
            torch.manual_seed(step_seed(self.hparams.seed, self.global_step, self.global_rank))
        self._step_started = time.perf_counter()

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch  # (B, T) each
        loss = self.training_loss(x, y)
        if self.logging_step():
            check_finite(loss, self.global_step + 1, self.hparams.optimizer)
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/ppl", torch.exp(loss.detach()))
        return loss

    def logging_step(self) -> bool:
        """Whether the training step in progress reaches the logger (see `logged_step`)."""
        return logged_step(self.trainer, self.global_step + 1)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # global_step has moved on by now: it counts the step that just ended.
        if self._step_started is not None and logged_step(self.trainer, self.global_step):
            seconds = time.perf_counter() - self._step_started
            tokens = batch[0].numel() * self.trainer.world_size
            self.log("train/tokens_per_s", tokens / max(seconds, 1e-9), prog_bar=True)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip by global norm (if trainer.gradient_clip_val is set) and log the norm."""
        max_norm = gradient_clip_val if gradient_clip_val else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.parameters(), max_norm)
        if self.logging_step():
            self.log("train/grad_norm", norm)

    def configure_optimizers(self) -> dict[str, Any]:
        opt_cfg, sched = self.hparams.optimizer, self.hparams.scheduler
        optimizer = build_optimizer(self.decoder, opt_cfg)
        base_lr = opt_cfg["lr"]
        self.lr_schedule = LrSchedule(
            base_lr=base_lr,
            warmup_steps=sched.get("warmup_steps", 0),
            decay_steps=self._horizon(),
            min_lr=base_lr * sched.get("min_lr_ratio", 0.1),
            kind=sched.get("name", "cosine"),
        )
        # A lambda, not the schedule object: LambdaLR would save the object's fields in the
        # checkpoint and restore them over an explicit scheduler.decay_steps.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: self.lr_schedule.factor(step)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _horizon(self) -> int | None:
        """The decay horizon, logged in one line: scheduler.decay_steps when given; else,
        on resume, the checkpoint's (so a new trainer.max_steps does not bend the curve);
        else trainer.max_steps. Steps past it stay at the minimum rate."""
        sched = self.hparams.scheduler
        max_steps = self.trainer.max_steps
        if sched.get("decay_steps"):
            horizon, why = int(sched["decay_steps"]), "scheduler.decay_steps"
        elif self._stored_horizon is not None:
            horizon = self._stored_horizon
            why = "kept from the checkpoint"
            if horizon != max_steps:
                why += f"; trainer.max_steps={max_steps} does not move it, scheduler.decay_steps"
                why += " does"
        else:
            horizon, why = max_steps, "trainer.max_steps"
            if self._resumed:
                why += "; the checkpoint records no horizon"
        horizon = horizon if horizon and horizon > 0 else None
        kind = sched.get("name", "cosine")
        if kind in DECAYING_SCHEDULES:  # a warning where steps go on at the minimum rate
            level = logging.WARNING if horizon and horizon < max_steps else logging.INFO
            log.log(
                level, "learning-rate schedule: %s decay until step %s (%s)", kind, horizon, why
            )
        return horizon

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.lr_schedule is not None:
            checkpoint[HORIZON_KEY] = self.lr_schedule.decay_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.trainer.state.fn != "fit":
            return  # testing a checkpoint: no schedule
        self._resumed = True
        self._stored_horizon = checkpoint.get(HORIZON_KEY)
        if self.lr_schedule is not None:  # strategies that restore after configure_optimizers
            self.lr_schedule.decay_steps = self._horizon()

    # --- evaluation: whole-split sums, so metrics cover every token -------------------------

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch  # (B, T) each
        if self.hparams.compile:
            # A split's last batch is usually short, and a new batch size would compile the
            # graph again (about 2-4 s): pad it with rows whose targets count for nothing.
            missing = self._eval_rows - x.shape[0]
            if missing > 0:
                x = F.pad(x, (0, 0, 0, missing))
                y = F.pad(y, (0, 0, 0, missing), value=IGNORE_INDEX)
            self._eval_rows = x.shape[0]
        logits = self(x).float()
        targets = y.flatten()
        nats = F.cross_entropy(
            logits.flatten(0, 1), targets, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        counted = targets != IGNORE_INDEX
        correct = (logits.argmax(-1).flatten() == targets) & counted
        sums = torch.stack([nats.double(), counted.sum().double(), correct.sum().double()])
        self._eval_sums["all"] = self._eval_sums.get("all", torch.zeros_like(sums)) + sums

    def _eval_epoch_end(self, split: str) -> None:
        sums = self._eval_sums.pop("all", None)
        if sums is None:
            sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        nats, count, correct = sums.tolist()
        if count == 0:
            return  # an empty split (e.g. no test fraction): no metrics
        loss = nats / count
        metrics = {
            f"{split}/loss": loss,
            f"{split}/ppl": math.exp(min(loss, 80.0)),
            f"{split}/acc": correct / count,
        }
        chars_per_token = ((self.hparams.data or {}).get("chars_per_token") or {}).get(split)
        if chars_per_token:
            metrics[f"{split}/nats_per_char"] = loss / chars_per_token
            metrics[f"{split}/bpc"] = loss / chars_per_token / math.log(2)
        shown = {f"{split}/loss", f"{split}/bpc"} if split == "val" else set()
        for key, value in metrics.items():
            self.log(key, value, prog_bar=key in shown, sync_dist=False)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_start(self) -> None:
        self._eval_sums.clear()

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_start(self) -> None:
        self._eval_sums.clear()

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end(getattr(self, "eval_split", "test"))


def check_finite(loss: torch.Tensor, step: int, optimizer: dict[str, Any]) -> None:
    """A loss that turned NaN or inf ends the run with its reason (checked at logging steps,
    so a GPU waits for the loss no more often than the logger already makes it)."""
    value = float(loss.detach())
    if not math.isfinite(value):
        lr = optimizer.get("lr")
        raise UserError(
            f"training diverged: train/loss is {value} at step {step} (optimizer.lr={lr}); "
            "lower the learning rate or clip gradients (trainer.gradient_clip_val)"
        )
