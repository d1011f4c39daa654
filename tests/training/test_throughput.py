"""FLOPs per step, the peak they are compared with, and MFU in a run's logs."""

import json

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
