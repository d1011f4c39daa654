"""What a search leaves behind: a table of its trials, the best trial in
``optimization_results.yaml``, and Optuna's own plots as PNG files."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from mia.sweeping.study import FAILURE_ATTR, RETRY_ATTR
from mia.sweeping.table import metric_text

log = logging.getLogger(__name__)

PLOTS = ("optimization_history", "parallel_coordinate", "param_importances")


def _shown(trial: optuna.trial.FrozenTrial) -> bool:
    return not trial.user_attrs.get("mia:surplus")


def trials_table(study: optuna.Study, metrics: Sequence[str]) -> str:
    """One row per trial: number, state, value(s) (the last reported one for pruned trials),
    parameters, run folder, and why a failed trial failed. With several objectives, the
    trials of the Pareto front are starred."""
    trials = [t for t in study.get_trials(deepcopy=False) if _shown(t)]
    if not trials:
        return "no trials"
    multi = len(study.directions) > 1
    front = {t.number for t in study.best_trials} if multi and _complete(study) else set()
    keys = sorted({k for t in trials for k in t.params})
    failures = any(t.user_attrs.get(FAILURE_ATTR) for t in trials)
    header = ["trial", "state", *metrics, *keys, "run folder", *(["reason"] if failures else [])]
    rows = []
    for t in trials:
        values = list(t.values) if t.values is not None else [None] * len(metrics)
        if t.state == TrialState.PRUNED and t.intermediate_values:
            values = [t.intermediate_values[max(t.intermediate_values)]]
            state = f"pruned@{max(t.intermediate_values)}"
        else:
            state = t.state.name.lower()
        if t.number in front:
            state += " *"
        origin = retry_of(t)
        if origin is not None:
            state += f" (retry of {origin})"
        reason = [t.user_attrs.get(FAILURE_ATTR, "")] if failures else []
        rows.append(
            [
                str(t.number),
                state,
                *(metric_text(v) for v in values),
                *(_fmt(t.params.get(k)) for k in keys),
                t.user_attrs.get("run_dir", "-"),
                *reason,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    failed = sum(t.state == TrialState.FAIL for t in trials)
    lines.append(
        f"{len(complete)} complete, {pruned} pruned, {failed} failed, {len(trials)} trials in all"
    )
    if complete and multi:
        lines.append(f"Pareto front (*): trials {', '.join(str(n) for n in sorted(front))}")
    elif complete:
        lines.append(
            f"best: trial {study.best_trial.number}, {metrics[0]} {metric_text(study.best_value)}"
        )
    return "\n".join(lines)


def _complete(study: optuna.Study) -> bool:
    return any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The trial whose parameters this one runs again (its worker stopped), if any."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    if RETRY_ATTR in trial.user_attrs:
        return int(trial.user_attrs[RETRY_ATTR])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_results(study: optuna.Study, out_dir: Path) -> Path | None:
    """``optimization_results.yaml`` with the keys of Hydra's own Optuna sweeper (``name``;
    ``best_params`` and ``best_value``, or ``solutions`` for several objectives), and MIA's
    beside them (the study's name, the best trial's number)."""
    if not _complete(study):
        return None
    path = out_dir / "optimization_results.yaml"
    if len(study.directions) == 1:
        results = {
            "name": "optuna",
            "best_params": dict(study.best_trial.params),
            "best_value": float(study.best_value),
            "study_name": study.study_name,
            "best_trial": study.best_trial.number,
        }
    else:
        results = {
            "name": "optuna",
            "solutions": [
                {"params": dict(t.params), "values": [float(v) for v in t.values]}
                for t in study.best_trials
            ],
            "study_name": study.study_name,
            "pareto_trials": [t.number for t in study.best_trials],
        }
    path.write_text(yaml.safe_dump(results, sort_keys=False))
    return path


def save_plots(study: optuna.Study, out_dir: Path, metrics: Sequence[str]) -> list[Path]:
    """Optuna's optimization history, parallel coordinates and parameter importances (or, for
    several objectives, the Pareto front), as PNG. A plot that needs more finished trials
    than the study has is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    saved: list[Path] = []
    if not _complete(study):
        return saved  # every plot needs a complete trial
    if len(study.directions) > 1:
        plots = {"pareto_front": {"target_names": list(metrics)}}
    else:
        plots = {name: {"target_name": metrics[0]} for name in PLOTS}
    for name, kwargs in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = getattr(optuna_plots, f"plot_{name}")(study, **kwargs)
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                log.info("no %s plot: %s", name, err)
                continue
        figure = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        figure.set_size_inches(9, 5)
        figure.tight_layout()
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        saved.append(path)
    return saved
