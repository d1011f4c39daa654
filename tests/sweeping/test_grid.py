"""-m without a search (MIA's basic sweeper): a job that fails while it runs does not stop
the others (a bad value is refused before any job runs: tests/cli/test_bad_inputs.py), and
resume=true refuses a folder whose run had other settings, leaving it byte-for-byte."""

import hashlib
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mia.sweeping.resume import other_settings, settings_differences

SHORT = ["trainer.max_steps=6", "trainer.val_check_interval=6", "model.n_heads=4"]


def test_a_grid_with_a_failing_job_runs_the_others_and_names_the_failure(mia_train, tmp_path):
    """Job 1 fails at its step 3 (a planted error that no check sees before it runs)."""
    plant = "+callbacks.fail={_target_:fail_at_step.FailAtStep,step:99}"
    proc = mia_train(["-m", *SHORT, plant, "callbacks.fail.step=99,3,98", "hydra.sweep.dir=grid"])
    assert proc.wait(timeout=600) == 1, proc.log()[-3000:]
    output = proc.log()
    assert "Traceback" not in output
    grid = tmp_path / "grid"
    assert (grid / "0" / "metrics.json").is_file() and (grid / "2" / "metrics.json").is_file()
    assert not (grid / "1" / "metrics.json").exists()
    table = output[output.index("Sweep ") :].splitlines()
    (row,) = [line for line in table if line.startswith("1 ")]
    assert "callbacks.fail.step=3" in row
    assert row.endswith("failed: a failure planted at step 3 (RuntimeError)"), row
    assert any(line.startswith("0 ") and line.endswith("done") for line in table)
    assert "error: 1 of 3 jobs failed" in output


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(proc) -> str:
    assert proc.wait(timeout=300) == 2, proc.log()[-3000:]
    assert "Traceback" not in proc.log()
    (line,) = [x for x in proc.log().splitlines() if x.startswith("error:")]
    return line


def test_resume_refuses_a_run_folder_that_ran_other_settings_and_leaves_it(mia_train, tmp_path):
    run = ["model.dim=32", *SHORT, "hydra.run.dir=run"]
    assert mia_train(run, "first.txt").wait(timeout=300) == 0
    folder = tmp_path / "run"
    before = tree_digest(folder)
    assert "settings.yaml" in before and "metrics.json" in before and ".hydra/config.yaml" in before

    other = ["optimizer.lr=0.003", "optimizer.weight_decay=0.2", "resume=true"]
    line = refused(mia_train([*run, *other], "second.txt"))
    assert line == (
        f"error: resume=true: {folder} ran other settings (optimizer.lr 0.01 -> 0.003, "
        "optimizer.weight_decay 0.0 -> 0.2); use another hydra.run.dir or remove it"
    )
    assert tree_digest(folder) == before

    same = mia_train([*run, "resume=true"], "third.txt")
    assert same.wait(timeout=300) == 0, same.log()[-3000:]
    assert "finished earlier (metrics.json); not training again" in same.log()


def test_a_resumed_grid_refuses_a_job_folder_that_ran_other_settings(mia_train, tmp_path):
    grid = ["-m", *SHORT, "model.dim=32", "hydra.sweep.dir=grid"]
    assert mia_train(grid, "first.txt").wait(timeout=300) == 0
    before = tree_digest(tmp_path / "grid")
    line = refused(mia_train([*grid, "resume=true", "seed=7"], "second.txt"))
    assert line == (
        f"error: resume=true: {tmp_path}/grid/0 ran other settings (seed 1337 -> 7); use "
        "another hydra.sweep.dir or remove it"
    )
    assert tree_digest(tmp_path / "grid") == before  # multirun.yaml and job 0 alike


def test_settings_differ_by_dotted_key_apart_from_paths_and_resume(tmp_path):
    recorded = {"optimizer": {"lr": 0.01, "betas": [0.9, 0.95]}, "seed": 1}
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(recorded))
    assert settings_differences(recorded, {"optimizer": {"lr": 0.02}, "seed": 1, "x": 3}) == [
        "optimizer.betas [0.9, 0.95] -> (absent)",
        "optimizer.lr 0.01 -> 0.02",
        "x (absent) -> 3",
    ]
    same = OmegaConf.create({**recorded, "resume": True, "paths": {"output_dir": "elsewhere"}})
    assert other_settings(tmp_path, same, "hydra.run.dir") is None
    assert other_settings(tmp_path / "empty", same, "hydra.run.dir") is None  # nothing recorded


def test_a_job_that_never_ran_gets_a_row_with_its_reason(tmp_path, capsys):
    from hydra.core.utils import JobReturn, JobStatus

    from mia.errors import UserError
    from mia.sweeping.grid import end_of_grid

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "metrics.json").write_text('{"val/bpc": 1.5}')
    done, gone = JobReturn(), JobReturn()  # gone: a SLURM job cancelled in the queue
    done.status, done.return_value = JobStatus.COMPLETED, 1.5
    gone.status, gone.return_value = JobStatus.FAILED, UserError("SLURM job 7 left the queue")
    end_of_grid(tmp_path, [done])  # nothing failed: no table here, no exit
    with pytest.raises(SystemExit) as ended:
        end_of_grid(tmp_path, [done, gone])
    assert ended.value.code == 1
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[-2].startswith("0 ") and rows[-2].endswith("1.5000  done")
    assert rows[-1].startswith("1 ") and rows[-1].endswith("failed: SLURM job 7 left the queue")
    assert err == "error: 1 of 2 jobs failed (see the table above)\n"
