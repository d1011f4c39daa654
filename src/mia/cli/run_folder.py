"""Checks before Hydra writes a run folder, and a refused command leaving it as it was.

Hydra writes the run folder's records (``.hydra/config.yaml``, ``hydra.yaml``,
``overrides.yaml``) and opens its log before the command's body runs, yet some refusals
can only come from the body (``ckpt_path`` holding another model needs the data's
vocabulary). So `GuardRunFolder`, a Hydra callback, notes the folder's state before
Hydra touches it, and `restore_run_folder` puts it back when the body refuses the run: the
records' bytes as they were, logs cut back to their length, a folder that was not there
removed. The callback also refuses, before anything is written, a run folder that cannot
be created and a ``+key=value`` that no part of MIA reads.
"""

from __future__ import annotations

import inspect
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mia.conf import CONF_DIR
from mia.folders import folder_problem


@dataclass
class FolderState:
    folder: Path
    first_existing: Path  # the folder itself, or the nearest ancestor that existed
    records: dict[str, bytes] = field(default_factory=dict)  # .hydra/<name>: bytes
    sizes: dict[str, int] = field(default_factory=dict)  # <name> in the folder: size


# Run folder -> its state before Hydra wrote to it (one entry per single run).
_before: dict[Path, FolderState] = {}


def note_folder(folder: Path) -> FolderState:
    folder = folder.absolute()
    first = folder
    while not first.exists():
        first = first.parent
    state = FolderState(folder, first)
    if first == folder:
        hydra_dir = folder / ".hydra"
        if hydra_dir.is_dir():
            state.records = {p.name: p.read_bytes() for p in hydra_dir.iterdir() if p.is_file()}
        state.sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    _before[folder] = state
    return state


def restore_run_folder(folder: str | Path) -> None:
    """Put `folder` back as `note_folder` found it (nothing, if it was not noted)."""
    state = _before.pop(Path(folder).absolute(), None)
    if state is None or not state.folder.exists():
        return
    if state.first_existing != state.folder:  # created by this run: remove what was made
        top = state.folder
        while top.parent != state.first_existing:
            top = top.parent
        shutil.rmtree(top, ignore_errors=True)
        return
    hydra_dir = state.folder / ".hydra"
    if hydra_dir.is_dir():
        for path in hydra_dir.iterdir():
            if path.name in state.records:
                path.write_bytes(state.records[path.name])
            elif path.is_file():
                path.unlink()
        if not state.records and not any(hydra_dir.iterdir()):
            hydra_dir.rmdir()
    for path in state.folder.iterdir():
        if not path.is_file() or path.name == ".hydra":
            continue
        if path.name not in state.sizes:
            path.unlink()
        elif path.stat().st_size > state.sizes[path.name]:
            with path.open("r+b") as handle:
                handle.truncate(state.sizes[path.name])


# --- keys no part of MIA reads ----------------------------------------------------------------


def _target_accepts(target: Any, name: str) -> bool:
    """Whether the callable `_target_` names takes a keyword `name` (True if unknown)."""
    from hydra.utils import get_method

    try:
        parameters = inspect.signature(get_method(str(target))).parameters.values()
    except Exception:  # not importable here, or no signature: leave it to instantiation
        return True
    return any(p.kind is p.VAR_KEYWORD or p.name == name for p in parameters)


def _in_group_options(key: str) -> bool:
    """Whether some option of the key's config group (conf/<group>/*.yaml) has the key."""
    group, _, rest = key.partition(".")
    folder = CONF_DIR / group
    if not rest or not folder.is_dir():
        return False
    for option in folder.glob("*.yaml"):
        node = OmegaConf.load(option)
        if OmegaConf.select(node, rest, default=None, throw_on_missing=False) is not None:
            return True
    return False


def unread_hydra_key(config: DictConfig, key: str, single_run: bool) -> bool:
    """``hydra.sweeper.<name>`` or ``hydra.launcher.<name>`` added with ``+``: read only by
    the sweeper's or launcher's `_target_` (the basic sweeper has no ``n_jobs``), and by
    nothing in a single run, which has no sweeper. Other ``hydra.*`` keys are Hydra's."""
    _, part, *rest = key.split(".")
    if part not in ("sweeper", "launcher") or len(rest) != 1:
        return False
    if part == "sweeper" and single_run:
        return True
    node = OmegaConf.select(config, f"hydra.{part}", default=None)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return False
    return not rest[0].startswith("_") and not _target_accepts(node._target_, rest[0])


def unread_key(config: DictConfig, key: str, single_run: bool = True) -> bool:
    """A key added with ``+key=value`` that no part of MIA reads: not in any option of its
    config group, and not a keyword of the `_target_` of the node it was added to."""
    if key.startswith("hydra."):
        return unread_hydra_key(config, key, single_run)
    if _in_group_options(key):
        return False
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        node = OmegaConf.select(config, ".".join(parts[:depth]), default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            name = parts[depth]
            return not name.startswith("_") and not _target_accepts(node._target_, name)
    return True


def unread_additions(config: DictConfig, single_run: bool = True) -> list[str]:
    """The ``+key=value`` overrides (not ``+group=option``) whose key nothing reads, of the
    run's settings and of Hydra's own (``+hydra.sweeper.<name>``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    given = [*config.hydra.overrides.task, *config.hydra.overrides.hydra]
    overrides = OverridesParser.create().parse_overrides(list(given))
    unread = []
    for override in overrides:
        key = override.key_or_group
        if override.type is not OverrideType.ADD or override.package is not None:
            continue
        if (CONF_DIR / key.replace(".", "/")).is_dir():
            continue  # +group=option
        if unread_key(config, key, single_run):
            unread.append(override.input_line)
    return unread


class GuardRunFolder(Callback):
    """Before Hydra writes a single run's folder: refuse a folder that cannot be created and
    keys nothing reads, in one line and exit status 2; note the folder's state."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        problem = folder_problem(folder)
        if problem:
            _refuse(f"hydra.run.dir={folder} {problem}; give another run folder")
        refuse_unread_additions(config, single_run=True)
        note_folder(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Before the sweeper writes its folder; the jobs' own keys are checked as they run.
        refuse_unread_additions(config, single_run=False, prefix="hydra.")


def refuse_unread_additions(config: DictConfig, single_run: bool, prefix: str = "") -> None:
    """Refuse the first ``+key=value`` (of keys starting with `prefix`) that nothing reads,
    naming the keys that are read."""
    for line in unread_additions(config, single_run):
        key = line.partition("=")[0].lstrip("+")
        if not key.startswith(prefix):
            continue
        if key.startswith("hydra.sweeper.") and single_run:
            _refuse(
                f"{line}: a single run has no sweeper, so nothing reads {key}; sweep with -m "
                "(or hparams_search=optuna), or drop it"
            )
        parent = key.rpartition(".")[0]
        node = OmegaConf.select(config, parent, default=None) if parent else config
        known = ""
        if isinstance(node, DictConfig):
            names = [
                k
                for k in node
                if k != key.rpartition(".")[2] and k != "hydra" and not str(k).startswith("_")
            ]
            known = f" ({parent or 'top-level'} keys: {', '.join(map(str, names))})"
        _refuse(
            f"{line}: no part of mia-{config.get('task_name')} reads {key}; check its "
            f"spelling{known}"
        )


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
