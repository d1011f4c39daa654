"""What a trial's job hands back to the sweeper besides a metric."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrunedRun:
    """A run the pruner stopped. Returned, not raised, so that Hydra does not log the job as
    an error; the sweeper tells Optuna the trial was pruned."""

    step: int
