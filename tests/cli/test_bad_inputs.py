"""The second table of bad inputs: damaged prepared caches, refused runs that must leave their
folder alone, folders the user names, keys nothing reads, messages whose suggested commands
must work. Each case runs the real command: one line on stderr, its exit status, and every
file of the user's folders byte for byte as it was."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch import Callback

from mia.cli.train import train
from mia.conf import compose

DATA = ["data=text", "data.files=[plays.txt]", "tokenizer=char"]


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under `folders` (and whether each folder exists), for byte comparison."""
    files: dict[str, bytes] = {}
    for folder in folders:
        files[f"{folder}?"] = b"yes" if folder.exists() else b"no"
        if folder.is_file():
            files[str(folder)] = folder.read_bytes()
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            files[str(path)] = path.read_bytes() if path.is_file() else b"<folder>"
    return files


@dataclass
class World:
    """A working directory with a corpus, its prepared cache and a finished run."""

    root: Path
    cache: Path
    prepared: Path
    run: Path

    def damage(self, how: Callable[[Path], None]) -> None:
        how(self.prepared)


def _truncate(name: str, size: int) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        with (folder / name).open("r+b") as handle:
            handle.truncate(size)

    return damage


def _token_past_vocab(folder: Path) -> None:
    tokens = np.memmap(folder / "val.bin", dtype=np.uint16, mode="r+")
    tokens[3] = 999
    tokens.flush()


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


@pytest.fixture(scope="module")
def world(tmp_path_factory, play_text) -> World:
    root = tmp_path_factory.mktemp("world")
    (root / "plays.txt").write_text(play_text, encoding="utf-8")
    cache, run = root / "cache", root / "run"
    overrides = [
        *DATA,
        f"data.files=[{root / 'plays.txt'}]",
        "debug=fast",
        "trainer.max_steps=10",
        "model.compile=false",
        "callbacks.progress_bar=null",
        f"paths.cache_dir={cache}",
        f"paths.output_dir={run}",
    ]
    train(compose("train", overrides))
    (prepared,) = (cache / "prepared").iterdir()
    shutil.copytree(prepared, root / "pristine")
    return World(root, cache, prepared, run)


@pytest.fixture
def fresh(world: World) -> World:
    """The world with its prepared folder as it was built."""
    shutil.rmtree(world.prepared, ignore_errors=True)
    shutil.copytree(world.root / "pristine", world.prepared)
    return world


TRAIN = ["mia.cli.train", *DATA, "debug=fast", "model.compile=false"]
GRID = ["mia.cli.train", "-m", *TRAIN[1:]]
ANOTHER_MODEL = ["model.n_layers=3", "resume=true"]

