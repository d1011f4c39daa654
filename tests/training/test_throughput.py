"""FLOPs per step, the peak they are compared with, and MFU in a run's logs."""

import json

import pytest
import torch
from torch import nn

from mia.cli.train import train
from mia.model import Decoder, ModelConfig
from mia.planning.flops import step_flops
from mia.training import throughput
from mia.training.throughput import compute_dtype, peak_flops


def test_step_flops_count_every_matmul_forward_and_backward():
    """6 FLOPs per weight per token for the linear layers (forward 2, backward 4) plus
    attention's scores and weighted sums, 12 * B * H * T^2 * D per layer, whatever G is."""
    B, T = 3, 16
    for kv_heads in (4, 2, 1):
        config = ModelConfig.preset(
            "llama", vocab_size=50, dim=32, n_layers=2, n_heads=4, n_kv_heads=kv_heads,
            max_seq_len=T,
        )  # fmt: skip
        model = Decoder(config)
        weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        attention = 12 * config.n_layers * B * config.n_heads * T * T * config.head_dim
        assert step_flops(config, B, T) == 6 * weights * B * T + attention
    assert step_flops(config, 2 * B, T) == 2 * step_flops(config, B, T)


def test_the_cpu_peak_is_probed_once_and_cached(tmp_path, monkeypatch):
    calls = []

    def probe(device, dtype, seconds=0.5):
        calls.append(dtype)
        return 1.5e11

    monkeypatch.setattr(throughput, "probe_matmul_flops", probe)
    cpu = torch.device("cpu")
    assert peak_flops(cpu, torch.bfloat16, tmp_path) == 1.5e11
    assert peak_flops(cpu, torch.bfloat16, tmp_path) == 1.5e11  # from the cache
    assert peak_flops(cpu, torch.float32, tmp_path) == 1.5e11  # another dtype: probed
    assert calls == [torch.bfloat16, torch.float32]
    cached = json.loads((tmp_path / "peak_flops.json").read_text())
    assert len(cached) == 2 and all(k.startswith("cpu|") for k in cached)


def test_the_probe_measures_something():
    assert throughput.probe_matmul_flops(torch.device("cpu"), torch.float32, seconds=0.05) > 0


def test_precision_names_their_matmul_dtype():
    assert compute_dtype("bf16-mixed") is torch.bfloat16
    assert compute_dtype("16-mixed") is torch.float16
    assert compute_dtype("32") is torch.float32 and compute_dtype("32-true") is torch.float32


def test_a_run_logs_flops_and_mfu(train_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(train_config("callbacks.flops_monitor.window=5", "test=false"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    tags = events.Tags()["scalars"]
    assert "train/mfu" in tags and "train/flops_per_s" in tags
    mfu = [e.value for e in events.Scalars("train/mfu")]
    assert mfu and all(0 < v < 1 for v in mfu)


def test_mfu_never_passes_100_percent_when_the_probe_ran_slow(train_config, tmp_path, caplog):
    """A probe measured on a busy machine (here: 1 kFLOP/s) would put MFU far above 100 %;
    the first faster window becomes the peak, in the log and in the cache."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cache = tmp_path / "machine"
    key = throughput.peak_key(torch.device("cpu"), torch.float32)
    cache.mkdir()
    (cache / "peak_flops.json").write_text(json.dumps({key: 1e3}))
    overrides = ("callbacks.flops_monitor.window=5", "test=false", "trainer.max_steps=20")
    train(train_config(*overrides, f"callbacks.flops_monitor.cache_dir={cache}"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    mfu = [e.value for e in events.Scalars("train/mfu")]
    achieved = [e.value for e in events.Scalars("train/flops_per_s")]
    assert mfu and all(0 < v <= 1 for v in mfu) and mfu[0] == 1
    raised = json.loads((cache / "peak_flops.json").read_text())[key]
    assert raised == pytest.approx(max(achieved), rel=1e-5)
    assert any(
        "above the 0.0 GFLOP/s the matmul probe measured" in r.message for r in caplog.records
    )


def test_the_model_summary_shows_a_training_steps_flops(train_config, tmp_path, capsys):
    """Lightning counts FLOPs only over an example input and prints 0; the summary shows the
    FLOPs of one training step of the run's batch (debug=fast: 8 x 32), as MFU counts them."""
    from lightning.pytorch.utilities.model_summary import get_human_readable_count

    summary = "callbacks.model_summary={_target_:mia.training.callbacks.ModelSummary,max_depth:1}"
    train(train_config("trainer.max_steps=2", "test=false", summary))
    out = capsys.readouterr().out
    saved = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    config = ModelConfig.from_dict(saved["hyper_parameters"]["model"])
    expected = get_human_readable_count(step_flops(config, 8, 32))
    [line] = [line.strip() for line in out.splitlines() if line.startswith("Total FLOPs:")]
    assert line == f"Total FLOPs: {expected}" and expected != "0"
