"""Lightning callbacks of MIA's own."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from mia.training.module import LanguageModel


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
