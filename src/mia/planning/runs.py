"""The runs of an IsoFLOP sweep, read from its folder or from its results file.

A sweep folder holds one folder per job (`mia-train -m experiment=isoflop`): its
`settings.yaml`, `.hydra/overrides.yaml` and, once finished, `metrics.json`. A results file
(`docs/results/isoflop.json`) holds the same runs as rows (the format of `mia.results`) and
the family they belong to under ``family``, so a plan needs nothing but that file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mia.errors import UserError
from mia.model.config import ModelConfig
from mia.planning.flops import matmul_parameters

# The settings a sweep varies between its runs; everything else is the family.
SWEPT = ("budget_flops", "model.dim", "seed")
# Overrides of a job that belong to where it ran, not to what it trained.
PLACE = ("hydra.", "resume=", "ckpt_path=", "paths.")
COLUMNS = [
    "budget",
    "width",
    "depth",
    "params",
    "tokens",
    "steps",
    "flops",
    "val/loss",
    "seconds",
    "seed",
    "epochs",
]


@dataclass
class Run:
    """One finished run: its budget, size (N: `matmul_parameters`), tokens D, the FLOPs
    they cost, the val loss it reached and the seconds `fit` took."""

    budget: float
    width: int
    depth: int
    params: int
    tokens: int
    steps: int
    flops: float
    loss: float
    seconds: float
    seed: int
    epochs: float = 0.0

    def row(self) -> list[Any]:
        return [
            self.budget,
            self.width,
            self.depth,
            self.params,
            self.tokens,
            self.steps,
            self.flops,
            round(self.loss, 5),
            round(self.seconds, 2),
            self.seed,
            round(self.epochs, 4),
        ]


@dataclass
class Family:
    """What every run of the sweep shares: the command's fixed overrides, the model (its
    ModelConfig with the vocabulary size, at the first run's width), the tokens of a step
    and of the train split, the learning rate."""

    overrides: list[str]
    model: dict[str, Any]
    block_size: int
    batch_size: int
    tokens_per_step: int
    train_tokens: int
    lr: float
    metric: str = "val/loss"

    def config(self, width: int) -> ModelConfig:
        return ModelConfig.from_dict({**self.model, "dim": width})


@dataclass
class Sweep:
    runs: list[Run]
    family: Family
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def budgets(self) -> list[float]:
        return sorted({r.budget for r in self.runs})


def read_sweep(path: str | Path) -> Sweep:
    """The finished runs at `path`: a sweep folder or a results file."""
    where = Path(path)
    if not where.exists():
        raise UserError(
            f"from={path}: no such file or folder; give an IsoFLOP sweep folder "
            "or its results file (docs/results/isoflop.json)"
        )
    sweep = _read_results(where) if where.is_file() else _read_folder(where)
    if not sweep.runs:
        raise UserError(
            f"from={path}: no finished runs (metrics.json with val/loss and a "
            "budget_flops) in it; run mia-train -m experiment=isoflop first"
        )
    return sweep


def _read_results(path: Path) -> Sweep:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        columns = result["columns"]
        family = Family(**result["family"])
        index = {name: columns.index(name) for name in COLUMNS if name in columns}
        runs = [
            Run(
                budget=float(row[index["budget"]]),
                width=int(row[index["width"]]),
                depth=int(row[index["depth"]]),
                params=int(row[index["params"]]),
                tokens=int(row[index["tokens"]]),
                steps=int(row[index["steps"]]),
                flops=float(row[index["flops"]]),
                loss=float(row[index["val/loss"]]),
                seconds=float(row[index["seconds"]]),
                seed=int(row[index["seed"]]),
                epochs=float(row[index["epochs"]]) if "epochs" in index else 0.0,
            )
            for row in result["rows"]
            if row[index["val/loss"]] is not None
        ]
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"from={path}: not an IsoFLOP results file ({type(err).__name__}: {err}); give "
            "a sweep folder or a file written by scripts/isoflop.py"
        ) from None
    extra = {k: v for k, v in result.items() if k in ("fit", "check")}
    return Sweep(runs, family, str(path), extra)


def _read_folder(folder: Path) -> Sweep:
    runs: list[Run] = []
    families: list[Family] = []
    for metrics_file in sorted(folder.rglob("metrics.json")):
        job = metrics_file.parent
        read = _read_job(job, metrics_file)
        if read is not None:
            runs.append(read[0])
            families.append(read[1])
    if not runs:
        return Sweep([], Family([], {}, 0, 0, 0, 0, 0.0), str(folder))
    family = families[0]
    for other, run in zip(families[1:], runs[1:], strict=True):
        if other.overrides != family.overrides or _shape(other) != _shape(family):
            raise UserError(
                f"from={folder}: the runs are not one family (a run of width {run.width} has "
                f"{' '.join(other.overrides)!r}, another {' '.join(family.overrides)!r}); "
                "mia-plan plans along the width of one IsoFLOP sweep"
            )
    return Sweep(runs, family, str(folder))


def _shape(family: Family) -> dict[str, Any]:
    return {k: v for k, v in family.model.items() if k != "dim"}


def _read_job(job: Path, metrics_file: Path) -> tuple[Run, Family] | None:
    """A finished job's run and family, or None where it is not an IsoFLOP run."""
    settings_file = job / "settings.yaml"
    if not settings_file.is_file():
        settings_file = job / ".hydra" / "config.yaml"
    if not settings_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    cfg = OmegaConf.load(settings_file)
    budget = OmegaConf.select(cfg, "budget_flops", default=None)
    needed = ("val/loss", "model/matmul_params", "train/tokens", "train/flops", "time/fit_s")
    if budget is None or any(k not in metrics for k in needed):
        return None
    model = {
        k: v
        for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
        if k not in ("compile", "init_from")
    }
    model["vocab_size"] = _vocab_size(model, int(metrics["model/matmul_params"]))
    block, batch = int(cfg.data.block_size), int(cfg.data.batch_size)
    tokens = int(metrics["train/tokens"])
    epochs = float(metrics.get("train/epochs", 0.0))
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = (
        OmegaConf.to_container(OmegaConf.load(overrides_file)) if overrides_file.is_file() else []
    )
    fixed = [
        o
        for o in overrides
        if o.split("=", 1)[0].lstrip("+~") not in SWEPT and not o.startswith(PLACE)
    ]
    steps = int(metrics.get("train/steps", 0)) or tokens // (block * batch)
    run = Run(
        budget=float(budget),
        width=int(model["dim"]),
        depth=int(model["n_layers"]),
        params=int(metrics["model/matmul_params"]),
        tokens=tokens,
        steps=steps,
        flops=float(metrics["train/flops"]),
        loss=float(metrics["val/loss"]),
        seconds=float(metrics["time/fit_s"]),
        seed=int(cfg.seed),
        epochs=epochs,
    )
    family = Family(
        overrides=fixed,
        model=model,
        block_size=block,
        batch_size=batch,
        tokens_per_step=tokens // steps if steps else block * batch,
        train_tokens=round(tokens / epochs) if epochs else 0,
        lr=float(cfg.optimizer.lr),
    )
    return run, family


def _vocab_size(model: dict[str, Any], matmul_params: int) -> int:
    """The vocabulary, from the run's matmul parameters: the output head is its only term
    that grows with it (dim weights per token id)."""
    one = matmul_parameters(ModelConfig.from_dict({**model, "vocab_size": 1}))
    return (matmul_params - one) // int(model["dim"]) + 1


def family_dict(family: Family) -> dict[str, Any]:
    return asdict(family)
