"""``hydra/sweeper=mia_basic``, MIA's default for ``-m``: Hydra's basic sweeper, except that
every job is checked before anything is written (its settings, and ``resume=true``'s
folder), a failed job does not end the sweep with a traceback (the other jobs run; the
sweep ends with a table that names each failure, and exit status 1), and Ctrl-C or SIGTERM
ends it in one line that names the command finishing the grid (see `mia.sweeping.grid`)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mia.errors import reports_user_errors
from mia.sweeping.grid import check_jobs, end_of_grid, interrupted_grid
from mia.sweeping.interruption import sigterm_as_ctrl_c


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
        params = [*self._parse_config(), *arguments]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params), self.max_batch_size)
        jobs = [job for batch in self.overrides for job in batch]
        # Before Hydra writes anything: a bad value in any job, or a job folder that ran
        # other settings, is refused.
        reports_user_errors(check_jobs)(self.hydra_context, self.config, jobs)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        return reports_user_errors(self._run_jobs)(sweep_dir)

    def _run_jobs(self, sweep_dir: Path) -> Any:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        initial_job_idx = 0
        try:
            with sigterm_as_ctrl_c():
                while not self.is_done():
                    batch = self.get_job_batch()
                    self.validate_batch_is_legal(batch)
                    returns.append(self.launcher.launch(batch, initial_job_idx=initial_job_idx))
                    initial_job_idx += len(batch)
        except KeyboardInterrupt:  # a job's own message would continue that job alone
            raise interrupted_grid(sweep_dir) from None
        end_of_grid(sweep_dir, [r for batch in returns for r in batch])  # exit 1 on failures
        return returns
