"""What MIA's SLURM launcher (`hydra_plugins.mia_slurm_launcher`) adds to submitit's.

It is hydra-submitit-launcher's `SlurmLauncher`; it submits the same job array and changes
three things around it:
- no SLURM on this machine, or sbatch refusing the job, is a `UserError` naming the
  setting to change, not a traceback;
- a job counts as finished when its result file exists *and* SLURM no longer queues it. A
  job that requeued itself (submitit's requeue after a signal) can write a failed result
  while SLURM has already queued it again; that result is not taken, the rerun's is;
- the wait is bounded where SLURM cannot tell job states (no accounting, so `sacct` knows
  nothing): a job that leaves the queue without a result (e.g. `scancel`) is reported
  failed after MIA_SLURM_VANISHED_AFTER_S (60) seconds.
"""

from __future__ import annotations

import subprocess

# sbatch's refusals that name one of the launcher's settings.
REFUSALS = {
    "Invalid generic resource": "gpus_per_node (or gres): this cluster has no such GPUs; "
    "set hydra.launcher.gpus_per_node=null, or use hydra/launcher=submitit_slurm_cpu",
    "Memory specification can not be satisfied": "mem_gb: more memory than a node has; "
    "lower hydra.launcher.mem_gb, or use hydra/launcher=submitit_slurm_cpu",
    "CPU count per node can not be satisfied": "cpus_per_task: more CPUs than a node has; "
    "lower hydra.launcher.cpus_per_task",
    "invalid partition": "partition: no such partition here; see `sinfo` and set "
    "hydra.launcher.partition",
    "Requested time limit is invalid": "timeout_min: longer than the partition allows; "
    "lower hydra.launcher.timeout_min",
}
POLL_S = 2.0


def sbatch_refusal(message: str) -> str:
    """One line for sbatch's refusal: which launcher setting to change, and sbatch's words."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    said = lines[-1].removeprefix("sbatch: error: ") if lines else "no reason given"
    for key, advice in REFUSALS.items():
        if key.lower() in message.lower():
            return f"hydra.launcher.{advice} (sbatch: {said})"
    return f"sbatch refused the jobs ({said}); check the hydra.launcher settings"


def queued(job_id: str) -> bool:
    """Whether SLURM still holds the job (pending, running, completing, requeued)."""
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and bool(out.stdout.strip())
