"""The interface of Hydra's own Optuna sweeper, on a toy app with a known optimum: the sampler
group, range() including its stop, grids inferred from params, command-line values that pin
a searched key, several objectives, custom search spaces, failed trials and
max_failure_rate, and optimization_results.yaml."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

APP = Path(__file__).parent / "toy" / "toy_app.py"


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(APP),
            "--multirun",
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"hydra.sweeper.storage=sqlite:///{tmp_path}/study.db",
            *overrides,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path}/study.db"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def results(tmp_path: Path) -> dict:
    return yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())


def test_a_grid_visits_each_point_once_and_stops(tmp_path):
    done = sweep(tmp_path, "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=50")
    assert done.returncode == 0, done.stderr
    points = [(t.params["x"], t.params["y"]) for t in study(tmp_path).trials]
    # range(-2, 2) includes 2: 5 values of x, 3 of y
    assert sorted(points) == [(x, y) for x in range(-2, 3) for y in (-1, 0, 1)]
    best = results(tmp_path)
    assert best["name"] == "optuna" and best["best_value"] == 0
    assert best["best_params"] == {"x": 0, "y": 0}
    assert best["study_name"] == study(tmp_path).study_name  # MIA's keys beside


def test_a_command_line_value_pins_a_searched_key_and_a_list_is_a_choice(tmp_path):
    done = sweep(tmp_path, "y=1", "x=0,2")
    assert done.returncode == 0, done.stderr
    trials = study(tmp_path).trials
    assert all(set(t.params) == {"x"} and t.params["x"] in (0, 2) for t in trials)
    assert {t.value for t in trials} <= {1.0, 5.0}  # y stayed at 1


def test_several_objectives_give_a_pareto_front(tmp_path):
    done = sweep(
        tmp_path,
        "objectives=2",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.n_trials=8",
    )
    assert done.returncode == 0, done.stderr
    front = study(tmp_path).best_trials
    solutions = results(tmp_path)["solutions"]
    assert [s["values"] for s in solutions] == [list(t.values) for t in front]
    assert "Pareto front (*)" in done.stdout


def test_a_custom_search_space_adds_parameters(tmp_path):
    done = sweep(tmp_path, "hydra.sweeper.custom_search_space=toy_app.box")
    assert done.returncode == 0, done.stderr
    for trial in study(tmp_path).trials:
        assert abs(trial.params["+z"] - trial.params["x"]) <= 0.5


def test_a_failed_trial_is_named_and_the_search_goes_on_within_max_failure_rate(tmp_path):
    done = sweep(
        tmp_path,
        "hydra/sweeper/sampler=grid",
        "y=0",
        "fail_when_x_is=-1",
        "nan_when_x_is=1",
        "hydra.sweeper.max_failure_rate=1.0",
    )
    assert done.returncode == 0, done.stderr
    trials = {t.params["x"]: t for t in study(tmp_path).trials}
    assert sorted(trials) == [-2, -1, 0, 1, 2]  # every point ran
    assert trials[-1].state == trials[1].state == TrialState.FAIL
    assert trials[-1].user_attrs["mia:failure"] == "x=-1 is refused"
    assert trials[1].user_attrs["mia:failure"] == "value is nan"
    assert "x=-1 is refused" in done.stdout and "2 failed" in done.stdout


def test_past_max_failure_rate_the_search_stops_with_the_reason(tmp_path):
    done = sweep(tmp_path, "hydra/sweeper/sampler=grid", "y=0", "x=-1,0", "fail_when_x_is=-1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: x=-1 is refused"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("storage", [None, "null"])
def test_storage_null_is_mias_study_file(tmp_path, storage):
    args = ["hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2"]
    done = subprocess.run(
        [sys.executable, str(APP), "--multirun", f"hydra.sweep.dir={tmp_path}/s", *args]
        + ([f"hydra.sweeper.storage={storage}"] if storage else []),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (name,) = optuna.get_all_study_names(f"sqlite:///{tmp_path}/outputs/optuna.db")
    assert name.startswith("train-")
