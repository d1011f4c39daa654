"""The logger presets beside TensorBoard: csv, many, mlflow (a real tracking server), wandb."""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from support import finish


@pytest.mark.slow
def test_csv_writes_metrics_and_settings(mia_train, tmp_path):
    finish(mia_train(["logger=csv", "hydra.run.dir=run"]))
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    assert any(r.get("val/loss") for r in rows) and any(r.get("test/loss") for r in rows)
    assert "dim: 32" in (tmp_path / "run" / "csv" / "hparams.yaml").read_text()


@pytest.mark.slow
def test_many_logs_to_each_of_its_loggers(mia_train, tmp_path):
    finish(mia_train(["logger=many", "hydra.run.dir=run"]))
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="pip install -e '.[wandb]'")
def test_wandb_is_offline_by_default(mia_train, tmp_path):
    finish(mia_train(["logger=wandb", "hydra.run.dir=run"], env={"WANDB_SILENT": "true"}))
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_a_logger_whose_package_is_missing_is_one_line(mia_train, tmp_path):
    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here")
    proc = mia_train(["logger=mlflow", "hydra.run.dir=run"])
    assert proc.wait(timeout=120) == 2
    assert proc.log().strip().splitlines()[-1].endswith("pip install -e '.[mlflow]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 with a SQLite store in tmp_path; its URI."""
    if importlib.util.find_spec("mlflow") is None or shutil.which("mlflow") is None:
        pytest.skip("pip install -e '.[mlflow]'")
    port = _free_port()
    store = tmp_path / "mlflow"
    store.mkdir()
    log = open(store / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store}/mlflow.db",
            "--default-artifact-root",
            str(store / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.skip(
                    f"mlflow server did not start: {(store / 'server.log').read_text()[-300:]}"
                )
            time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.mark.services
def test_a_two_job_sweep_logs_both_runs_to_a_tracking_server(mia_train, mlflow_server):
    import mlflow

    args = ["-m", "logger=mlflow", f"logger.tracking_uri={mlflow_server}"]
    finish(mia_train([*args, "model.dim=32,48", "hydra.sweep.dir=sweep"]))
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    (experiment,) = [e for e in client.search_experiments() if e.name == "mia"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["model/dim"] for r in runs) == ["32", "48"]
    for run in runs:
        assert "val/loss" in run.data.metrics and "test/loss" in run.data.metrics
