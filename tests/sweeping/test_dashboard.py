"""Watching a search live: the real optuna-dashboard serves a MIA study's trials over HTTP."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from support import finish

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (.[dashboard])")

pytestmark = pytest.mark.slow

SEARCH = [
    "hparams_search=optuna",
    "trainer.max_steps=10",
    "hydra.sweeper.n_trials=2",
    "hydra.sweeper.plots=false",
    'hydra.sweeper.params={model.dim:"choice(32,48)",model.n_layers:"choice(1,2)"}',
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def dashboard_command() -> list[str]:
    """The installed `optuna-dashboard` script, or the same entry point through this Python."""
    script = Path(sys.executable).with_name("optuna-dashboard")
    if script.is_file():
        return [str(script)]
    found = shutil.which("optuna-dashboard")
    if found:
        return [found]
    return [sys.executable, "-c", "from optuna_dashboard._cli import main; main()"]


def test_the_dashboard_lists_a_searchs_trials(mia_train, tmp_path):
    finish(mia_train(SEARCH))
    storage = f"sqlite:///{tmp_path}/outputs/optuna.db"  # MIA's default study file
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == 2

    port = free_port()
    log = open(tmp_path / "dashboard.txt", "w")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [*dashboard_command(), storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    served_log = (tmp_path / "dashboard.txt").read_text()
                    pytest.fail(f"optuna-dashboard did not serve:\n{served_log}")
                time.sleep(0.2)
        (summary,) = studies
        assert summary["study_name"] == name
        assert summary["directions"] == ["minimize"]

        detail = get_json(f"{base}/api/studies/{summary['study_id']}")
        assert detail["name"] == name
        assert detail["objective_names"] == ["val/bpc"]  # not "Objective 0"
        served = {t["number"]: t for t in detail["trials"]}
        assert sorted(served) == [t.number for t in trials]
        for trial in trials:
            shown = served[trial.number]
            assert shown["state"] == trial.state.name.capitalize() == "Complete"
            assert shown["values"] == pytest.approx(trial.values)
            params = {p["name"]: p["param_external_value"] for p in shown["params"]}
            assert params == {key: str(value) for key, value in trial.params.items()}
            assert set(params) == {
                "model.dim",
                "model.n_layers",
                "optimizer.lr",
                "optimizer.weight_decay",
            }
        best = min(trials, key=lambda t: t.value)
        assert [t["number"] for t in detail["best_trials"]] == [best.number]

        page = urllib.request.urlopen(f"{base}/dashboard/studies/{summary['study_id']}", timeout=10)
        assert page.status == 200  # the web page a browser opens
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
