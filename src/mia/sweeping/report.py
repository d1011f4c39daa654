"""What a search leaves behind: a table of its trials, the best trial in
``optimization_results.yaml``, and Optuna's own plots as PNG files."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

log = logging.getLogger(__name__)

PLOTS = ("optimization_history", "parallel_coordinate", "param_importances")


def _shown(trial: optuna.trial.FrozenTrial) -> bool:
    return not trial.user_attrs.get("mia:surplus")


def trials_table(study: optuna.Study, metric: str) -> str:
    """One row per trial: number, state, value (the last reported one for pruned trials),
    parameters and run folder."""
    trials = [t for t in study.get_trials(deepcopy=False) if _shown(t)]
    if not trials:
        return "no trials"
    keys = sorted({k for t in trials for k in t.params})
    header = ["trial", "state", metric, *keys, "run folder"]
    rows = []
    for t in trials:
        value = t.value
        if value is None and t.state == TrialState.PRUNED and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        if t.state == TrialState.PRUNED and t.intermediate_values:
            state = f"pruned@{max(t.intermediate_values)}"
        else:
            state = t.state.name.lower()
        origin = retry_of(t)
        if origin is not None:
            state += f" (retry of {origin})"
        rows.append(
            [
                str(t.number),
                state,
                "-" if value is None or not math.isfinite(value) else f"{value:.4f}",
                *(_fmt(t.params.get(k)) for k in keys),
                t.user_attrs.get("run_dir", "-"),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    lines.append(f"{len(complete)} complete, {pruned} pruned, {len(trials)} trials in all")
    if complete:
        lines.append(f"best: trial {study.best_trial.number}, {metric} {study.best_value:.4f}")
    return "\n".join(lines)


def retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The trial whose parameters this one runs again (its worker stopped), if any."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    if "mia:retry_of" in trial.user_attrs:
        return int(trial.user_attrs["mia:retry_of"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_best(study: optuna.Study, out_dir: Path) -> Path | None:
    """``optimization_results.yaml``: the study, its best parameters and value."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return None
    path = out_dir / "optimization_results.yaml"
    best = {
        "study_name": study.study_name,
        "best_trial": study.best_trial.number,
        "best_value": float(study.best_value),
        "best_params": dict(study.best_params),
    }
    path.write_text(yaml.safe_dump(best, sort_keys=False))
    return path


def save_plots(study: optuna.Study, out_dir: Path, metric: str = "Objective Value") -> list[Path]:
    """Optuna's optimization history, parallel coordinates and parameter importances, as PNG.
    A plot that needs more finished trials than the study has is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    saved: list[Path] = []
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return saved  # every plot needs a complete trial
    for name in PLOTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = getattr(optuna_plots, f"plot_{name}")(study, target_name=metric)
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
