"""`mia-train best_of=<study>`: a run with the settings of an Optuna study's best trial.

The best trial's parameters become command-line overrides, so Hydra composes the run as if
the user had typed them (config-group choices included) and the run folder's
.hydra/overrides.yaml lists them. The user's own overrides win: a study parameter that the
command line also sets is left out. The run records where its settings came from in
`best_of_trial` (and `best_of`, `best_of_storage`), which its config and TensorBoard's
HParams show.

    mia-train best_of=train-1a2b3c4d model.dim=1024 trainer.max_steps=5000
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mia.errors import UserError, reports_user_errors

# The storage hparams_search=optuna writes to unless told otherwise (conf/hparams_search).
DEFAULT_STORAGE = "sqlite:///outputs/optuna.db"
STUDY_KEY, STORAGE_KEY, TRIAL_KEY = "best_of", "best_of_storage", "best_of_trial"
OBJECTIVE_KEY = "best_of_objective"  # which objective picks from a Pareto front


def _value(arguments: Sequence[str], key: str) -> str | None:
    """The value of `key=...` on the command line (the last one wins, as in Hydra)."""
    found = None
    for argument in arguments:
        name, sep, value = argument.lstrip("+").partition("=")
        if sep and name == key:
            found = value.strip("'\"")
    return found


def _keys(arguments: Sequence[str]) -> set[str]:
    """The config keys (or groups) that the command line's overrides set."""
    keys = set()
    for argument in arguments:
        if argument.startswith("-") or "=" not in argument:
            continue
        name = argument.partition("=")[0].lstrip("+~")
        keys.add(name.split("@", 1)[0])
    return keys


def open_study(name: str, storage: str):  # -> optuna.Study
    """The study `name` in the database `storage`, or a one-line UserError; a missing SQLite
    file is refused, not created."""
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    label = f"{STUDY_KEY}={name}"
    try:
        url = make_url(storage)
    except ArgumentError:
        raise UserError(f"{STORAGE_KEY}={storage}: not a database URL") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or not Path(database).expanduser().is_file():
            raise UserError(
                f"{label}: no study database at {storage}; give the search's "
                f"hydra.sweeper.storage as {STORAGE_KEY}=..."
            )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        names = optuna.get_all_study_names(storage)
    except Exception as err:  # the driver's own error types vary
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{STORAGE_KEY}={storage}: cannot read the database ({reason})") from None
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise UserError(f"{label}: no such study in {storage} (its studies: {known})")
    return optuna.load_study(study_name=name, storage=storage)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _values(trial: Any, metrics: Sequence[str]) -> str:
    return ", ".join(f"{m} {_number(v)}" for m, v in zip(metrics, trial.values, strict=True))


def metric_names(study: Any) -> list[str]:
    """The study's objectives by name (a MIA search names them; others get objective i)."""
    n = len(study.directions)
    names = list(study.metric_names or []) if hasattr(study, "metric_names") else []
    return (
        names if len(names) == n else [f"objective {i}" for i in range(n)] if n > 1 else ["value"]
    )


def best_trial(study: Any, name: str, objective: str | None) -> tuple[Any, str]:
    """The study's best complete trial and its values in words; for a study of several
    objectives, the trial of its Pareto front that is best in `objective`, which must be
    given (else the refusal lists the front and how to choose)."""
    metrics = metric_names(study)
    if objective not in (None, "", "null") and objective not in metrics:
        raise UserError(
            f"{OBJECTIVE_KEY}={objective}: study '{name}' optimised {', '.join(metrics)}; "
            "name one of them"
        )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        raise UserError(f"{STUDY_KEY}={name}: the study has no complete trial yet")
    if len(metrics) == 1:
        best = study.best_trial
        return best, f"value {_number(best.value)}"
    front = sorted(study.best_trials, key=lambda t: t.number)
    if objective in (None, "", "null"):
        listed = "; ".join(f"trial {t.number} ({_values(t, metrics)})" for t in front)
        raise UserError(
            f"{STUDY_KEY}={name}: the study has {len(metrics)} objectives, so no single best "
            f"trial; its Pareto front: {listed}; choose by one objective with "
            f"{OBJECTIVE_KEY}=<{'|'.join(metrics)}>"
        )
    index = metrics.index(objective)
    sign = 1 if study.directions[index].name == "MINIMIZE" else -1
    best = min(front, key=lambda t: (sign * t.values[index], t.number))
    return best, _values(best, metrics)


def best_trial_overrides(
    name: str, storage: str, objective: str | None = None
) -> tuple[int, str, list[str]]:
    """The best complete trial's number, its values in words, and its parameters (as Hydra
    overrides); see `best_trial` for a study of several objectives."""
    from mia.sweeping.search_space import as_override  # imports Optuna

    best, values = best_trial(open_study(name, storage), name, objective)
    overrides = [as_override(key, value) for key, value in best.params.items()]
    return best.number, values, overrides


def next_step(study_name: str, storage: str, metrics: Sequence[str], experiment: str | None) -> str:
    """The command that trains with a finished search's best settings."""
    args = [f"{STUDY_KEY}={study_name}"]
    if storage != DEFAULT_STORAGE:
        args.append(f"{STORAGE_KEY}={storage}")
    if len(metrics) > 1:
        args.append(f"{OBJECTIVE_KEY}={metrics[0]}")
    if experiment:
        args.append(f"experiment={experiment}")
    more = f" (or {OBJECTIVE_KEY}={'|'.join(metrics[1:])})" if len(metrics) > 1 else ""
    return f"next: train with the best settings: mia-train {' '.join(args)}{more}"


def with_best_of(arguments: Sequence[str]) -> list[str]:
    """The command line with best_of=<study> expanded: the study's best parameters that the
    command line does not set itself, and best_of_trial=<number>. Unchanged without it."""
    name = _value(arguments, STUDY_KEY)
    if name in (None, "", "null"):
        return list(arguments)
    if _value(arguments, TRIAL_KEY) not in (None, "null"):
        raise UserError(f"{TRIAL_KEY} is set by {STUDY_KEY}; leave it off the command line")
    storage = _value(arguments, STORAGE_KEY) or DEFAULT_STORAGE
    objective = _value(arguments, OBJECTIVE_KEY)
    number, values, overrides = best_trial_overrides(name, storage, objective)
    given = _keys(arguments)
    kept = [o for o in overrides if o.partition("=")[0] not in given]
    print(
        f"{STUDY_KEY}={name}: trial {number} ({values}) gives "
        f"{' '.join(kept) or 'nothing the command line does not set'}",
        file=sys.stderr,
        flush=True,
    )
    return [*arguments, *kept, f"{TRIAL_KEY}={number}"]


def check_expanded(cfg: Any) -> None:
    """best_of set where the command line was not expanded (an experiment file, or `train`
    called with a composed config): refuse rather than train without the study's settings."""
    if cfg.get(STUDY_KEY) and cfg.get(TRIAL_KEY) is None:
        raise UserError(
            f"{STUDY_KEY}={cfg.get(STUDY_KEY)}: give it on mia-train's command line (it is "
            "read before the config is composed)"
        )


def expands_best_of(main: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a Hydra command's entry point: expand best_of=<study> in sys.argv first (a user's
    mistake there is one line and exit status 2, like every other)."""

    @functools.wraps(main)
    def wrapper() -> Any:
        if any(a.lstrip("+").startswith(f"{STUDY_KEY}=") for a in sys.argv[1:]):
            sys.argv[1:] = reports_user_errors(with_best_of)(sys.argv[1:])
        return main()

    return wrapper
