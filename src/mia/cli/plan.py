"""mia-plan: the model, tokens, steps and rate to train at a compute budget, the val loss it
should reach, and the command that trains it, from an IsoFLOP sweep."""

from __future__ import annotations

import json
import sys

from omegaconf import DictConfig

from mia.cli.command import hydra_command
from mia.errors import UserError
from mia.planning.plan import make_plan
from mia.planning.runs import read_sweep

FORMATS = ("text", "json")


def plan(cfg: DictConfig) -> dict:
    """Print the plan for cfg.budget from the sweep at cfg.from; return its values."""
    if cfg.format not in FORMATS:
        raise UserError(f"format={cfg.format}: must be one of {', '.join(FORMATS)}")
    if not (isinstance(cfg.confidence, float) and 0 < cfg.confidence < 1):
        raise UserError(f"confidence={cfg.confidence}: must be a number in (0, 1)")
    if not (isinstance(cfg.bootstrap, int) and cfg.bootstrap >= 10):
        raise UserError(f"bootstrap={cfg.bootstrap}: must be an integer >= 10")
    budget = cfg.budget
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        raise UserError(f"budget={budget}: must be a number of FLOPs > 0, e.g. budget=1e12")
    sweep = read_sweep(str(cfg["from"]))
    result = make_plan(sweep, float(budget), cfg.confidence, cfg.bootstrap)
    for line in result.warnings:
        print(line, file=sys.stderr)
    if cfg.format == "json":
        print(json.dumps(result.values, indent=1))
    else:
        print(result.text())
    return result.values


@hydra_command("plan")
def main(cfg: DictConfig) -> None:
    plan(cfg)


if __name__ == "__main__":
    main()
