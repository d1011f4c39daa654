"""The commands as a user runs them: sweeps, Optuna, DDP, and one-line errors."""

import pytest
import torch

COMMON = ["debug=fast", "data=text", "tokenizer=char", "callbacks.progress_bar=null"]


def test_multirun_runs_each_job_and_prints_a_table(corpus, run_module, tmp_path):
    result = run_module(
        ["mia.cli.train", "-m", *COMMON, f"data.files=[{corpus}]", "model.dim=32,48"],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted((tmp_path / "outputs" / "multiruns" / "train").glob("*/[0-9]"))
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "metrics.json").is_file()
        assert list((job / "tensorboard").glob("events.*"))
    table = result.stdout[result.stdout.index("Sweep ") :]
    assert "model.dim=32" in table and "model.dim=48" in table and "val/bpc" in table
    # TensorBoard's HParams table: the swept setting, then the final metrics.
    hparams, metrics = hparams_columns(jobs[0] / "tensorboard")
    assert hparams == ["model/dim"]
    assert metrics[:2] == ["hparams/val/bpc", "hparams/val/loss"] and "hparams/test/bpc" in metrics
    assert "Run folder:" not in result.stdout  # a sweep ends with its table instead


def hparams_columns(log_dir) -> tuple[list[str], list[str]]:
    """The settings and metrics of the HParams experiment record a run wrote."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    return (
        [h.name for h in experiment.hparam_infos if h.differs],
        [m.name.tag for m in experiment.metric_infos],
    )


@pytest.mark.slow
def test_optuna_search_runs_trials(corpus, run_module, tmp_path):
    result = run_module(
        [
            "mia.cli.train",
            *COMMON,
            f"data.files=[{corpus}]",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "trainer.max_steps=10",
            "model.n_layers=2",
        ],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    sweep = next((tmp_path / "outputs" / "multiruns" / "train").iterdir())
    assert (sweep / "optimization_results.yaml").is_file()
    assert "best_value" in (sweep / "optimization_results.yaml").read_text()
    assert len(list(sweep.glob("*/metrics.json"))) == 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(corpus, run_module, tmp_path):
    result = run_module(
        [
            "mia.cli.train",
            *COMMON,
            f"data.files=[{corpus}]",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_steps=10",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 10
    assert (
        "world_size=2" in (result.stdout + result.stderr)
        or "2 processes" in (result.stdout + result.stderr)
        or (tmp_path / "run" / "train_ddp_process_1.log").exists()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mia.cli.train", "model.dimm=3"], "Could not override 'model.dimm'"),
        (
            ["mia.cli.train", "model.n_heads=5"],
            "error: invalid model config: dim (32) must be divisible",
        ),
        (
            ["mia.cli.train", "ckpt_path=missing.ckpt"],
            "error: ckpt_path=missing.ckpt: no such checkpoint",
        ),
        (
            ["mia.cli.eval", "ckpt_path=missing.ckpt"],
            "error: ckpt_path=missing.ckpt: no such checkpoint",
        ),
        (["mia.cli.generate", "ckpt_path=missing.ckpt"], "error: ckpt_path=missing.ckpt: no such"),
    ],
)
def test_user_errors_end_in_one_line(corpus, run_module, tmp_path, args, message):
    if args[0] == "mia.cli.train":
        args = [*args, *COMMON, f"data.files=[{corpus}]"]
    result = run_module(args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_code_in_a_checkpoint_is_never_run(run_module, code_running_checkpoint):
    evil, marker = code_running_checkpoint
    for command in ("mia.cli.generate", "mia.cli.eval"):
        result = run_module([command, f"ckpt_path={evil}"])
        assert result.returncode != 0
        assert "refused to load, it holds code" in result.stderr
        assert "Traceback" not in result.stderr
    assert not marker.exists()
