"""mia-train: compose a run from conf/, fit, validate, test; sweeps with -m."""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from mia.cli.command import hydra_command
from mia.errors import Interrupted, UserError
from mia.settings import check_settings, cxx_compiler_found
from mia.sweeping.best_of import check_expanded, expands_best_of
from mia.sweeping.outcome import PrunedRun

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)

# Keys of the `model` group that are not part of ModelConfig.
RUN_OPTIONS = ("compile", "init_from")


def model_settings(cfg: DictConfig, vocab_size: int) -> dict[str, Any]:
    """The ModelConfig fields of cfg.model, with the tokenizer's vocabulary size."""
    values = OmegaConf.to_container(cfg.model, resolve=True)
    for key in RUN_OPTIONS:
        values.pop(key, None)
    return {**values, "vocab_size": vocab_size}


def build_datamodule(cfg: DictConfig):
    from mia.data import TextDataModule

    dm = TextDataModule(cfg.data, cfg.tokenizer, cache_dir=cfg.paths.cache_dir, seed=cfg.seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def data_settings(cfg: DictConfig, dm) -> dict[str, Any]:
    """What a checkpoint keeps of the data: its config, the tokenizer config that prepared
    it, and characters per token per split (for bits per character)."""
    return {
        **OmegaConf.to_container(cfg.data, resolve=True),
        "tokenizer": OmegaConf.to_container(cfg.tokenizer, resolve=True),
        "chars_per_token": {k: float(v) for k, v in dm.chars_per_token.items()},
    }


def compile_decoder(cfg: DictConfig) -> bool:
    """model.compile as a boolean: auto compiles where a C++ compiler is found, and says in
    one line when none is (the run then trains eagerly, about a third slower on CPU)."""
    choice = cfg.model.compile
    if choice != "auto":
        return bool(choice)
    if cxx_compiler_found():
        return True
    log.warning(
        "model.compile=auto: no C++ compiler on the PATH (g++, clang++ or c++, or set CXX), "
        "so the decoder runs uncompiled; install one (apt install g++) for faster steps"
    )
    return False


def language_model(cfg: DictConfig, dm, model: dict[str, Any]):  # -> LanguageModel
    """The LightningModule for the decoder `model` (a ModelConfig dict) on `dm`'s data."""
    from mia.training.module import LanguageModel

    return LanguageModel(
        model=model,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        tokenizer=dm.tokenizer.to_state(),
        data=data_settings(cfg, dm),
        seed=cfg.seed,
        compile=compile_decoder(cfg),
    )


def train(cfg: DictConfig) -> dict[str, float] | PrunedRun:
    """Fit the model the config describes, test it, and return the final metrics (or, for an
    Optuna trial that the pruner stopped, where it stopped)."""
    check_settings(cfg, "train")  # every setting, before any data, model or slow import
    check_expanded(cfg)  # best_of=<study> comes from the command line
    if cfg.get("budget_flops") is not None:
        budget_steps(cfg, vocab_size=1)  # a budget short of one step, before any work
    import lightning as L
    from hydra.utils import instantiate

    from mia.interop.hf import load_decoder_weights
    from mia.interop.start import start_from_folder
    from mia.sweeping.ddp import use_spawn_in_sweeps
    from mia.sweeping.resume import record_settings, start_point
    from mia.training.checkpoint import check_stored_horizon
    from mia.training.next_steps import in_sweep, next_steps
    from mia.training.precision import use_run_precision

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    start = start_from_folder(cfg)
    dm = build_datamodule(cfg)
    model = model_settings(cfg, dm.vocab_size) if start is None else start[0].to_dict()
    if cfg.get("budget_flops") is not None:
        cfg.trainer.max_steps = budget_steps(cfg, model=model)  # the schedule's horizon too
    origin = start_point(cfg, model)  # resume=true: a finished run is not run again
    if origin.finished_metrics is not None:
        return origin.finished_metrics
    check_stored_horizon(cfg, origin.ckpt_path)  # no steps at a learning rate of 0
    if int(os.environ.get("RANK", "0") or 0) == 0:  # torchrun/srun start every rank here
        record_settings(cfg)  # what a later resume=true compares
    module = language_model(cfg, dm, model)
    if module.hparams.compile:
        from mia.training.inductor_isa import skip_known_isa_check

        skip_known_isa_check(cfg.paths.cache_dir)  # 2.5-3.5 s of each compiled start on CPU
    if start is not None:
        load_decoder_weights(module.decoder, start[1], f"model.init_from={cfg.model.init_from}")
    ckpt_path = origin.ckpt_path
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    pruning = None
    if cfg.get("optuna_trial") and isinstance(cfg.optimized_metric, str):
        # a trial of an Optuna search: report, and stop when pruned
        from mia.sweeping.pruning import OptunaPruning

        pruning = OptunaPruning.from_spec(cfg.optuna_trial, cfg.optimized_metric)
        callbacks.append(pruning)
    use_spawn_in_sweeps(cfg)
    use_run_precision(cfg.trainer)  # float32 where this CPU has no fast bfloat16
    logger = make_loggers(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    log.info(
        "model: %s parameters; data: %s (vocabulary %d, prepared in %s)",
        f"{module.decoder.num_parameters():,}",
        cfg.data.corpus,
        dm.vocab_size,
        dm.prepared_dir,
    )
    started = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:  # Lightning's answer to Ctrl-C: it stops cleanly, then exits 1
        if trainer.interrupted:
            raise Interrupted(interrupted_message(cfg)) from None
        raise
    fit_s = time.perf_counter() - started
    if pruning is not None and (step := pruning.pruned_step(trainer)) is not None:
        return PrunedRun(step)  # no test, no metrics.json

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    train_tokens = int(dm.meta["splits"].get("train", {}).get("tokens") or 0)
    metrics.update(run_figures(cfg, trainer, module.decoder, fit_s, train_tokens))
    if cfg.test and dm.meta["splits"].get("test", {}).get("tokens"):  # none: nothing to test
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(module, datamodule=dm, ckpt_path=best or None, weights_only=True)
        metrics.update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        )
    if trainer.is_global_zero:
        write_results(cfg, trainer, metrics)
        if not in_sweep():
            print(next_steps(cfg, trainer, metrics), flush=True)
    return metrics


def tokens_per_step(cfg: DictConfig, world: int | None = None) -> int:
    """Training tokens of one optimizer step: windows per batch x their length x the batches
    accumulated x the processes (`world`; by default devices x nodes where given as numbers)."""
    if world is None:
        world = 1
        for key in ("devices", "num_nodes"):
            value = cfg.trainer.get(key)
            world *= value if isinstance(value, int) and value > 0 else 1
    accumulate = int(cfg.trainer.get("accumulate_grad_batches") or 1)
    return cfg.data.batch_size * cfg.data.block_size * accumulate * world


def budget_steps(cfg: DictConfig, model: dict[str, Any] | None = None, vocab_size: int = 1) -> int:
    """trainer.max_steps for budget_flops: the budget over the training FLOPs of a step
    (`mia.planning.flops`). Before the data is prepared the vocabulary is not known, so
    `vocab_size` stands in (1: the fewest FLOPs, so a refusal then is certain)."""
    from mia.model import ModelConfig
    from mia.planning.flops import step_flops, steps_for_budget

    config = ModelConfig.from_dict(model or model_settings(cfg, vocab_size))
    per_step = step_flops(config, tokens_per_step(cfg) // cfg.data.block_size, cfg.data.block_size)
    return steps_for_budget(float(cfg.budget_flops), per_step)


def run_figures(
    cfg: DictConfig, trainer: L.Trainer, decoder: Any, fit_s: float, train_tokens: int = 0
) -> dict[str, float]:
    """What a search may weigh quality against: the model's size, the wall time of `fit` and
    its training throughput (tokens per second over that time); and, for planning, the
    tokens trained on, their training FLOPs (`mia.planning.flops`) and the epochs of the
    train split (`train_tokens`) they make."""
    from mia.planning.flops import matmul_parameters, training_flops_per_token

    local = trainer.global_step * tokens_per_step(cfg, world=1)  # this process's
    tokens = local * trainer.world_size
    per_token = training_flops_per_token(decoder.config, cfg.data.block_size)
    return {
        "model/params": float(decoder.num_parameters()),
        "model/matmul_params": float(matmul_parameters(decoder.config)),
        "time/fit_s": fit_s,
        "time/tokens_per_s": local / fit_s if fit_s > 0 else 0.0,
        "train/steps": float(trainer.global_step),
        "train/tokens": float(tokens),
        "train/flops": float(tokens * per_token),
        "train/epochs": tokens / train_tokens if train_tokens else 0.0,
    }


def make_loggers(cfg: DictConfig | None) -> Any:
    """The `logger` preset: one logger (a `_target_`), several (one key each, as `logger=many`),
    or none."""
    if not cfg:
        return False
    if "_target_" in cfg:
        return make_logger(cfg)
    return [make_logger(c) for c in cfg.values() if c is not None]


def make_logger(cfg: DictConfig) -> Any:
    """One Lightning logger; its package missing (MLflow, W&B are extras) is one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg)
    except InstantiationException as err:
        cause = err.__cause__
        if not isinstance(cause, ImportError):
            raise
        extra = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}.get(
            str(cfg._target_).rsplit(".", 1)[-1], "<its package>"
        )
        missing = str(cause).strip().splitlines()[0]
        raise UserError(
            f"logger: {cfg._target_} needs a package that is not installed ({missing}); "
            f"pip install -e '.[{extra}]'"
        ) from None


def interrupted_message(cfg: DictConfig) -> str:
    """What a Ctrl-C during fitting left, and the command that continues from it."""
    run_dir = Path(cfg.paths.output_dir)
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        return f"interrupted before the first checkpoint; {run_dir} holds no training to resume"
    from hydra.core.hydra_config import HydraConfig

    dropped = ("ckpt_path=", "resume=", "hydra.run.dir=", "hydra.sweep.dir=")
    kept = [] if not HydraConfig.initialized() else list(HydraConfig.get().overrides.task)
    args = [shlex.quote(a) for a in kept if not a.lstrip("+~").startswith(dropped)]
    args += ["resume=true", f"hydra.run.dir={shlex.quote(str(run_dir))}"]
    return f"interrupted; continue with: mia-train {' '.join(args)}"


def write_results(cfg: DictConfig, trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """metrics.json in the run folder, and the run's settings with its final metrics in
    TensorBoard's HParams tab, so sweep jobs compare side by side."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    from lightning.pytorch.loggers import TensorBoardLogger

    from mia.training.hparams import log_hparams

    for logger in trainer.loggers:
        params = {
            group: OmegaConf.to_container(cfg[group], resolve=True)
            for group in ("model", "data", "tokenizer", "optimizer", "scheduler")
        }
        params["trainer"] = {
            "max_steps": cfg.trainer.max_steps,
            "precision": str(cfg.trainer.precision),
        }
        params["seed"] = cfg.seed
        if cfg.get("best_of"):  # the Optuna study and trial the settings came from
            params["best_of"] = {"study": cfg.best_of, "trial": cfg.get("best_of_trial")}
        if isinstance(logger, TensorBoardLogger):
            log_hparams(logger, params, metrics)  # the settings a sweep varies first
        else:  # CSV, MLflow, W&B: the settings; the metrics were logged during the run
            logger.log_hyperparams(params)
        logger.finalize("success")
    log.info("metrics: %s", json.dumps({k: round(v, 4) for k, v in metrics.items()}))


@expands_best_of  # best_of=<study>: the study's best settings join the command line
@hydra_command("train")
def main(cfg: DictConfig) -> float | tuple[float | None, ...] | PrunedRun | None:
    metrics = train(cfg)
    if isinstance(metrics, PrunedRun):
        return metrics
    wanted = cfg.get("optimized_metric")
    if OmegaConf.is_list(wanted):  # several objectives: one value each
        return tuple(metrics.get(name) for name in wanted)
    return metrics.get(wanted) if wanted else None


if __name__ == "__main__":
    main()
