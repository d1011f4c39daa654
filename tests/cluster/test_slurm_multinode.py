"""DDP over two SLURM nodes: `sbatch --nodes=2 --ntasks-per-node=1`, and `srun` starts one
rank on each node (gloo); Lightning's SLURMEnvironment reads the ranks from SLURM's
variables. A job cancelled after its first checkpoint is finished by a second two-node job,
and the result is what one process trains at the same global batch.

Why the same: with `data.sampler=shuffled`, rank r of R takes places (step * R + r) * B ...
of one order of windows, so two ranks of batch B see together, at every step, the windows
of one process of batch 2B; DDP averages their gradients, which is the gradient of the mean
loss over the 2B windows. Only the order of float additions differs."""

from __future__ import annotations

import os
import sys

import pytest
from cluster_support import cancel_after_first_checkpoint, checkpoint, sbatch
from support import TINY, finish

pytestmark = [pytest.mark.services, pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SCRIPT = """#!/bin/bash
#SBATCH --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --mem=2G --output=%j.out
# Rank 0's address: Lightning takes MASTER_ADDR when it is set, else the first node's name,
# which must then resolve (the local cluster's node1 does not).
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR=$(scontrol show node "$first" | grep -oP 'NodeAddr=\\K\\S+')
srun bash -c 'echo "task $SLURM_PROCID on $SLURMD_NODENAME: SLURM_NODEID=$SLURM_NODEID"
              exec "$@"' task {python} -m mia.cli.train "$@"
"""
STEPS = 40
# One rank per node, 4 windows each: a global batch of 8.
TWO_NODES = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2"]
TWO_NODES += ["data.batch_size=4"]
ONE_PROCESS = ["trainer=cpu", "data.batch_size=8"]
COMMON = ["data.sampler=shuffled", "model.compile=false", f"trainer.max_steps={STEPS}"]
# Float32 sums in another order, through 40 AdamW steps: measured 2.4e-7 at most.
ATOL = 1e-5


def test_two_nodes_train_as_one_process_and_a_second_job_resumes(
    tmp_path, corpus, shared_cache, mia_train
):
    alone = mia_train([*ONE_PROCESS, *COMMON, "hydra.run.dir=alone"])  # meanwhile, locally
    script = tmp_path / "two_nodes.sbatch"
    script.write_text(SCRIPT.format(python=sys.executable))
    args = [*TINY, f"data.files=[{corpus}]", *TWO_NODES, *COMMON, "hydra.run.dir=run"]
    args += ["callbacks.last_checkpoint.every_n_train_steps=10"]
    env = {**os.environ, "MIA_CACHE_DIR": str(shared_cache), "PYTHONWARNINGS": "ignore"}

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    first = sbatch(script, args, tmp_path, env)
    cancel_after_first_checkpoint(first, last)
    saved = checkpoint(last)["global_step"]
    assert 0 < saved < STEPS and not (tmp_path / "run" / "metrics.json").exists()

    args.append("resume=true")
    # --wait: returns once the job has ended, non-zero if it failed
    second = sbatch(script, args, tmp_path, env, "--wait")
    for job in (first, second):
        log = (tmp_path / f"{job}.out").read_text()
        # One task on each node, node ranks 0 and 1, and Lightning's two ranks over gloo.
        assert "task 0 on node1: SLURM_NODEID=0" in log, log[-3000:]
        assert "task 1 on node2: SLURM_NODEID=1" in log, log[-3000:]
        assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
        assert "distributed_backend=gloo" in log
    log = (tmp_path / f"{second}.out").read_text()
    assert f"resume=true: continuing from {last}" in log
    assert (tmp_path / "run" / "metrics.json").is_file()

    finish(alone)
    two, one = checkpoint(last), checkpoint(tmp_path / "alone" / "checkpoints" / "last.ckpt")
    assert two["global_step"] == one["global_step"] == STEPS
    assert two["state_dict"].keys() == one["state_dict"].keys()
    worst = max((two["state_dict"][k] - v).abs().max().item() for k, v in one["state_dict"].items())
    assert worst <= ATOL, f"two nodes and one process differ by up to {worst}"
