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


def best_trial_overrides(name: str, storage: str) -> tuple[int, float, list[str]]:
    """The best complete trial's number, value and parameters (as Hydra overrides)."""
    from mia.sweeping.search_space import as_override

    study = open_study(name, storage)
    try:
        best = study.best_trial
    except ValueError:
        raise UserError(f"{STUDY_KEY}={name}: the study has no complete trial yet") from None
    overrides = [as_override(key, value) for key, value in best.params.items()]
    return best.number, best.value, overrides


def with_best_of(arguments: Sequence[str]) -> list[str]:
    """The command line with best_of=<study> expanded: the study's best parameters that the
    command line does not set itself, and best_of_trial=<number>. Unchanged without it."""
    name = _value(arguments, STUDY_KEY)
    if name in (None, "", "null"):
        return list(arguments)
    if _value(arguments, TRIAL_KEY) not in (None, "null"):
        raise UserError(f"{TRIAL_KEY} is set by {STUDY_KEY}; leave it off the command line")
    storage = _value(arguments, STORAGE_KEY) or DEFAULT_STORAGE
    number, value, overrides = best_trial_overrides(name, storage)
    given = _keys(arguments)
    kept = [o for o in overrides if o.partition("=")[0] not in given]
    print(
        f"{STUDY_KEY}={name}: trial {number} (value {value:.6g}) gives "
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
