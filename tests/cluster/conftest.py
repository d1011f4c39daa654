"""Real services for the scale-out tests: the local SLURM cluster and a throwaway PostgreSQL.

Each is started by one script or fixture and stopped by the PIDs it recorded; a test that
needs one skips, with the reason, where it cannot start (not root, packages missing).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import train_runner

REPO = Path(__file__).resolve().parents[2]
LOCAL_SLURM = REPO / "scripts" / "local_slurm.sh"
SLURM_NODES = 2  # as .ci/run starts it: the multi-node tests need two


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """The two-node cluster of scripts/local_slurm.sh (node1, node2, both on this machine);
    stopped at the end if this started it. Started with JobRequeue=0, as on clusters that
    requeue only the jobs that ask for it (.ci/run starts it so too): a requeue test then
    also shows that MIA asks."""
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (its daemons run as root)")
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch") if not shutil.which(c)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install slurm-wlm munge")
    was_up = subprocess.run([LOCAL_SLURM, "status"], capture_output=True).returncode == 0
    started = subprocess.run(
        [LOCAL_SLURM, "start", "--nodes", str(SLURM_NODES)],
        capture_output=True,
        text=True,
        env={**os.environ, "MIA_SLURM_REQUEUE": "0"},
    )
    if started.returncode != 0:
        pytest.skip(f"the local SLURM cluster did not start: {started.stderr.strip()}")
    yield
    if not was_up:
        subprocess.run([LOCAL_SLURM, "stop"], check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, play_text: str) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text(play_text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def mia_train(tmp_path: Path, corpus: Path, shared_cache: Path):
    """Start `mia-train <TINY> <args>` in tmp_path (`support.start_train`); returns the
    Popen. Still running at the end of the test (it failed): killed, its SLURM jobs
    cancelled."""
    yield from train_runner(tmp_path, corpus, shared_cache)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL (initdb + pg_ctl in a temporary folder, on 127.0.0.1) and the
    URL of its database `mia`; stopped at the end of the session."""
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]' (psycopg 3)")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl not found: apt-get install postgresql")
    # Not under pytest's folder: that one is private to this user, and the server may not be.
    root = Path(tempfile.mkdtemp(prefix="mia-postgres-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"]).returncode:
            pytest.skip("running as root without a postgres user to run the server")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    init = subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "mia", "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
    )
    if init.returncode:
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
    start = subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        capture_output=True,
        text=True,
    )
    if start.returncode:
        pytest.skip(f"PostgreSQL did not start: {(root / 'log').read_text()[-300:]}")
    try:
        import psycopg

        for _ in range(50):
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=mia dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute("CREATE DATABASE mia")
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        yield f"postgresql://mia@127.0.0.1:{port}/mia"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)
