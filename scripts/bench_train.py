#!/usr/bin/env python
"""What Lightning and MIA's training module cost per step, against a bare PyTorch loop.

Runs the same `Decoder`, the same batches (the run's own TextDataModule) and the same
optimizer and schedule twice: in a bare loop (forward, loss, backward, clipping, optimizer
and scheduler steps), and through `mia-train`'s pieces (LanguageModel, Lightning's Trainer
and the callbacks of conf/callbacks, with checkpoints and TensorBoard logging). Times only
the training steps (no validation, data preparation or start-up), alternates the two,
and prints each run, the medians and the overhead.

    python scripts/bench_train.py                  # nanogpt_baby_llama, 2,000 steps
    python scripts/bench_train.py --steps 300 --repeats 3 experiment=speedrun_cpu
    python scripts/bench_train.py --steps 100 experiment=shakespeare_cpu model.compile=true
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Timer
from omegaconf import DictConfig, OmegaConf

from mia.cli.train import build_datamodule, language_model, model_settings
from mia.conf import compose
from mia.model import Decoder, ModelConfig
from mia.planning.flops import step_flops
from mia.results import add_results_argument, make_result, save
from mia.training.module import compile_cached, next_token_loss
from mia.training.optim import LrSchedule, build_optimizer
from mia.training.precision import use_run_precision

REPO = Path(__file__).resolve().parents[1]
TINY_SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs, alternated")
    p.add_argument("--data", type=Path, default=TINY_SHAKESPEARE, help="Tiny Shakespeare")
    p.add_argument("overrides", nargs="*", help="mia-train overrides (experiment=...)")
    add_results_argument(p, "bench_train")
    return p.parse_args()


def config(args: argparse.Namespace, out: Path) -> DictConfig:
    overrides = args.overrides or ["experiment=nanogpt_baby_llama"]
    if "path" in compose("train", overrides).data:  # a corpus read from a file
        overrides = [f"data.path={args.data}", *overrides]
    cfg = compose(
        "train",
        [
            *overrides,
            f"trainer.max_steps={args.steps}",
            f"trainer.val_check_interval={args.steps}",
            "trainer.limit_val_batches=0",  # training steps only
            "test=false",
            f"paths.output_dir={out}",
            "callbacks.progress_bar=null",  # a log line per 50 steps in a terminal-less run
            "callbacks.text_samples=null",  # generation is not a training step
        ],
    )
    use_run_precision(cfg.trainer)  # as mia-train does
    return cfg


def lightning_run(cfg: DictConfig, dm) -> float:
    """Seconds of `steps` training steps through LanguageModel, Trainer and callbacks."""
    L.seed_everything(cfg.seed, verbose=False)
    module = language_model(cfg, dm, model_settings(cfg, dm.vocab_size))
    timer = Timer()
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    trainer = instantiate(
        cfg.trainer,
        callbacks=[*callbacks, timer],
        logger=instantiate(cfg.logger),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    return timer.time_elapsed("train")


def bare_run(cfg: DictConfig, dm) -> float:
    """Seconds of the same steps in a plain loop over the same decoder and batches."""
    L.seed_everything(cfg.seed, verbose=False)
    model = Decoder(ModelConfig.from_dict(model_settings(cfg, dm.vocab_size)))
    opt_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    sched = cfg.scheduler
    optimizer = build_optimizer(model, opt_cfg)
    schedule = LrSchedule(
        opt_cfg["lr"],
        sched.warmup_steps,
        sched.decay_steps or cfg.trainer.max_steps,
        opt_cfg["lr"] * sched.min_lr_ratio,
        sched.name,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    bf16 = "bf16" in str(cfg.trainer.precision)
    clip = cfg.trainer.gradient_clip_val or float("inf")

    def decoder_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return next_token_loss(model(x), y)

    # As Lightning does for trainer.deterministic (it would otherwise carry over from the
    # Lightning run before), and as LanguageModel does: the decoder and its loss compiled
    # as one graph.
    deterministic = cfg.trainer.deterministic  # true, false, null or "warn"
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=deterministic == "warn")
    step_loss = compile_cached(decoder_loss) if cfg.model.compile else decoder_loss
    batches = iter(dm.train_dataloader())
    model.train()
    start = time.perf_counter()
    for _ in range(cfg.trainer.max_steps):
        x, y = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = step_loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="mia-bench-train-") as tmp:
        cfg = config(args, Path(tmp) / "run")
        dm = build_datamodule(cfg)
        shape = (cfg.data.batch_size, cfg.data.block_size)
        flops = step_flops(ModelConfig.from_dict(model_settings(cfg, dm.vocab_size)), *shape)
        times: dict[str, list[float]] = {"bare loop": [], "mia-train (Lightning)": []}
        for i in range(args.repeats):
            for name, run in (("bare loop", bare_run), ("mia-train (Lightning)", lightning_run)):
                cfg = config(args, Path(tmp) / f"run{i}")
                seconds = run(cfg, dm)
                times[name].append(seconds)
                print(f"{name:24s} run {i + 1}: {seconds:7.2f} s", flush=True)
    tokens = args.steps * shape[0] * shape[1]
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    bare, lightning = medians.values()
    rows = [
        [name, round(s, 2), round(tokens / s), round(args.steps * flops / s / 1e9, 1), each]
        for (name, s), each in zip(medians.items(), times.values(), strict=True)
    ]
    rows[-1].append(f"{lightning / bare - 1:+.1%}")
    columns = ["loop", "median s", "tokens/s", "GFLOP/s", "each run s", "overhead"]
    notes = (
        f"{args.steps} training steps of {shape[0]} x {shape[1]} tokens, "
        f"{flops / 1e9:.3f} GFLOP a step; runs alternated, medians of {args.repeats}."
    )
    save(make_result("bench_train", "mia-train against a bare loop", columns, rows, notes),
         args.results)  # fmt: skip


if __name__ == "__main__":
    main()
