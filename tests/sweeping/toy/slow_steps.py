"""A Lightning callback that sleeps after each training step, so that a test's signal
lands while a sweep's job is training (``+callbacks.slow={_target_:slow_steps.SlowSteps}``,
with this folder on PYTHONPATH)."""

import time

from lightning.pytorch.callbacks import Callback


class SlowSteps(Callback):
    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)
