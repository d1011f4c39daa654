"""One batch of an Optuna search: its trials launched as Hydra jobs while a heartbeat marks
them alive, and each job's end told to the study (complete, pruned, or failed with its
reason in one line); a batch with too many failures ends the search."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mia.errors import UserError
from mia.sweeping.jobs import error_line, job_folder
from mia.sweeping.outcome import PrunedRun
from mia.sweeping.report import trials_table
from mia.sweeping.search_space import as_override
from mia.sweeping.study import FAILURE_ATTR, RESUME_ATTR, RETRY_ATTR

log = logging.getLogger(__name__)
RUN_DIR_ATTR = "run_dir"


def run_batch(
    study: optuna.Study,
    batch: Sequence[tuple[optuna.Trial, list[str]]],
    launcher: Any,
    metrics: Sequence[str],
    max_failure_rate: float,
    heartbeat_interval: int,
    storage: Any,
) -> None:
    """Launch a batch of trials as Hydra jobs and tell the study how each ended. A failed
    run fails its trial, with its reason; past max_failure_rate, the search stops."""
    trials = [t for t, _ in batch]
    numbers = [t.number for t in trials]
    beating = Heartbeats(storage, [t._trial_id for t in trials], heartbeat_interval)
    try:
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            returns = list(launcher.launch([o for _, o in batch], initial_job_idx=numbers[0]))
        else:  # another worker took numbers in between: job folders follow trial numbers
            returns = [launcher.launch([o], initial_job_idx=t.number)[0] for t, o in batch]
    finally:
        beating.stop()
    failed = []
    for trial, ret in zip(trials, returns, strict=True):
        run_dir = job_folder(ret)
        if run_dir:
            trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))
        outcome = trial_outcome(ret, metrics)
        if isinstance(outcome, PrunedRun):
            tell(study, trial, TrialState.PRUNED)
        elif isinstance(outcome, str):
            trial.set_user_attr(FAILURE_ATTR, outcome)
            log.warning("trial %d failed: %s", trial.number, outcome)
            tell(study, trial, TrialState.FAIL)
            failed.append(ret)
        else:
            tell(study, trial, TrialState.COMPLETE, outcome)
    if failed and len(failed) / len(returns) > float(max_failure_rate):
        log.error(
            "%d of %d trial(s) of this batch failed, more than max_failure_rate=%s",
            len(failed),
            len(returns),
            max_failure_rate,
        )
        print(f"\n{trials_table(study, metrics)}", flush=True)
        for ret in failed:
            ret.return_value  # noqa: B018 (re-raises the job's own error)
        raise UserError(
            f"trial {trials[0].number}: {study.trials[numbers[0]].user_attrs.get(FAILURE_ATTR)}"
            f" (more failed trials than hydra.sweeper.max_failure_rate={max_failure_rate})"
        )


def tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, values: Any = None) -> None:
    try:
        study.tell(trial, state=state, values=values)
    except RuntimeError as err:  # the grid sampler stops the study once every point ran
        if "Study.stop" not in str(err):
            raise


def trial_outcome(ret: Any, metrics: Sequence[str]) -> list[float] | PrunedRun | str:
    """The objective values of a finished job, its pruning, or the one-line reason it failed."""
    try:
        value = ret.return_value
    except Exception as err:
        return error_line(err)
    if isinstance(value, PrunedRun):
        return value
    if value is None:
        return f"the run returned no {', '.join(metrics)}"
    given = list(value) if isinstance(value, list | tuple) else [value]
    if len(given) != len(metrics):
        return f"the run returned {len(given)} value(s) for {len(metrics)} objective(s)"
    try:
        values = [float(v) for v in given]
    except (TypeError, ValueError):
        return f"the run returned {value!r}, not a number"
    for metric, v in zip(metrics, values, strict=True):
        if not math.isfinite(v):
            return f"{metric} is {v}"
    return values


class Heartbeats:
    """Beats for a batch's running trials while the launcher runs them, so that another
    worker can tell a live trial from one whose worker died."""

    def __init__(self, storage: Any, trial_ids: Sequence[int], interval: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(storage, list(trial_ids), interval), daemon=True
        )
        self._thread.start()

    def _beat(self, storage: Any, trial_ids: list[int], interval: int) -> None:
        while True:
            for trial_id in trial_ids:
                storage.record_heartbeat(trial_id)
            if self._stop.wait(interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def retry_cut_off(study: optuna.Study, trials: Sequence[optuna.Trial], sweep_dir: Path) -> None:
    """Ctrl-C: each trial that was still running is failed, and its parameters queued, so
    that the command run again completes it as a new trial (counted once), continuing from
    the cut-off run's last checkpoint where it left one."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for trial in trials:
        if trial.number not in running:
            continue
        attrs: dict[str, Any] = {RETRY_ATTR: trial.number}
        folder = cut_off_folder(sweep_dir, trial.number)
        if folder is not None:  # before tell: a finished trial's attributes are fixed
            trial.set_user_attr(RUN_DIR_ATTR, folder)
            attrs[RESUME_ATTR] = folder
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs=attrs)


def cut_off_folder(sweep_dir: Path, number: int) -> str | None:
    """The run folder of trial `number`, if it left a checkpoint to resume: a trial's job
    runs in `<sweep dir>/<its number>` (the launcher numbers jobs by trial, and
    `hydra.sweep.subdir` is the job's number)."""
    folder = Path(sweep_dir).absolute() / str(number)
    return str(folder) if (folder / "checkpoints" / "last.ckpt").is_file() else None


def resumed_in(trial: optuna.Trial) -> list[str]:
    """The overrides that run a retried trial in the cut-off trial's folder with resume=true
    (it continues from that run's last checkpoint); none for another trial."""
    folder = trial.user_attrs.get(RESUME_ATTR)
    if not folder:
        return []
    return [
        as_override("hydra.sweep.dir", str(Path(folder).parent)),
        as_override("hydra.sweep.subdir", Path(folder).name),
        "resume=true",
    ]
