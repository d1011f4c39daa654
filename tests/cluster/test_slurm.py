"""MIA's SLURM launcher on a real (local, two-node) SLURM cluster: scripts/local_slurm.sh.

Each breakage below was first reproduced here with hydra-submitit-launcher's own launcher
(``hydra.launcher._target_=hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher``):
a traceback for sbatch's refusal, a sweep that waits forever for a cancelled job, and a sweep
that fails (exit 1, ``CalledProcessError: ... died with SIGTERM``) when submitit's in-job
requeue kills its own ``scontrol``. Without ``--requeue``
(``~hydra.launcher.additional_parameters.requeue``), ``scontrol requeue`` is refused on the
tests' cluster (JobRequeue=0): "Requested operation is presently disabled".
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from cluster_support import SLURM_CPU, checkpoint, job_ids, release, state
from hydra.core.utils import JobReturn, JobStatus
from support import finish, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def test_a_grid_on_the_cpu_preset_asks_for_requeue(mia_train, tmp_path):
    output = finish(mia_train(["-m", *SLURM_CPU, "model.dim=32,48", "hydra.sweep.dir=grid"]))
    for job in ("0", "1"):
        assert (tmp_path / "grid" / job / "metrics.json").is_file()
    scripts = list((tmp_path / "grid" / ".submitit").glob("*.sh"))
    scripts += list((tmp_path / "grid" / ".submitit").glob("*/*.sh"))
    assert any("#SBATCH --requeue" in s.read_text() for s in scripts)
    assert "model.dim=32" in output and "model.dim=48" in output


def test_the_gpu_defaults_on_a_cpu_cluster_are_one_line_naming_the_setting(mia_train, tmp_path):
    proc = mia_train(["-m", "hydra/launcher=submitit_slurm", "hydra.sweep.dir=refused"])
    assert proc.wait(timeout=120) == 2
    errors = [line for line in proc.log().splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.log()
    assert errors[0].startswith("error: hydra.launcher.gpus_per_node")
    assert "submitit_slurm_cpu" in errors[0] and "Traceback" not in proc.log()
    assert not (tmp_path / "refused" / ".submitit").exists()


def test_a_cancelled_job_is_reported_failed_after_a_bounded_wait(mia_train, tmp_path):
    # No accounting on this cluster: sacct cannot say the job was cancelled.
    args = ["-m", *SLURM_CPU, "trainer.max_steps=100000", "hydra.sweep.dir=cancelled"]
    proc = mia_train(args, env={"MIA_SLURM_VANISHED_AFTER_S": "5"})
    sweep = tmp_path / "cancelled"
    wait_for(lambda: bool(job_ids(sweep)) and state(job_ids(sweep)[0]) == "RUNNING", proc)
    subprocess.run(["scancel", job_ids(sweep)[0]], check=True)
    rc = proc.wait(timeout=90)  # 5 s after the job left the queue, plus polling
    assert rc != 0
    assert "left the queue without a result" in proc.log()


def job_return(result: Path) -> JobReturn:
    """Hydra's JobReturn for a job, from the result file submitit wrote."""
    outcome, value = pickle.loads(result.read_bytes())
    assert outcome == "success", value  # the job function ran; its own outcome is inside
    return value


def job_log(sweep, job_id: str) -> str:
    """What a job wrote, in all its runs: submitit's logs and the run's own train.log."""
    files = sorted((sweep / ".submitit" / job_id).glob("*_log.*"))
    return "\n".join(f.read_text() for f in files)


def test_a_job_requeued_mid_run_ends_with_an_uninterrupted_runs_weights(mia_train, tmp_path):
    # The same job twice (one array); job 1 is requeued once its first checkpoint exists. On
    # the fixture's cluster (JobRequeue=0), scontrol requeue works only because MIA asks for
    # --requeue.
    args = ["-m", *SLURM_CPU, "seed=1337,1337", "trainer.max_steps=80"]
    args += ["callbacks.last_checkpoint.every_n_train_steps=10", "hydra.sweep.dir=rq"]
    proc = mia_train(args)
    sweep = tmp_path / "rq"
    last = sweep / "1" / "checkpoints" / "last.ckpt"
    wait_for(lambda: last.is_file() and len(job_ids(sweep)) == 2, proc)
    job = job_ids(sweep)[1]
    subprocess.run(["scontrol", "requeue", job], check=True)
    wait_for(lambda: state(job) == "PENDING", proc)
    saved = checkpoint(last)["global_step"]
    assert 0 < saved < 80 and not (sweep / "1" / "metrics.json").exists()  # mid-run
    release(job)
    finish(proc)
    assert "requeued by SLURM: continuing from" in job_log(sweep, job)
    assert "requeued by SLURM" not in job_log(sweep, job_ids(sweep)[0])
    plain, requeued = (checkpoint(sweep / j / "checkpoints" / "last.ckpt") for j in ("0", "1"))
    assert plain["global_step"] == requeued["global_step"] == 80
    assert plain["state_dict"].keys() == requeued["state_dict"].keys()
    for name, tensor in plain["state_dict"].items():
        assert torch.equal(tensor, requeued["state_dict"][name]), name


# The real scontrol, slowed: after a requeue it waits, so that the requeue's SIGTERM always
# reaches it before it exits (the race that submitit's in-job requeue loses now and then).
SLOW_SCONTROL = """#!/bin/bash
{real} "$@" || exit
if [[ $1 == requeue ]]; then sleep 60; fi
"""


def test_a_requeue_that_kills_its_own_scontrol_does_not_fail_the_sweep(mia_train, tmp_path):
    slowed = tmp_path / "bin" / "scontrol"
    slowed.parent.mkdir()
    slowed.write_text(SLOW_SCONTROL.format(real=shutil.which("scontrol")))
    slowed.chmod(0o755)
    args = ["-m", *SLURM_CPU, "trainer.max_steps=80", "hydra.sweep.dir=race"]
    args += ["callbacks.last_checkpoint.every_n_train_steps=10"]
    proc = mia_train(args, env={"PATH": f"{slowed.parent}:{os.environ['PATH']}"})
    sweep = tmp_path / "race"
    wait_for(lambda: (sweep / "0" / "checkpoints" / "last.ckpt").is_file(), proc)
    (job,) = job_ids(sweep)
    # What SLURM sends before a time limit or a preemption: submitit then requeues the job
    # from inside it, with `scontrol requeue`, which the requeue's SIGTERM kills.
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_for(lambda: state(job) == "PENDING", proc)
    # The first run's result, written as SLURM queued the job again: failed by the race.
    result = sweep / ".submitit" / job / f"{job}_0_result.pkl"
    with pytest.raises(subprocess.CalledProcessError, match="requeue.*died with <Signals.SIGTERM"):
        _ = job_return(result).return_value
    release(job)
    finish(proc)  # the sweep succeeds: it took the requeued run's result
    assert job_return(result).status == JobStatus.COMPLETED
    assert "requeued by SLURM: continuing from" in job_log(sweep, job)
    assert (sweep / "0" / "metrics.json").is_file()
