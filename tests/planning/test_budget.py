"""budget_flops: the steps a compute budget buys, through the real train command and the
isoflop preset, and the sweep folder it leaves read back by the planner."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mia.cli.train import budget_steps, train
from mia.conf import compose
from mia.errors import UserError
from mia.model import ModelConfig
from mia.planning.flops import matmul_parameters, step_flops
from mia.planning.runs import read_sweep


@pytest.fixture
def plays(tmp_path) -> Path:
    rng = random.Random(0)
    words = [
        "to",
        "be",
        "or",
        "not",
        "that",
        "is",
        "the",
        "question",
        "whether",
        "tis",
        "nobler",
        "in",
        "mind",
    ]
    lines = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(600)]
    path = tmp_path / "plays.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def isoflop(plays: Path, tmp_path: Path, *overrides: str):
    return compose(
        "train",
        [
            "experiment=isoflop",
            "data=text",
            f"data.files=[{plays}]",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.output_dir={tmp_path / 'sweep' / '0'}",
            "data.batch_size=4",
            "data.block_size=16",
            "trainer.limit_val_batches=2",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
            *overrides,
        ],
    )


def test_a_budget_sets_the_steps_and_the_run_reports_its_flops(plays, tmp_path):
    cfg = isoflop(plays, tmp_path, "model.dim=8", "budget_flops=4e7")
    metrics = train(cfg)
    steps = int(metrics["train/steps"])
    assert cfg.trainer.max_steps == steps  # the schedule's horizon and validation follow
    config = ModelConfig.from_dict(
        {**{k: v for k, v in cfg.model.items() if k not in ("compile", "init_from")},
         "max_seq_len": 16, "vocab_size": 1}
    )  # fmt: skip
    vocab = (int(metrics["model/matmul_params"]) - matmul_parameters(config)) // 8 + 1
    per_step = step_flops(ModelConfig.from_dict({**config.to_dict(), "vocab_size": vocab}), 4, 16)
    assert steps == int(4e7 // per_step) >= 1
    assert 4e7 - per_step < metrics["train/flops"] <= 4e7
    assert metrics["train/tokens"] == steps * 4 * 16
    assert "val/loss" in metrics  # the one validation came at the last step
    # The finished job reads back as an IsoFLOP run of its family.
    (tmp_path / "sweep" / "0" / ".hydra").mkdir()
    (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").write_text(
        "- experiment=isoflop\n- model.dim=8\n- budget_flops=4e7\n"
    )
    sweep = read_sweep(tmp_path / "sweep")
    (run,) = sweep.runs
    assert (run.budget, run.width, run.steps, run.params) == (4e7, 8, steps, run.params)
    assert run.loss == pytest.approx(metrics["val/loss"])
    assert sweep.family.overrides == ["experiment=isoflop"]
    assert sweep.family.model["vocab_size"] == vocab
    assert json.loads((tmp_path / "sweep" / "0" / "metrics.json").read_text())["train/epochs"] > 0


def test_a_budget_short_of_one_step_is_refused_before_any_work(plays, tmp_path):
    cfg = isoflop(plays, tmp_path, "model.dim=64", "budget_flops=1e5")
    with pytest.raises(UserError, match=r"budget_flops=100000: buys less than one training step"):
        train(cfg)
    assert not (tmp_path / "cache").exists()  # no data was prepared
    assert budget_steps(isoflop(plays, tmp_path, "budget_flops=1e12")) > 1000
