"""DDP launched by SLURM itself: `srun` starts both ranks (2 tasks on the one node, gloo), and
Lightning's SLURMEnvironment reads their ranks from SLURM's variables; a second job resumes."""

from __future__ import annotations

import os
import sys

import pytest
from cluster_support import cancel_after_first_checkpoint, checkpoint, sbatch
from support import TINY

pytestmark = [pytest.mark.services, pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

# Lightning refuses --ntasks without --ntasks-per-node, so the tasks are given per node.
SCRIPT = """#!/bin/bash
#SBATCH --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --mem=2G --output=%j.out
# Rank 0's address: Lightning takes MASTER_ADDR when set, else the node's name, which must
# resolve (the local cluster's node1 and node2 do not).
export MASTER_ADDR=$(scontrol show node "$SLURMD_NODENAME" | grep -oP 'NodeAddr=\\K\\S+')
srun {python} -m mia.cli.train "$@"
"""
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.num_nodes=1"]


def test_srun_starts_both_ranks_and_a_second_job_resumes(tmp_path, corpus, shared_cache):
    script = tmp_path / "ddp.sbatch"
    script.write_text(SCRIPT.format(python=sys.executable))
    args = [*TINY, f"data.files=[{corpus}]", *DDP, "model.compile=false", "hydra.run.dir=run"]
    args += ["trainer.max_steps=60", "callbacks.last_checkpoint.every_n_train_steps=10"]
    env = {**os.environ, "MIA_CACHE_DIR": str(shared_cache), "PYTHONWARNINGS": "ignore"}

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    first = sbatch(script, args, tmp_path, env)
    cancel_after_first_checkpoint(first, last)
    saved = checkpoint(last)["global_step"]
    assert 0 < saved < 60 and not (tmp_path / "run" / "metrics.json").exists()

    args.append("resume=true")
    # --wait: returns once the job has ended, non-zero if it failed
    second = sbatch(script, args, tmp_path, env, "--wait")
    for job in (first, second):
        log = (tmp_path / f"{job}.out").read_text()
        assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
        assert "distributed_backend=gloo" in log
    log = (tmp_path / f"{second}.out").read_text()
    assert f"resume=true: continuing from {last}" in log
    assert checkpoint(last)["global_step"] == 60
    assert (tmp_path / "run" / "metrics.json").is_file()
