"""resume=true: finished jobs are skipped, cut-off jobs continue exactly, empty folders start."""

import json
import signal
from pathlib import Path

import pytest
import torch
from support import finish, wait_for

from mia.conf import compose
from mia.errors import UserError
from mia.sweeping.resume import start_point

GRID = [
    "-m",
    "trainer.max_steps=40",
    "model.dim=32,48",
    "optimizer.lr=3e-3,1e-2",
    "hydra.sweep.dir=outputs/grid",
]


def weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 40
    return checkpoint["state_dict"]


@pytest.mark.slow
def test_an_interrupted_grid_finishes_with_the_same_weights(mia_train, tmp_path):
    grid = tmp_path / "outputs" / "grid"
    third = grid / "2"
    first = mia_train(GRID, "first.txt")
    wait_for(lambda: (third / "checkpoints" / "last.ckpt").is_file(), first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (third / "metrics.json").exists()
    done = {job: (grid / job / "metrics.json").read_text() for job in ("0", "1")}

    output = finish(mia_train([*GRID, "resume=true"], "second.txt"))
    assert output.count("finished earlier (metrics.json); not training again") == 2
    assert f"continuing from {third}/checkpoints/last.ckpt" in output
    assert "nothing to resume" in output  # job 4 had not started
    assert {job: (grid / job / "metrics.json").read_text() for job in ("0", "1")} == done
    table = output[output.index("Sweep ") :]
    assert all(f"\n{job}  " in table for job in "0123")

    # The same job uninterrupted, as a single run in a folder with nothing to resume.
    alone = tmp_path / "alone"
    output = finish(
        mia_train(
            [
                "trainer.max_steps=40",
                "model.dim=48",
                "optimizer.lr=3e-3",
                "resume=true",
                f"hydra.run.dir={alone}",
            ],
            "alone.txt",
        )
    )
    assert "nothing to resume" in output
    resumed, uninterrupted = weights(third), weights(alone)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)

    # resume=true on a folder that ran another model: one line, exit 2.
    other = mia_train(["model.dim=64", "resume=true", f"hydra.run.dir={alone}"], "other.txt")
    assert other.wait(timeout=120) == 2
    assert "Traceback" not in other.log()
    (line,) = [x for x in other.log().splitlines() if x.startswith("error:")]
    assert f"{alone} ran other settings (model.dim 48 -> 64, " in line


def config(tmp_path: Path, *overrides: str):
    return compose("train", [f"paths.output_dir={tmp_path}", *overrides])


def test_a_finished_run_is_not_run_again_when_resumed_or_requeued(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"val/bpc": 1.5}))
    assert start_point(config(tmp_path), {}).finished_metrics is None  # resume=false
    assert start_point(config(tmp_path, "resume=true"), {}).finished_metrics == {"val/bpc": 1.5}
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # a job SLURM requeued resumes by itself
    assert start_point(config(tmp_path), {}).finished_metrics == {"val/bpc": 1.5}


def test_resume_and_ckpt_path_together_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="resume=true and ckpt_path are both set"):
        start_point(config(tmp_path, "resume=true", "ckpt_path=last"), {})