# (id, damage to the prepared folder or None, args (with {run}), start of the line, status,
#  folders that must be unchanged (names of World fields or paths below the root))
CASES = [
    (
        "train.bin cut short",
        _truncate("train.bin", 1000),
        ["mia.cli.prepare", *DATA],
        "error: prepared data {prepared}/train.bin has 1000 bytes, but meta.json counts",
        2,
        ["prepared"],
    ),
    (
        "train.bin of odd length",
        _truncate("train.bin", 1001),
        [*TRAIN],
        "error: prepared data {prepared}/train.bin has 1001 bytes",
        2,
        ["prepared"],
    ),
    (
        "token id past the vocabulary",
        _token_past_vocab,
        [*TRAIN],
        "error: prepared data {prepared}/val.bin holds token id 999, past the vocabulary",
        2,
        ["prepared"],
    ),
    (
        "meta.json cut short",
        _truncate("meta.json", 20),
        [*TRAIN],
        "error: prepared data {prepared}/meta.json cannot be read",
        2,
        ["prepared"],
    ),
    (
        "tokenizer.json missing",
        _remove("tokenizer.json"),
        [*TRAIN],
        "error: prepared data {prepared}/tokenizer.json is missing",
        2,
        ["prepared"],
    ),
    (
        "ckpt_path=last of another model",
        None,
        [*TRAIN, "hydra.run.dir={run}", "model.dim=64", "ckpt_path=last"],
        "error: ckpt_path={run}/checkpoints/last.ckpt holds another model (model.dim",
        2,
        ["run", "prepared"],
    ),
    (
        "resume=true of another model",
        None,
        [*TRAIN, "hydra.run.dir={run}", "model.n_layers=3", "resume=true"],
        "error: resume=true: {run} ran other settings (model.n_layers 2 -> 3",
        2,
        ["run"],
    ),
    (
        "resume=true of another model, in a grid",
        None,
        [*GRID, "hydra.sweep.dir={run}/..", "hydra.sweep.subdir=run", *ANOTHER_MODEL],
        "error: resume=true: {run}/../run ran other settings (model.n_layers 2 -> 3",
        2,
        ["run"],
    ),
    (
        "a bad value in one job of a grid",
        None,
        [*GRID, "trainer.max_steps=abc,20"],
        "error: job 0 of 2: trainer.max_steps=abc: must be an integer",
        2,
        [],
    ),
    (
        "a misspelt search key given as hydra.sweeper.params",
        None,
        [*TRAIN, "hparams_search=optuna", "hydra.sweeper.params.optimizer.lrr=interval(1e-3,1e-2)"],
        "error: hydra.sweeper.params.optimizer.lrr: the config has no such setting; "
        "did you mean optimizer.lr?",
        2,
        [],
    ),
    (
        "a misspelt search key given as +hydra.sweeper.params",
        None,
        [
            *TRAIN,
            "hparams_search=optuna",
            "+hydra.sweeper.params.optimizer.lrr=interval(1e-3,1e-2)",
        ],
        "error: hydra.sweeper.params.optimizer.lrr: the config has no such setting; "
        "did you mean optimizer.lr?",
        2,
        [],
    ),
    (
        "a bad setting into an existing run folder",
        None,
        [*TRAIN, "hydra.run.dir={run}", "optimizer.lr=-1"],
        "error: optimizer.lr=-1: must be a number > 0",
        2,
        ["run"],
    ),
    (
        "paths.cache_dir is a file",
        None,
        [*TRAIN, "paths.cache_dir=plays.txt"],
        "error: paths.cache_dir=plays.txt: is a file, not a folder",
        2,
        ["plays.txt"],
    ),
    (
        "paths.cache_dir cannot be created",
        None,
        ["mia.cli.prepare", *DATA, "paths.cache_dir=plays.txt/cache"],
        "error: paths.cache_dir=plays.txt/cache: cannot be created:",
        2,
        ["plays.txt"],
    ),
    (
        "paths.cache_dir cannot be created, in mia-eval",
        None,
        ["mia.cli.eval", "ckpt_path={run}/checkpoints/last.ckpt", "paths.cache_dir=plays.txt/c"],
        "error: paths.cache_dir=plays.txt/c: cannot be created:",
        2,
        ["plays.txt", "run"],
    ),
    (
        "mia-eval with more positions than the model has",
        None,
        ["mia.cli.eval", "ckpt_path={run}/checkpoints/last.ckpt", "data.block_size=100000"],
        "error: data.block_size=100000: the checkpoint's model takes at most 32 positions",
        2,
        ["run", "prepared"],
    ),
    (
        "+hydra.sweeper.n_jobs in a single run",
        None,
        [*TRAIN, "+hydra.sweeper.n_jobs=2"],
        "error: +hydra.sweeper.n_jobs=2: a single run has no sweeper, so nothing reads "
        "hydra.sweeper.n_jobs; sweep with -m",
        2,
        ["prepared"],
    ),
    (
        "+hydra.sweeper.n_jobs with the basic sweeper and launcher",
        None,
        ["mia.cli.train", "-m", *TRAIN[1:], "+hydra.sweeper.n_jobs=2"],
        "error: +hydra.sweeper.n_jobs=2: no part of mia-train reads hydra.sweeper.n_jobs; "
        "check its spelling (hydra.sweeper keys: max_batch_size, params)",
        2,
        ["prepared"],
    ),
    (
        "mia-generate on a folder without checkpoints",
        None,
        ["mia.cli.generate", "ckpt_path={run}/tensorboard"],
        "error: ckpt_path={run}/tensorboard is a folder without checkpoints/last.ckpt; it holds no "
        ".ckpt file",
        2,
        ["run"],
    ),
    (
        "hydra.run.dir is a file",
        None,
        ["mia.cli.prepare", *DATA, "hydra.run.dir=plays.txt"],
        "error: hydra.run.dir=plays.txt is a file, not a folder",
        2,
        ["plays.txt"],
    ),
    (
        "a folder in data.files",
        None,
        ["mia.cli.prepare", "data=text", "data.files=[run]", "tokenizer=char"],
        "error: data.files entry 'run' is a folder; name its files, e.g. 'data.files=[run/*.txt]'",
        2,
        ["run"],
    ),
    (
        "FSDP on CPU",
        None,
        [*TRAIN, "trainer=fsdp", "trainer.accelerator=cpu"],
        "error: trainer.strategy=fsdp: FSDP runs on GPUs only",
        2,
        [],
    ),
    (
        "a key nothing reads",
        None,
        [*TRAIN, "+model.dimm=3"],
        "error: +model.dimm=3: no part of mia-train reads model.dimm; check its spelling",
        2,
        [],
    ),
    (
        "a key nothing reads, in mia-eval",
        None,
        ["mia.cli.eval", "ckpt_path={run}/checkpoints/last.ckpt", "+splt=val"],
        "error: +splt=val: no part of mia-eval reads splt",
        2,
        ["run"],
    ),
    (
        "an unquoted accent",
        None,
        ["mia.cli.generate", "ckpt_path={run}/checkpoints/last.ckpt", "prompt=Café"],
        "error: prompt=Café: LexerNoViableAltException",
        2,
        ["run"],
    ),
    (
        "a prompt character outside the char vocabulary",
        None,
        ["mia.cli.generate", "ckpt_path={run}/checkpoints/last.ckpt", 'prompt="Noë"'],
        "error: prompt='Noë': character 'ë' is not in the char tokenizer's vocabulary",
        2,
        ["run"],
    ),
]


