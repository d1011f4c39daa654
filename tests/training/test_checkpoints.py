"""last.ckpt holds the last step, and a step cadence saves it apart from validation."""

from typing import ClassVar

import torch
from lightning.pytorch import Callback

from mia.cli.train import train


class LastStepProbe(Callback):
    """Records, after each step, the step that last.ckpt holds (None before there is one)."""

    seen: ClassVar[list] = []

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        try:
            step = torch.load(self.path, weights_only=True)["global_step"]
        except FileNotFoundError:
            step = None
        LastStepProbe.seen.append((trainer.global_step, step))


def global_step(path):
    return torch.load(path, weights_only=True)["global_step"]


def test_last_ckpt_is_the_last_step_whatever_the_validation_cadence(train_config, tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    LastStepProbe.seen = []
    train(
        train_config(
            "trainer.max_steps=25",
            "trainer.val_check_interval=10",
            "+callbacks.probe._target_=test_checkpoints.LastStepProbe",
            f"+callbacks.probe.path={checkpoints / 'last.ckpt'}",
            "test=false",
        )
    )
    assert global_step(checkpoints / "last.ckpt") == 25
    # Also written after each validation (the step cadence, 100, is not reached).
    held = dict(LastStepProbe.seen)
    assert [held[s] for s in (10, 11, 20, 21, 25)] == [None, 10, 10, 20, 20]
    best = [p for p in checkpoints.glob("step*.ckpt")]
    assert len(best) == 1 and global_step(best[0]) in (10, 20)  # saved after a validation


def test_last_ckpt_has_its_own_step_cadence(train_config, tmp_path):
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    LastStepProbe.seen = []
    train(
        train_config(
            "trainer.max_steps=16",
            "trainer.val_check_interval=100",  # no validation at all before the end
            "callbacks.last_checkpoint.every_n_train_steps=5",
            "+callbacks.probe._target_=test_checkpoints.LastStepProbe",
            f"+callbacks.probe.path={last}",
            "test=false",
        )
    )
    # Lightning runs checkpoint callbacks last: the probe at step 6 sees the save of step 5.
    held = dict(LastStepProbe.seen)
    assert [held[s] for s in (5, 6, 10, 11, 15, 16)] == [None, 5, 5, 10, 10, 15]
    assert global_step(last) == 16
