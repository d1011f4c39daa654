"""A Lightning callback that raises at one training step: a job failure that no check can
see before the job runs (``+callbacks.fail={_target_:fail_at_step.FailAtStep,step:3}``, with
this folder on PYTHONPATH)."""

from lightning.pytorch.callbacks import Callback


class FailAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, *args, **kwargs) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"a failure planted at step {self.step}")