@pytest.mark.parametrize(
    ("damage", "args", "line", "status", "unchanged"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_bad_input_is_one_line_and_changes_nothing(
    fresh, damage, args, line, status, unchanged, run_module, tmp_path
):
    if damage is not None:
        fresh.damage(damage)
    shutil.copy(fresh.root / "plays.txt", tmp_path / "plays.txt")
    (tmp_path / "run").symlink_to(fresh.run)
    names = {"run": fresh.run, "prepared": fresh.prepared, "plays.txt": tmp_path / "plays.txt"}
    watched = [names[n] for n in unchanged] + [tmp_path / "outputs"]
    before = snapshot(*watched)
    args = [a.format(run=fresh.run) for a in args]
    result = run_module(args, timeout=300)
    assert result.returncode == status, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    expected = line.format(prepared=fresh.prepared, run=fresh.run)
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # the checks come first: nothing is said before the refusal
    assert snapshot(*watched) == before  # no run folder, no record rewritten


@pytest.fixture
def command_cache_dir(world: World) -> Path:
    return world.cache


# --- the commands that messages suggest work --------------------------------------------------


@pytest.mark.parametrize("change", ["data.batch_size=64", "+data.batch_size=64"])
def test_eval_takes_its_configs_own_example(world, run_module, change):
    """conf/eval.yaml's example, also spelt with the + that Hydra accepts for a key whose
    value is null; and no Lightning advertisement on either stream."""
    ckpt = f"ckpt_path={world.run}/checkpoints/last.ckpt"
    result = run_module(["mia.cli.eval", ckpt, change], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test/loss" in result.stdout
    assert "litlogger" not in result.stdout + result.stderr


def test_a_run_folder_stands_for_its_last_checkpoint(world, run_module):
    result = run_module(["mia.cli.generate", f"ckpt_path={world.run}", "max_new_tokens=3"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"ckpt_path={world.run} is a folder: using {world.run}/checkpoints/last.ckpt"
    ]
    assert result.stdout.strip()


def test_mia_eval_on_an_empty_val_split_is_one_line(tmp_path, play_text, run_module):
    """A run trained without a val split: mia-eval split=val names the split that has text,
    and prints nothing before the error."""
    (tmp_path / "plays.txt").write_text(play_text, encoding="utf-8")
    cache, run = tmp_path / "cache", tmp_path / "novalrun"
    splits = "data.splits={train:0.9,val:0.0,test:0.1}"
    overrides = [*DATA, f"data.files=[{tmp_path / 'plays.txt'}]", "debug=fast", splits]
    overrides += ["trainer.max_steps=2", "test=false", "model.compile=false"]
    overrides += ["callbacks.progress_bar=null", f"paths.cache_dir={cache}"]
    train(compose("train", [*overrides, f"paths.output_dir={run}"]))
    before = snapshot(cache, run)
    ckpt = f"ckpt_path={run}/checkpoints/last.ckpt"
    result = run_module(["mia.cli.eval", ckpt, "split=val", f"paths.cache_dir={cache}"])
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: the val split of the checkpoint's data is empty; use split=test"
    ]
    assert result.stdout == ""
    assert snapshot(cache, run) == before and not (tmp_path / "outputs").exists()


def test_the_quoting_hint_gives_a_value_hydra_reads(world, run_module):
    ckpt = f"ckpt_path={world.run}/checkpoints/last.ckpt"
    refused = run_module(["mia.cli.generate", ckpt, "prompt=lord!", "max_new_tokens=3"])
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    suggested = shlex.split(line.rsplit("quote the value for Hydra and the shell: ", 1)[1])
    assert suggested == ['prompt="lord!"']
    result = run_module(["mia.cli.generate", ckpt, *suggested, "max_new_tokens=3"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("lord!")


class CtrlCAt(Callback):
    """Sends this process SIGINT (as Ctrl-C does) at `step`, once (a marker file remembers)."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, Path(marker)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_in_training_says_how_to_continue_and_that_works(world, tmp_path):
    shutil.copy(world.root / "plays.txt", tmp_path / "plays.txt")
    env = {
        **os.environ,
        "MIA_CACHE_DIR": str(world.cache),
        "PYTHONPATH": str(Path(__file__).parent),
        "PYTHONWARNINGS": "ignore",
    }
    args = [
        *TRAIN,
        "callbacks.progress_bar=null",
        "trainer.max_steps=20",
        "+callbacks.ctrl_c._target_=test_bad_inputs.CtrlCAt",
        "+callbacks.ctrl_c.step=15",
        f"+callbacks.ctrl_c.marker={tmp_path / 'interrupted'}",
        "hydra.run.dir=run",
    ]
    run = partial(subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True)
    first = run([sys.executable, "-m", *args], timeout=300)
    assert first.returncode == 130, first.stderr[-2000:]
    line = first.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted; continue with: mia-train "), first.stderr[-2000:]
    assert "resume=true hydra.run.dir=" in line
    suggested = shlex.split(line.split("continue with: mia-train ", 1)[1])
    second = run([sys.executable, "-m", "mia.cli.train", *suggested], timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "continuing from" in second.stdout + second.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()
