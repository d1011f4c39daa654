"""docs/cluster.md's recipe for an Optuna search on SLURM: the workers are the tasks of one
`sbatch --array` job, on both nodes of the local cluster, sharing one study in a
(throwaway) PostgreSQL server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import TINY

pytestmark = [pytest.mark.services, pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SCRIPT = """#!/bin/bash
#SBATCH --array=1-2 --cpus-per-task=1 --mem=1G --output=%A_%a.out
echo "array task $SLURM_ARRAY_TASK_ID on $SLURMD_NODENAME"
{python} -m mia.cli.train "$@" hydra.sweep.dir=outputs/task$SLURM_ARRAY_TASK_ID
"""
SEARCH = [
    "hparams_search=optuna",
    "trainer.max_steps=20",
    "model.compile=false",
    'hydra.sweeper.params={model.dim:"choice(32,48)",optimizer.lr:"interval(1e-3,2e-2)"}',
]


def test_array_tasks_share_one_postgresql_study(tmp_path, corpus, shared_cache, postgres_url):
    script = tmp_path / "search.sbatch"
    script.write_text(SCRIPT.format(python=sys.executable))
    args = [*TINY, f"data.files=[{corpus}]", *SEARCH, f"hydra.sweeper.storage={postgres_url}"]
    args += ["hydra.sweeper.n_trials=4", "hydra.sweeper.study_name=array"]
    env = {**os.environ, "MIA_CACHE_DIR": str(shared_cache), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        ["sbatch", "--parsable", "--wait", str(script), *args],  # --wait: until both end
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("*_*.out")))
    assert done.returncode == 0, logs[-3000:]
    trials = optuna.load_study(study_name="array", storage=postgres_url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    runs = [Path(t.user_attrs["run_dir"]) for t in trials]
    assert {r.parent.name for r in runs} == {"task1", "task2"}  # both tasks ran trials
    # A worker on each node (the cluster puts a job on its least loaded node).
    nodes = dict(re.findall(r"^array task (\d) on (\S+)$", logs, flags=re.MULTILINE))
    assert nodes.keys() == {"1", "2"} and set(nodes.values()) == {"node1", "node2"}, nodes
    # Each trial ran once: one job folder per trial over both workers.
    assert sorted(p.parent for p in tmp_path.glob("outputs/*/*/metrics.json")) == sorted(
        r.resolve() for r in runs
    )
