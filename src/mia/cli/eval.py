"""mia-eval: a checkpoint's metrics on the whole test (or val) split."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mia.cli.command import hydra_command
from mia.errors import UserError
from mia.settings import check_settings

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate cfg.ckpt_path on cfg.split; return and write the metrics."""
    check_settings(cfg, "eval")  # before the slow imports: a mistake is reported at once
    import lightning as L
    from hydra.utils import instantiate

    from mia.data import TextDataModule
    from mia.training.checkpoint import load_language_model
    from mia.training.precision import use_run_precision

    module = load_language_model(cfg.ckpt_path)
    block, positions = cfg.data.get("block_size"), module.config.max_seq_len
    if block is not None and block > positions:
        raise UserError(
            f"data.block_size={block}: the checkpoint's model takes at most {positions} "
            f"positions (its max_seq_len); give data.block_size <= {positions}, or null for "
            "the run's"
        )
    saved = dict(module.hparams.data or {})
    if "tokenizer" not in saved:
        raise UserError(f"ckpt_path={cfg.ckpt_path}: the checkpoint does not record its data")
    tokenizer_cfg = saved.pop("tokenizer")
    saved.pop("chars_per_token", None)
    changes = OmegaConf.to_container(cfg.data, resolve=True)
    data_cfg = {**saved, **{k: v for k, v in changes.items() if v is not None}}
    dm = TextDataModule(
        data_cfg, tokenizer_cfg, cache_dir=cfg.paths.cache_dir, seed=module.hparams.seed
    )
    dm.prepare_data()
    dm.setup("test")
    if dm.tokenizer.to_state() != module.hparams.tokenizer:
        raise UserError(
            f"the prepared data in {dm.prepared_dir} was tokenized differently from the "
            "checkpoint's tokenizer: check data.* settings match the training run"
        )
    check_split_has_windows(dm.meta, cfg.split)
    loader = dm.val_dataloader() if cfg.split == "val" else dm.test_dataloader()
    module.eval_split = cfg.split
    use_run_precision(cfg.trainer)  # float32 where this CPU has no fast bfloat16
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=[])
    trainer.test(module, dataloaders=loader, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(cfg.split)}
    if not metrics:
        raise UserError(
            f"no {cfg.split} batches were evaluated; raise trainer.limit_test_batches "
            "(null for the whole split)"
        )
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    for key, value in metrics.items():
        print(f"{key:<20} {value:.4f}")
    print(f"written to {out / 'metrics.json'}")
    return metrics


def check_split_has_windows(meta: dict, split: str) -> None:
    """A split of fewer than 2 tokens has nothing to evaluate; name a split that has."""
    tokens = {name: figures["tokens"] for name, figures in meta["splits"].items()}
    if tokens.get(split, 0) >= 2:
        return
    other = "val" if split == "test" else "test"
    fix = (
        f"use split={other}"
        if tokens.get(other, 0) >= 2
        else ("the checkpoint's data has no held-out text; train with data.splits.val > 0")
    )
    raise UserError(f"the {split} split of the checkpoint's data is empty; {fix}")


@hydra_command("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
