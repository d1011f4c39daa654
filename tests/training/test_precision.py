import logging

import pytest
import torch

from mia.cli.train import train
from mia.training import precision


def rates(bf16: float, fp32: float = 100e9):
    """A stand-in for the matmul probe: these FLOP/s per dtype."""
    return lambda dtype, *a, **k: bf16 if dtype == torch.bfloat16 else fp32


def test_bf16_on_a_cpu_without_fast_bf16_trains_in_float32(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_matmul_rate", rates(bf16=1e9))
    with caplog.at_level(logging.WARNING, logger="mia.training.precision"):
        assert precision.run_precision("bf16-mixed", "cpu") == "32-true"
        assert precision.run_precision("bf16-true", "cpu") == "32-true"
    assert "trainer.precision=bf16-mixed" in caplog.text and "float32" in caplog.text


def test_bf16_stays_where_the_cpu_multiplies_it_fast(monkeypatch):
    monkeypatch.setattr(precision, "cpu_matmul_rate", rates(bf16=300e9))
    assert precision.run_precision("bf16-mixed", "cpu") == "bf16-mixed"
    monkeypatch.setattr(precision, "cpu_matmul_rate", rates(bf16=60e9))  # 0.6x: kept
    assert precision.run_precision("bf16-mixed", "cpu") == "bf16-mixed"


def test_other_precisions_and_gpus_are_not_probed(monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("probed")

    monkeypatch.setattr(precision, "cpu_matmul_rate", no_probe)
    assert precision.run_precision(32, "cpu") == "32"
    assert precision.run_precision("16-mixed", "cpu") == "16-mixed"
    assert precision.run_precision("bf16-mixed", "gpu") == "bf16-mixed"
    assert precision.run_precision("bf16-mixed", "cuda") == "bf16-mixed"


def test_auto_accelerator_counts_as_the_cpu_only_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not precision.trains_on_cpu("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert precision.trains_on_cpu("auto")


def test_the_probe_measures_a_positive_rate():
    assert precision.cpu_matmul_rate(torch.float32, size=32, repeats=1) > 0


@pytest.mark.parametrize("bf16_rate, expected", [(1e9, "32-true"), (300e9, "bf16-mixed")])
def test_a_run_trains_in_the_precision_this_cpu_gives(
    train_config, monkeypatch, bf16_rate, expected
):
    monkeypatch.setattr(precision, "cpu_matmul_rate", rates(bf16=bf16_rate))
    seen = {}

    def record(self, trainer, pl_module):
        seen["precision"] = trainer.precision

    monkeypatch.setattr("mia.training.throughput.FlopsMonitor.on_fit_start", record)
    cfg = train_config("trainer.precision=bf16-mixed", "trainer.max_steps=2", "test=false")
    train(cfg)
    assert seen["precision"] == expected
