"""How a command starts: a Hydra app whose config mistakes end in one line and exit status 2.

Hydra reports an override it cannot apply (a misspelt key, an unknown config option, bad
override syntax) in several lines, ends with a hint about ``HYDRA_FULL_ERROR`` and exits
with status 1. A command built with `hydra_command` prints that mistake as one
``error: ...`` line and exits with status 2, as `mia.errors` does for every other mistake.
A user who sets ``HYDRA_FULL_ERROR=1`` gets Hydra's full trace, as before.

The commands import torch and Lightning inside their functions, not at the top, so a
mistake found while composing the config is reported in about a second, not after the
several seconds those imports take.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

from mia.cli.run_folder import restore_run_folder
from mia.conf import CONF_DIR
from mia.errors import INTERRUPTED_STATUS, UserError, reports_user_errors
from mia.lightning_tips import silence_lightning_tips
from mia.sweeping.ddp import in_multirun
from mia.termination import Terminated, guard_sigterm

_FULL_ERROR = "HYDRA_FULL_ERROR"


def one_line(message: str) -> str:
    """Hydra's multi-line report of a config mistake as one line: its lines as sentences,
    an indented list (of available options) comma-separated after its heading, and the
    list of where configs were searched left out."""
    sentences: list[str] = []
    for raw in message.splitlines():
        line = raw.strip()
        if line.startswith("Config search path"):
            break
        if not line:
            continue
        if raw[:1] in ("\t", " ") and sentences and sentences[-1].endswith((":", ",")):
            sentences[-1] += " " + line + ","
            continue
        if sentences and sentences[-1].endswith(","):
            sentences[-1] = sentences[-1][:-1] + "."
        elif sentences and not sentences[-1].endswith((".", ":", "!", "?")):
            sentences[-1] += "."
        sentences.append(line)
    if sentences and sentences[-1].endswith(","):
        sentences[-1] = sentences[-1][:-1]
    return " ".join(sentences)


def quoting_hint(override: str) -> str:
    """How to pass a value that Hydra's override grammar cannot read unquoted (accents,
    spaces, most punctuation): quoted for Hydra, inside quotes for the shell."""
    key, sep, value = override.partition("=")
    if not sep or value[:1] in ("'", '"', "[", "{") or "'" in value:
        return ""
    inner = value.replace("\\", "\\\\").replace('"', '\\"')
    return f"; to pass it as text, quote the value for Hydra and the shell: '{key}=\"{inner}\"'"


SWEEPER_PARAMS = "hydra.sweeper.params."


def sweeper_params_as_sweeps(arguments: list[str]) -> list[str]:
    """``[+]hydra.sweeper.params.<key>=<sweep>`` as ``<key>=<sweep>``: Hydra refuses a sweep
    over its own config, and a sweep of a key on the command line is what both sweepers read
    as that key's range (so a misspelt key gets the search's "did you mean")."""
    parser = OverridesParser.create()
    rewritten = []
    for argument in arguments:
        key, sep, value = argument.lstrip("+").partition("=")
        if sep and key.startswith(SWEEPER_PARAMS) and len(key) > len(SWEEPER_PARAMS):
            try:
                sweep = parser.parse_override(f"{key}={value}").is_sweep_override()
            except HydraException:
                sweep = False  # Hydra reports it as it would
            if sweep:
                argument = f"{key.removeprefix(SWEEPER_PARAMS)}={value}"
        rewritten.append(argument)
    return rewritten


def hydra_command(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Turn ``body(cfg)`` into a console command over ``conf/<config_name>.yaml``.

    The body runs under `reports_user_errors`. While Hydra composes the config,
    ``HYDRA_FULL_ERROR`` is set so that a composition error reaches this wrapper as an
    exception instead of Hydra's printout; the body unsets it first thing, so errors raised
    while it runs, and the processes it starts, are reported by Hydra as before.
    """

    def wrap(body: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        checked = reports_user_errors(body)
        owned = {"env": False}

        @functools.wraps(body)
        def task(cfg: DictConfig) -> Any:
            if owned["env"]:
                os.environ.pop(_FULL_ERROR, None)
                owned["env"] = False
            silence_lightning_tips()  # Lightning's advertisements, on every run
            if in_multirun():  # a job's mistake fails that job; the sweeper reports it
                return body(cfg)
            try:
                return checked(cfg)
            except SystemExit as refused:
                if refused.code == 2 and HydraConfig.initialized():  # a refused run
                    restore_run_folder(HydraConfig.get().runtime.output_dir)
                raise

        app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(
            task
        )

        @functools.wraps(body)
        def main() -> Any:
            from hydra.errors import HydraException, OverrideParseException
            from omegaconf.errors import OmegaConfBaseException

            guard_sigterm()  # SIGTERM ends the command within seconds, whatever it is doing
            sys.argv[1:] = sweeper_params_as_sweeps(sys.argv[1:])
            owned["env"] = _FULL_ERROR not in os.environ
            if owned["env"]:
                os.environ[_FULL_ERROR] = "1"
            try:
                return app()
            except (HydraException, OmegaConfBaseException) as err:
                if not owned["env"]:
                    raise  # the body had started: not a config mistake
                where = f"{err.override}: " if isinstance(err, OverrideParseException) else ""
                hint = quoting_hint(err.override) if "Lexer" in str(err) else ""
                print(f"error: {where}{one_line(str(err))}{hint}", file=sys.stderr)
                sys.exit(2)
            except UserError as err:  # raised by a sweeper or launcher, outside the body
                print(f"error: {err}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (`Terminated`)
                if not owned["env"]:
                    if not isinstance(err, Terminated):
                        raise  # the body had started and reported it
                    print("terminated", file=sys.stderr)  # a sweep's jobs had started
                else:
                    stopped = "terminated" if isinstance(err, Terminated) else "interrupted"
                    print(f"{stopped}; nothing was written", file=sys.stderr)
                sys.exit(INTERRUPTED_STATUS)
            finally:
                if owned["env"]:
                    os.environ.pop(_FULL_ERROR, None)
                    owned["env"] = False

        return main

    return wrap
