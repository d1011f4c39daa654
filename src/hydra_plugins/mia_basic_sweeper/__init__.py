"""``hydra/sweeper=mia_basic``, MIA's default for ``-m``: Hydra's basic sweeper, except that
a failed job does not end the sweep with a traceback (the other jobs run; the sweep ends
with a table that names each failure, and exit status 1), and ``resume=true`` is checked
for every job before anything is written (see `mia.sweeping.grid`)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf


@dataclass
class MiaBasicSweeperConf:
    _target_: str = "hydra_plugins.mia_basic_sweeper.MiaBasicSweeper"
    max_batch_size: Any = None
    params: Any = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="mia_basic", node=MiaBasicSweeperConf, provider="mia"
)


class MiaBasicSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from mia.errors import reports_user_errors
        from mia.sweeping.grid import end_of_grid, refuse_changed_resumes

        params = [*self._parse_config(), *arguments]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params), self.max_batch_size)
        jobs = [job for batch in self.overrides for job in batch]
        # Before Hydra writes anything: a job folder that ran other settings is refused.
        reports_user_errors(refuse_changed_resumes)(self.hydra_context, self.config, jobs)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        initial_job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            returns.append(self.launcher.launch(batch, initial_job_idx=initial_job_idx))
            initial_job_idx += len(batch)
        end_of_grid(sweep_dir, [r for batch in returns for r in batch])  # exit 1 on failures
        return returns
