"""A Hydra app with a known optimum, for testing the sweeper without training anything:
``x**2 + y**2`` (or, with ``objectives=2``, two competing objectives)."""

import math

import hydra
from omegaconf import DictConfig

from mia.errors import UserError


@hydra.main(version_base=None, config_path=".", config_name="toy")
def toy(cfg: DictConfig):
    if cfg.fail_when_x_is is not None and cfg.x == cfg.fail_when_x_is:
        raise UserError(f"x={cfg.x} is refused")
    if cfg.nan_when_x_is is not None and cfg.x == cfg.nan_when_x_is:
        return math.nan
    if cfg.objectives == 2:
        return 4 * cfg.x**2 + 4 * cfg.y**2, (cfg.x - 5) ** 2 + (cfg.y - 5) ** 2
    return cfg.x**2 + cfg.y**2


def box(cfg: DictConfig, trial) -> None:
    """A custom search space: z within 0.5 of x."""
    x = trial.params["x"]
    trial.suggest_float("+z", x - 0.5, x + 0.5)


if __name__ == "__main__":
    toy()
