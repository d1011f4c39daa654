"""The end-of-run message: run folder, checkpoints, and commands that work when pasted."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from mia.cli.train import train


def test_the_printed_commands_work_when_pasted(train_config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    overrides = ("trainer.max_steps=25", "trainer.limit_test_batches=null")
    metrics = train(train_config(*overrides, output_dir=tmp_path / "run"))
    message = capsys.readouterr().out
    lines = message[message.index("Run folder:") :].splitlines()
    assert lines[0].split() == ["Run", "folder:", "run"]
    assert "Best checkpoint: run/checkpoints/step000020-val_loss" in message
    assert "Last checkpoint: run/checkpoints/last.ckpt (step 25)" in message
    commands = [line.strip() for line in lines if line.startswith("  ")]
    assert commands[0] == "tensorboard --logdir run"
    assert [c.split()[0] for c in commands[1:]] == ["mia-generate", "mia-eval", "mia-export"]

    bin_dir = Path(sys.executable).parent  # where the console scripts are installed
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MIA_CACHE_DIR", None)
    outputs = {}
    for command in commands[1:]:
        result = subprocess.run(
            shlex.split(command) + (["max_new_tokens=20"] if "generate" in command else []),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
        outputs[command.split()[0]] = result.stdout
    # mia-eval on the best checkpoint reproduces the run's test loss.
    assert f"test/loss            {metrics['test/loss']:.4f}" in outputs["mia-eval"]
    assert (tmp_path / "run" / "hf" / "model.safetensors").is_file()
    assert (
        torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)["global_step"] == 25
    )


def test_no_export_command_for_a_model_the_llama_format_cannot_hold(train_config, capsys):
    train(train_config("trainer.max_steps=10", "test=false", "model.qk_norm=true"))
    message = capsys.readouterr().out
    assert not [line for line in message.splitlines() if line.startswith("  mia-export")]
    assert "(no mia-export, the Llama format cannot hold model.qk_norm=true" in message


def test_mia_eval_is_suggested_only_for_a_split_that_was_evaluated(tmp_path):
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint
    from omegaconf import OmegaConf

    from mia.model import ModelConfig
    from mia.training.next_steps import next_steps

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").touch()
    callback = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    model = ModelConfig(vocab_size=40, dim=32, n_layers=1, n_heads=4)
    trainer = SimpleNamespace(
        checkpoint_callbacks=[callback],
        global_step=5,
        lightning_module=SimpleNamespace(config=model),
        loggers=[],
        precision="32-true",
    )
    cfg = OmegaConf.create(
        {"paths": {"output_dir": str(tmp_path), "cache_dir": str(tmp_path)}, "trainer": {}}
    )
    evals = {
        split: [
            line for line in next_steps(cfg, trainer, metrics).splitlines() if "mia-eval" in line
        ]
        for split, metrics in {
            "test": {"val/loss": 1.0, "test/loss": 1.0},
            "val": {"val/loss": 1.0},
            "none": {},  # empty val and test splits: no mia-eval that would fail
        }.items()
    }
    assert len(evals["test"]) == 1 and "split=" not in evals["test"][0]
    assert len(evals["val"]) == 1 and evals["val"][0].split()[2:3] == ["split=val"]
    assert evals["none"] == []


def test_the_suggested_mia_eval_reproduces_the_printed_test_metrics(
    train_config, tmp_path, monkeypatch, capsys
):
    """debug=fast tests 5 batches (trainer.limit_test_batches=5): the suggested mia-eval
    carries that limit, so it walks the same batches and prints the same figures."""
    from mia.cli.eval import evaluate
    from mia.conf import compose

    monkeypatch.chdir(tmp_path)
    metrics = train(train_config("trainer.max_steps=20", output_dir=tmp_path / "run"))
    message = capsys.readouterr().out
    [line] = [line for line in message.splitlines() if line.startswith("  mia-eval")]
    args = shlex.split(line)[1:]
    assert "trainer.limit_test_batches=5" in args
    cfg = train_config().paths.cache_dir
    evaluated = evaluate(
        compose("eval", [*args, f"paths.cache_dir={cfg}", f"paths.output_dir={tmp_path / 'e'}"])
    )
    for key in ("test/loss", "test/acc", "test/bpc"):
        assert round(evaluated[key], 4) == round(metrics[key], 4), key


def test_the_next_steps_name_the_loggers_own_viewer(train_config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train(
        train_config(
            "trainer.max_steps=10", "test=false", "logger=csv", output_dir=tmp_path / "run"
        )
    )
    message = capsys.readouterr().out
    lines = message[message.index("Next:") :].splitlines()
    commands = [line.strip() for line in lines if line.startswith("  ")]
    assert commands[0] == "column -s, -t < run/csv/metrics.csv"
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()
    assert not any("tensorboard" in c for c in commands)
