"""Lightning callbacks of MIA's own."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichModelSummary
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from mia.training.module import LanguageModel
from mia.training.throughput import step_flops


class TextSamples(L.Callback):
    """Every `every_n_steps` steps and at the end of training, continue `prompt` and write
    the text to TensorBoard's Text tab (tag ``samples``)."""

    def __init__(
        self,
        every_n_steps: int = 500,
        prompt: str = "\n",
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = 200,
        seed: int = 0,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.seed = seed

    @rank_zero_only
    def _write(self, trainer: L.Trainer, module: LanguageModel) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None or module.hparams.tokenizer is None:
            return
        tokenizer = module.tokenizer
        ids = tokenizer.encode(self.prompt) or [0]
        idx = torch.tensor([ids], device=module.device)
        out = module.decoder.generate(
            idx, self.max_new_tokens, self.temperature, self.top_k, seed=self.seed
        )
        text = tokenizer.decode(out[0].tolist())
        # TensorBoard renders Markdown: keep line breaks by indenting as a code block.
        block = "\n".join("    " + line for line in text.splitlines())
        logger.experiment.add_text("samples", block, global_step=trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0:
            self._write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module)


class LastCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` for last.ckpt: after every validation, every `every_n_train_steps`
    steps, and when training ends.

    Lightning saves last.ckpt only at one cadence and, at the end, only if it never saved
    one; a run whose max_steps is not a multiple of the cadence would end with last.ckpt
    some steps short, and export, generate and resume want the last step."""

    def _fitting(self, trainer: L.Trainer) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        # Again after a step-cadence save of this step: the best checkpoint's record is new.
        if self.save_last and self._fitting(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary, with the FLOPs that MFU counts.

    Lightning counts FLOPs only over a forward pass of an ``example_input_array``, which a
    language model has no use for, and so prints ``Total FLOPs: 0``. Here the decoder's row
    and the total are the FLOPs of one training step (forward and backward) of a batch of
    the run's shape, ``data.batch_size`` x ``data.block_size``: what `FlopsMonitor` divides
    by the step's time."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._max_depth or not trainer.is_global_zero:
            return
        summary = self._summary(trainer, pl_module)
        data = summary._get_summary_data()
        flops = 0
        datamodule = trainer.datamodule
        config = getattr(pl_module, "config", None)
        if config is not None and hasattr(datamodule, "block_size"):
            flops = step_flops(config, datamodule.batch_size, datamodule.block_size)
            names = dict(data)["Name"]
            column = [get_human_readable_count(flops) if n == "decoder" else "-" for n in names]
            data = [(title, column if title == "FLOPs" else values) for title, values in data]
        self.summarize(
            data,
            summary.total_parameters,
            summary.trainable_parameters,
            summary.model_size,
            summary.total_training_modes,
            total_flops=flops,
            **self._summarize_kwargs,
        )
