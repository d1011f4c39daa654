"""A resumed run keeps its learning-rate curve: the checkpoint stores the cosine horizon."""

import logging

import pytest
import torch

from mia.cli.train import train
from mia.training.optim import LrSchedule

# A cosine to a non-zero minimum, so the rate past the horizon shows which horizon held.
COMMON = (
    "test=false",
    "callbacks.text_samples.every_n_steps=0",
    "scheduler=cosine",
    "scheduler.min_lr_ratio=0.1",
)
BASE_LR, MIN_LR = 1e-2, 1e-3  # debug=fast: lr 1e-2


def schedule_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "learning-rate schedule" in r.getMessage()]


def logged_lrs(run_dir) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tag = next(t for t in acc.Tags()["scalars"] if t.startswith("lr-"))
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_resume_with_a_new_max_steps_keeps_the_stored_horizon(train_config, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mia.training.module")
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    train(train_config(*COMMON, "trainer.max_steps=20", output_dir=run))
    assert schedule_lines(caplog) == [
        "learning-rate schedule: cosine decay until step 20 (trainer.max_steps)"
    ]
    assert torch.load(last, weights_only=True)["lr_horizon"] == 20
    caplog.clear()

    train(train_config(*COMMON, "trainer.max_steps=30", "ckpt_path=last", output_dir=run))
    assert schedule_lines(caplog) == [
        "learning-rate schedule: cosine decay until step 20 (kept from the checkpoint; "
        "trainer.max_steps=30 does not move it, scheduler.decay_steps does)"
    ]
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 30 and ckpt["lr_horizon"] == 20
    # Past the horizon the rate stays at the minimum.
    past = {step: lr for step, lr in logged_lrs(run).items() if step > 20}
    assert past and all(lr == pytest.approx(MIN_LR) for lr in past.values())
    assert ckpt["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(MIN_LR)


def test_scheduler_decay_steps_overrides_the_stored_horizon(train_config, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mia.training.module")
    run = tmp_path / "run"
    train(train_config(*COMMON, "trainer.max_steps=20", output_dir=run))
    caplog.clear()
    train(
        train_config(
            *COMMON,
            "trainer.max_steps=30",
            "scheduler.decay_steps=40",
            "ckpt_path=last",
            output_dir=run,
        )
    )
    assert schedule_lines(caplog) == [
        "learning-rate schedule: cosine decay until step 40 (scheduler.decay_steps)"
    ]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["lr_horizon"] == 40
    expected = LrSchedule(BASE_LR, 5, 40, MIN_LR).factor(30) * BASE_LR
    assert ckpt["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(expected)
    assert expected > MIN_LR


def test_steps_past_the_horizon_stay_at_the_minimum():
    schedule = LrSchedule(base_lr=1.0, warmup_steps=10, decay_steps=100, min_lr=0.1)
    assert schedule.factor(100) == pytest.approx(0.1)
    assert schedule.factor(10_000) == pytest.approx(0.1)
    assert LrSchedule(0.0, 0, 10, 0.0).factor(5) == 0.0


def test_extending_a_run_whose_rate_reached_0_is_refused_and_changes_nothing(
    train_config, tmp_path
):
    """The main job's linear schedule decays to 0 at the stored horizon: more steps past it
    would leave the weights as they were, so the run is refused, naming the fix."""
    from mia.errors import UserError

    run = tmp_path / "run"
    common = ("test=false", "callbacks.text_samples.every_n_steps=0")
    train(train_config(*common, "trainer.max_steps=20", output_dir=run))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    extend = ("trainer.max_steps=30", "ckpt_path=last")
    with pytest.raises(
        UserError,
        match=r"^trainer.max_steps=30: the linear schedule reaches a "
        r"learning rate of 0 at step 20 .*give scheduler.decay_steps=30",
    ):
        train(train_config(*common, *extend, output_dir=run))
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # The suggested fix: a new horizon, and the added steps train.
    train(train_config(*common, *extend, "scheduler.decay_steps=30", output_dir=run))
    past = {step: lr for step, lr in logged_lrs(run).items() if step > 20}
    assert past and all(lr > 0 for lr in past.values())
