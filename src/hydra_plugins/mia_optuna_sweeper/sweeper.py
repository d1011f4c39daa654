"""``hydra/sweeper=mia_optuna``: a thin Hydra shell over `mia.sweeping.search.run_search`."""

import importlib.util
import sys
import types
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from mia.errors import reports_user_errors
from mia.sweeping.interruption import continue_with, sigterm_as_ctrl_c


class MiaOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    @reports_user_errors
    def sweep(self, arguments: list[str]) -> None:
        from mia.sweeping.search import run_search  # Optuna: imported only for a search

        try:
            with sigterm_as_ctrl_c():
                run_search(self.settings, arguments, self.config, self.launcher)
        except KeyboardInterrupt:  # the study holds the search: the same command continues it
            raise continue_with() from None


def _official_plugin_installed() -> bool:
    try:
        return importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
    except (ImportError, ValueError):
        return False


if not _official_plugin_installed():

    class OptunaSweeper(MiaOptunaSweeper):
        """Where Hydra's own Optuna sweeper is not installed, a search file that names its
        class (``_target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper``,
        as the lightning-hydra-template's do) gets this sweeper instead: Hydra finds it under
        that name among the discovered plugins, and imports it from that module path."""

    _ALIAS = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper"
    OptunaSweeper.__module__ = _ALIAS
    _package = types.ModuleType(_ALIAS.rsplit(".", 1)[0])
    _module = types.ModuleType(_ALIAS)
    _module.OptunaSweeper = OptunaSweeper
    _package.optuna_sweeper = _module
    sys.modules.setdefault(_package.__name__, _package)
    sys.modules.setdefault(_ALIAS, _module)
