"""Bad settings of every command: one line naming the setting and its range, exit status 2,
no traceback, and nothing prepared or written (the rules are in mia/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mia.cli.eval import evaluate
from mia.cli.export import export
from mia.cli.generate import generate
from mia.cli.prepare import prepare
from mia.cli.train import compile_decoder, train
from mia.conf import compose
from mia.errors import reports_user_errors
from mia.settings import problems

COMMANDS = {
    "train": train,
    "prepare": prepare,
    "eval": evaluate,
    "generate": generate,
    "export": export,
}
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")

# (command, overrides, the start of the one error line)
CASES = [
    ("train", ["optimizer.lr=-0.001"], "optimizer.lr=-0.001: must be a number > 0"),
    ("train", ["optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5]: must be two numbers"),
    ("train", ["optimizer.eps=0"], "optimizer.eps=0: must be a number > 0"),
    (
        "train",
        ["optimizer.weight_decay=-0.1"],
        "optimizer.weight_decay=-0.1: must be a number >= 0",
    ),
    (
        "train",
        ["optimizer.embedding_weight_decay=-1"],
        "optimizer.embedding_weight_decay=-1: must be a number >= 0 or null",
    ),
    ("train", ["optimizer.name=sgd"], "optimizer.name=sgd: must be one of adamw, adam, muon"),
    (
        "train",
        ["optimizer=muon", "optimizer.muon_lr=0"],
        "optimizer.muon_lr=0: must be a number > 0",
    ),
    (
        "train",
        ["optimizer=muon", "optimizer.muon_momentum=1"],
        "optimizer.muon_momentum=1: must be a number in [0, 1)",
    ),
    (
        "train",
        ["optimizer=muon", "optimizer.muon_ns_steps=0"],
        "optimizer.muon_ns_steps=0: must be an integer >= 1",
    ),
    ("train", ["callbacks.flops_monitor.window=1"], "callbacks.flops_monitor.window=1: must be"),
    ("train", ["model.logit_softcap=-3"], "invalid model config: logit_softcap"),
    ("train", ["scheduler.warmup_steps=-1"], "scheduler.warmup_steps=-1: must be an integer >= 0"),
    ("train", ["scheduler.decay_steps=0"], "scheduler.decay_steps=0: must be an integer >= 1 or"),
    ("train", ["scheduler.min_lr_ratio=2"], "scheduler.min_lr_ratio=2: must be a number in [0, 1]"),
    (
        "train",
        ["scheduler.warmup_steps=20", "scheduler.decay_steps=10"],
        "scheduler.decay_steps=10: must be greater than scheduler.warmup_steps=20",
    ),
    (
        "train",  # the main job's linear schedule ends at 0: 10 steps would not train
        ["scheduler.decay_steps=10", "trainer.max_steps=20"],
        "trainer.max_steps=20: the linear schedule reaches a learning rate of 0 at step 10 "
        "(scheduler.decay_steps=10), so steps 10-20 would not train; give "
        "scheduler.decay_steps=20",
    ),
    (
        "train",  # far past any machine's memory, refused before any data is prepared
        ["data.batch_size=100000", "data.block_size=100000"],
        "data.batch_size=100000 x data.block_size=100000: one training step needs at least ",
    ),
    ("train", ["trainer.max_steps=0"], "trainer.max_steps=0: must be an integer >= 1"),
    ("train", ["trainer.max_steps=ten"], "trainer.max_steps=ten: must be an integer >= 1"),
    ("train", ["trainer.val_check_interval=0"], "trainer.val_check_interval=0: must be an"),
    (
        "train",
        ["callbacks.last_checkpoint.every_n_train_steps=-5"],
        "callbacks.last_checkpoint.every_n_train_steps=-5: must be an integer >= 0 or null",
    ),
    ("train", ["trainer.precision=bf17"], "trainer.precision=bf17: must be one of"),
    ("train", ["trainer.accelerator=abacus"], "trainer.accelerator=abacus: must be one of"),
    pytest.param(
        "train",
        ["trainer=gpu"],
        "trainer.accelerator=gpu: no CUDA GPU is visible on this machine; use trainer=cpu",
        marks=NO_GPU,
    ),
    ("train", ["data.block_size=0"], "data.block_size=0: must be an integer >= 1"),
    ("train", ["data.batch_size=-4"], "data.batch_size=-4: must be an integer >= 1"),
    ("train", ["data.num_workers=-1"], "data.num_workers=-1: must be an integer >= 0"),
    ("train", ["data.sampler=epochs"], "data.sampler=epochs: must be one of random, shuffled"),
    ("train", ["data.splits.train=1.5"], "data.splits.train=1.5 must be a number in [0, 1]"),
    ("train", ["model.n_heads=5"], "invalid model config: dim (32) must be divisible"),
    ("train", ["model.head_size=5"], "invalid model config: dim (32) must be divisible"),
    (
        "train",
        ["model.parametrization=mup", "model.mup_base_dim=12"],
        "invalid model config: mup_base_dim=12 gives no valid base model",
    ),
    ("train", ["model.compile=yes"], "model.compile=yes: must be true, false or auto"),
    ("train", ["model.attention_dropout=1"], "invalid model config: attention_dropout must be"),
    ("prepare", ["data.batch_size=0"], "data.batch_size=0: must be an integer >= 1"),
    ("prepare", ["data.prepare_workers=0"], "data.prepare_workers=0: must be an integer >= 1"),
    ("prepare", ["data.splits.val=-0.1"], "data.splits.val=-0.1 must be a number in [0, 1]"),
    ("eval", ["split=train"], "split=train: must be one of test, val"),
    ("eval", ["data.batch_size=0"], "data.batch_size=0: must be an integer >= 1"),
    ("eval", ["trainer.precision=8"], "trainer.precision=8: must be one of"),
    ("generate", ["top_p=1.5"], "top_p=1.5: must be a number in (0, 1] or null"),
    ("generate", ["top_p=0"], "top_p=0: must be a number in (0, 1] or null"),
    ("generate", ["max_new_tokens=-5"], "max_new_tokens=-5: must be an integer >= 0"),
    ("generate", ["temperature=-0.5"], "temperature=-0.5: must be a number >= 0"),
    ("generate", ["top_k=0"], "top_k=0: must be an integer >= 1 or null"),
    ("generate", ["num_samples=0"], "num_samples=0: must be an integer >= 1"),
    pytest.param("generate", ["device=cuda"], "device=cuda: no CUDA GPU is visible", marks=NO_GPU),
    ("export", ["dtype=float8"], "dtype=float8: must be one of float32, bfloat16, float16"),
    ("export", ["out_dir=''"], "out_dir='': must be a folder path"),
    ("export", ["generation.top_k=0"], "generation.top_k=0: must be an integer >= 1 or null"),
]


def base_overrides(command: str, tmp_path: Path, corpus: Path) -> list[str]:
    """Settings that would work, with every output inside tmp_path."""
    common = [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'out'}"]
    data = ["data=text", f"data.files=[{corpus}]", "tokenizer=char"]
    checkpoint = f"ckpt_path={tmp_path / 'missing.ckpt'}"  # never reached: settings first
    return {
        "train": [*common, *data, "debug=fast"],
        "prepare": [*common, *data],
        "eval": [*common, checkpoint],
        "generate": [checkpoint],
        "export": [checkpoint, f"out_dir={tmp_path / 'export'}"],
    }[command]


@pytest.fixture
def corpus(tmp_path: Path, play_text: str) -> Path:
    path = tmp_path / "plays.txt"
    path.write_text(play_text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("command", "overrides", "message"), CASES)
def test_a_bad_setting_is_one_line_and_exit_2(
    command, overrides, message, tmp_path, corpus, capsys
):
    cfg = compose(command, [*base_overrides(command, tmp_path, corpus), *overrides])
    with pytest.raises(SystemExit) as exit_info:
        reports_user_errors(COMMANDS[command])(cfg)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"error: {message}"), lines
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    assert not (tmp_path / "out").exists() and not (tmp_path / "export").exists()


def test_compiling_without_a_cxx_compiler_is_one_line(tmp_path, corpus, monkeypatch):
    overrides = [*base_overrides("train", tmp_path, corpus), "model.compile=true"]
    cfg = compose("train", overrides)
    assert problems(cfg, "train") == []  # this machine has one
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [problem] = problems(cfg, "train")
    assert problem.startswith("model.compile=true: torch.compile needs a C++ compiler")
    monkeypatch.setenv("CXX", "/opt/bin/g++")
    assert problems(cfg, "train") == []


def test_compile_auto_compiles_only_where_a_cxx_compiler_is(tmp_path, corpus, monkeypatch, caplog):
    cfg = compose("train", [*base_overrides("train", tmp_path, corpus), "model.compile=auto"])
    assert compile_decoder(cfg) is True  # this machine has one
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert problems(cfg, "train") == []  # auto is never an error
    assert compile_decoder(cfg) is False
    assert "model.compile=auto: no C++ compiler on the PATH" in caplog.text
    for choice in (True, False):
        cfg.model.compile = choice
        assert compile_decoder(cfg) is choice


def test_every_problem_gets_its_own_line(tmp_path, corpus):
    overrides = ["optimizer.lr=-1", "trainer.max_steps=0", "data.batch_size=0"]
    cfg = compose("train", [*base_overrides("train", tmp_path, corpus), *overrides])
    assert [p.split(":")[0] for p in problems(cfg, "train")] == [
        "data.batch_size=0",
        "optimizer.lr=-1",
        "trainer.max_steps=0",
    ]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_shipped_configs_pass(command, tmp_path, corpus):
    for extra in ([], ["trainer=cpu"], ["trainer=ddp"]) if command == "train" else ([],):
        cfg = compose(command, [*base_overrides(command, tmp_path, corpus), *extra])
        assert problems(cfg, command) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mia.cli.train", "optimizer.lr=-1"], "error: optimizer.lr=-1: must be a number > 0"),
        (["mia.cli.prepare", "data.batch_size=0"], "error: data.batch_size=0: must be an"),
        (["mia.cli.eval", "ckpt_path=x.ckpt", "split=train"], "error: split=train: must be"),
        (["mia.cli.generate", "ckpt_path=x.ckpt", "top_p=1.5"], "error: top_p=1.5: must be"),
        (["mia.cli.generate", "ckpt_path=x.ckpt", "max_new_tokens=-1"], "error: max_new_tokens"),
        (["mia.cli.export", "ckpt_path=x.ckpt", "out_dir=o", "dtype=int4"], "error: dtype=int4"),
    ],
)
def test_the_commands_exit_2_with_one_line(args, message, run_module, tmp_path, corpus):
    if args[0] in ("mia.cli.train", "mia.cli.prepare"):
        args = [*args, "data=text", f"data.files=[{corpus}]", "tokenizer=char"]
    result = run_module(args, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message) and "Traceback" not in result.stderr
    cache = tmp_path / "cache"
    assert not any(cache.iterdir())  # nothing prepared
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()} - {"plays.txt"}
    # The run folder of mia-train and mia-prepare holds only Hydra's record of the command.
    assert written <= {"config.yaml", "hydra.yaml", "overrides.yaml", "train.log", "prepare.log"}
    assert not (tmp_path / "o").exists()
