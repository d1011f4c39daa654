"""Interruptions: Ctrl-C is one line and exit status 130, encoding workers end with the
preparation whichever way it ends, and a dead preparation's hidden folder is removed by the
next one while a live one's is left alone; a rerun gives byte-identical files."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mia.data import prepare_dataset
from mia.data.cache import remove_stale_folders
from mia.errors import Interrupted, reports_user_errors

# mia-prepare with two encoding workers on a small corpus, slowed down so that a test can
# catch it mid-encoding: the file is read in 2 kB pieces (a small file is otherwise one piece,
# so one chunk a split) and each chunk waits 0.3 s before it is handed to the workers.
SLOW_PREPARE = """
import sys, time
import mia.data.encoding as encoding
import mia.data.sources as sources
sources.BLOCK_BYTES = 2048
encoding.BYTES_PER_WORKER = 1
encoding.CHUNK_CHARS = 2048
chunks = encoding.chunks
def slow(items, documents):
    for chunk in chunks(items, documents):
        time.sleep(0.3)
        yield chunk
encoding.chunks = slow
from mia.cli.prepare import main
sys.argv = ["mia-prepare", *sys.argv[1:]]
main()
"""


def _args(text_file: Path, cache: Path) -> list[str]:
    return [
        "data=text",
        f"data.files=[{text_file}]",
        "tokenizer=char",
        "data.prepare_workers=2",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={cache.parent / 'run'}",
    ]


def _start(text_file: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_PREPARE, *_args(text_file, cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_workers(process: subprocess.Popen, cache: Path) -> list[int]:
    """The worker pids, once one encodes and the building folder exists. (The pool starts a
    second worker only when the first is busy: on a quiet machine one keeps up with the
    slowed chunks.)"""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        hidden = list((cache / "prepared").glob(".*")) if (cache / "prepared").is_dir() else []
        workers = [c for c in _children(process.pid) if "resource_tracker" not in _cmdline(c)]
        if hidden and workers:
            time.sleep(1.0)  # started and encoding
            return workers
        time.sleep(0.1)
    raise AssertionError("the preparation never reached its encoding workers")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


@pytest.fixture
def big_text(tmp_path: Path, play_text: str) -> Path:
    path = tmp_path / "plays.txt"
    # About 600 kB: 300 slowed chunks, 90 s, so that a signal sent late on a loaded machine
    # still lands mid-encoding (the tests signal within seconds).
    path.write_text(play_text * 20, encoding="utf-8")
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "meta.json"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_in_mia_prepare_is_one_line_exit_130_and_leaves_nothing(big_text, tmp_path):
    cache = tmp_path / "cache"
    process = _start(big_text, cache)
    workers = _wait_for_workers(process, cache)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    # The progress bar's last state may come first (stderr is not a terminal here).
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("encoding")]
    assert lines == ["interrupted; nothing was written to the cache"], stderr
    assert "Traceback" not in stderr
    assert list((cache / "prepared").iterdir()) == []  # no hidden folder, no lock file
    assert not any(map(_alive, workers))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_in_mia_prepare_ends_it_at_once_and_leaves_nothing(big_text, tmp_path):
    cache = tmp_path / "cache"
    process = _start(big_text, cache)
    workers = _wait_for_workers(process, cache)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted"), stderr
    assert "Traceback" not in stderr
    assert list((cache / "prepared").iterdir()) == []  # no hidden folder, no lock file
    assert not any(map(_alive, workers))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_kill_9_ends_the_workers_and_the_rerun_cleans_up_byte_identical(big_text, tmp_path):
    cache = tmp_path / "cache"
    process = _start(big_text, cache)
    workers = _wait_for_workers(process, cache)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "encoding workers outlived their parent"
    stale = [p for p in (cache / "prepared").iterdir() if p.is_dir()]
    assert stale and all(p.name.startswith(".") for p in stale)

    splits = {"train": 0.9, "val": 0.05, "test": 0.05}  # conf/data/text.yaml's
    data = {"corpus": "text", "files": [str(big_text)], "splits": splits, "prepare_workers": 2}
    rerun = prepare_dataset(data, {"kind": "char"}, cache)
    assert sorted(p.name for p in (cache / "prepared").iterdir()) == [rerun.directory.name]
    clean = prepare_dataset(data, {"kind": "char"}, tmp_path / "clean")
    assert _files(rerun.directory) == _files(clean.directory)


def test_a_live_preparations_folder_is_left_alone(tmp_path):
    prepared = tmp_path / "prepared"
    live, dead, legacy = (prepared / f".text-char-x.{n}" for n in ("live", "dead", "legacy"))
    for folder in (live, dead, legacy):
        folder.mkdir(parents=True)
        (folder / "train.bin").write_bytes(b"\0\0")
    (prepared / ".text-char-x.dead.lock").write_text("12345\n")  # its holder is gone
    with (prepared / ".text-char-x.live.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        removed = remove_stale_folders(prepared)
    assert sorted(p.name for p in removed) == [dead.name, legacy.name]
    assert live.is_dir() and not dead.exists() and not legacy.exists()
    assert sorted(p.name for p in prepared.iterdir()) == [live.name, f"{live.name}.lock"]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (KeyboardInterrupt(), "interrupted"),
        (Interrupted("interrupted; resume with X"), "interrupted; resume with X"),
    ],
)
def test_ctrl_c_in_a_command_body_is_one_line_and_exit_130(error, line, capsys):
    def body() -> None:
        raise error

    with pytest.raises(SystemExit) as exit_info:
        reports_user_errors(body)()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.splitlines() == [
        line if line != "interrupted; nothing" else str(error)
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
def test_sigterm_ends_a_run_whose_first_step_is_slow_within_seconds(tmp_path, play_text):
    """A context of 12,000 characters makes the first step last far longer than the test
    waits (attention is quadratic in it); SIGTERM during that step ends the command within
    seconds with exit status 130 and a last line that says so, not after the step."""
    text = tmp_path / "plays.txt"
    text.write_text(play_text, encoding="utf-8")
    args = [
        "data=text",
        f"data.files=[{text}]",
        "tokenizer=char",
        "debug=fast",
        "model.compile=false",
        "data.block_size=12000",
        "data.batch_size=16",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "mia.cli.train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert process.stdout is not None
    for line in process.stdout:  # the first step has begun
        if "training: step 0 to" in line:
            break
    time.sleep(2.0)
    assert process.poll() is None, "the first step was not slow"
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("SIGTERM did not end the command within 30 s") from None
    assert time.monotonic() - sent < 10
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("terminated"), stderr[-2000:]
    assert "Traceback" not in stderr
