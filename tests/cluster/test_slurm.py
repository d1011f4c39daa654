"""MIA's SLURM launcher on a real (local, one-node) SLURM cluster: scripts/local_slurm.sh.

Each breakage below was first reproduced here with hydra-submitit-launcher's own launcher
(``hydra.launcher._target_=hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher``):
a traceback for sbatch's refusal, and a sweep that waits forever for a cancelled job.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cluster_support import SLURM_CPU, finish, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def job_ids(sweep: Path) -> list[str]:
    """The SLURM job ids of a sweep, from submitit's folders (<job> or <array>_<index>)."""
    folder = sweep / ".submitit"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0].isdigit())


def state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


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
    wait_until(lambda: bool(job_ids(sweep)) and state(job_ids(sweep)[0]) == "RUNNING", proc)
    subprocess.run(["scancel", job_ids(sweep)[0]], check=True)
    rc = proc.wait(timeout=90)  # 5 s after the job left the queue, plus polling
    assert rc != 0
    assert "left the queue without a result" in proc.log()
