"""The Lightning callback through which a trial's run talks to its Optuna study: it reports
the optimised metric at each validation and stops the run at once when the pruner says so.

Under DDP only rank 0 opens the study; its decision is broadcast so that every rank stops
at the same validation. Ranks stop through `trainer.should_stop` rather than an exception
(an exception in one spawned rank would hang or mask the others); rank 0 also marks the
trial, and `pruned_step` tells the process that the sweeper waits on, after `fit`, where the
run stopped (for ``ddp_spawn`` that is the parent, which reads the mark from the study)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import optuna

from mia.sweeping.study import PRUNER_ATTR, make_pruner, open_storage

PRUNED_ATTR = "mia:pruned_at_step"


class OptunaPruning(L.Callback):
    def __init__(self, storage: str, study: str, number: int, monitor: str) -> None:
        self.storage_url = storage
        self.study_name = study
        self.number = int(number)
        self.monitor = monitor
        self._trial: optuna.Trial | None = None
        self.pruned_at: int | None = None
        self._storage = None
        self._trial_id: int | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], monitor: str) -> OptunaPruning:
        return cls(spec["storage"], spec["study"], spec["number"], monitor)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self._trial is None:
            self._trial = self._open_trial()

    def _open_trial(self) -> optuna.Trial:
        storage = open_storage(self.storage_url)
        study_id = storage.get_study_id_from_name(self.study_name)
        spec = storage.get_study_user_attrs(study_id).get(PRUNER_ATTR)
        study = optuna.load_study(
            study_name=self.study_name,
            storage=storage,
            pruner=make_pruner(spec),
            sampler=optuna.samplers.RandomSampler(),  # the sweeper samples; this only reports
        )
        self._storage = storage
        self._trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        return optuna.Trial(study, self._trial_id)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_at is not None:
            return
        prune = False
        if trainer.is_global_zero and self._trial is not None:
            metric = trainer.callback_metrics.get(self.monitor)
            if metric is not None and math.isfinite(float(metric)):
                self._trial.report(float(metric), step=trainer.global_step)
                prune = self._trial.should_prune()
                if prune:
                    self._trial.set_user_attr(PRUNED_ATTR, trainer.global_step)
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at = trainer.global_step
            trainer.should_stop = True

    def pruned_step(self, trainer: L.Trainer) -> int | None:
        """After fit: the step at which the pruner stopped this run, or None."""
        step = self.pruned_at
        if step is None and trainer.is_global_zero:
            if self._trial is None:  # the parent of spawned ranks: read rank 0's mark
                self._trial = self._open_trial()
            step = self._storage.get_trial(self._trial_id).user_attrs.get(PRUNED_ATTR)
        return step
