"""mia-export: a checkpoint as a Hugging Face Llama folder that transformers loads by itself.

    mia-export ckpt_path=outputs/runs/train/<time>/checkpoints/last.ckpt out_dir=shakespeare-llama
    mia-export ckpt_path=... out_dir=... dtype=bfloat16 overwrite=true

The folder holds config.json, model.safetensors, generation_config.json, the tokenizer's
files and a model card (README.md) with the training config and final metrics. Writing it
needs no transformers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mia.cli.command import hydra_command
from mia.errors import UserError
from mia.settings import check_settings


def export(cfg: DictConfig) -> Path:
    """Export cfg.ckpt_path into cfg.out_dir; returns the folder."""
    check_settings(cfg, "export")  # before the slow imports: a mistake is reported at once
    out_dir = Path(str(cfg.out_dir)).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out_dir={cfg.out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not cfg.overwrite:
        raise UserError(
            f"out_dir={cfg.out_dir} exists and is not empty; choose a new folder, "
            "or add overwrite=true to replace the model files in it"
        )
    from mia.interop import hf
    from mia.training.checkpoint import checkpoint_file, read_checkpoint
    from mia.training.module import LanguageModel

    ckpt_path = checkpoint_file(str(cfg.ckpt_path))  # a run folder: its last.ckpt
    checkpoint = read_checkpoint(ckpt_path)
    hparams = checkpoint["hyper_parameters"]
    module = LanguageModel(**hparams)
    hf.check_exportable(module.config)  # before loading weights: the config says enough
    module.load_state_dict(checkpoint["state_dict"])
    tokenizer = module.tokenizer if hparams.get("tokenizer") is not None else None
    metrics, source = final_metrics(ckpt_path, checkpoint)
    card = model_card(module, checkpoint, ckpt_path, out_dir, cfg.dtype, metrics, source)
    generation = OmegaConf.to_container(cfg.generation, resolve=True) if cfg.generation else {}
    written = hf.save_hf_folder(
        module.decoder.eval(), tokenizer, out_dir, cfg.dtype, card=card, generation=generation
    )
    print(f"exported {ckpt_path} to {out_dir} ({cfg.dtype}): " + ", ".join(p.name for p in written))
    if tokenizer is None:
        print("note: the checkpoint has no tokenizer, so the folder has none")
    return out_dir


def final_metrics(ckpt_path: Path, checkpoint: dict[str, Any]) -> tuple[dict[str, float], str]:
    """The run's final metrics and where they came from: the run folder's metrics.json (the
    checkpoint sits in <run>/checkpoints/), else the best score the checkpoint's
    ModelCheckpoint callback recorded; else none."""
    import torch

    run_metrics = ckpt_path.absolute().parent.parent / "metrics.json"
    if ckpt_path.absolute().parent.name == "checkpoints" and run_metrics.is_file():
        try:
            values = json.loads(run_metrics.read_text("utf-8"))
            metrics = {str(k): float(v) for k, v in values.items()}
        except (ValueError, TypeError, AttributeError):
            metrics = {}
        if metrics:
            return metrics, (
                f"the run's {run_metrics.name} ({run_metrics.parent.name}/): val/ from the final "
                "validation, test/ from the best checkpoint by val/loss"
            )
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if not str(key).startswith("ModelCheckpoint") or not isinstance(state, dict):
            continue
        score, monitor = state.get("best_model_score"), state.get("monitor")
        if isinstance(score, torch.Tensor) and monitor:
            return {str(monitor): float(score)}, (
                "the best score the checkpoint's ModelCheckpoint callback recorded "
                f"(step {checkpoint.get('global_step', '?')} was saved)"
            )
    return {}, "none found (no metrics.json beside the checkpoints folder, no best score)"


def model_card(
    module: Any,
    checkpoint: dict[str, Any],
    ckpt_path: Path,
    out_dir: Path,
    dtype: str,
    metrics: dict[str, float],
    source: str,
) -> str:
    """README.md for the exported folder: what the model is, its metrics, its training
    config, and how to load it."""
    config = module.config
    hparams = dict(checkpoint["hyper_parameters"])
    tokenizer_state = hparams.pop("tokenizer", None) or {}
    kind = tokenizer_state.get("kind", "none")
    if kind == "sentencepiece":
        kind += f" {tokenizer_state.get('settings', {}).get('model_type', '')}".rstrip()
    training = OmegaConf.to_yaml(OmegaConf.create(_plain(hparams)))
    rows = "\n".join(
        f"| {key} | {value:.4f} |" for key, value in sorted(metrics.items()) if math.isfinite(value)
    )
    metrics_text = f"| metric | value |\n|---|---|\n{rows}\n" if rows else "No metrics found.\n"
    name = out_dir.name or "model"
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [mia, llama]
---
# {name}

A LLaMA-style decoder trained with MIA (PyTorch Lightning + Hydra), exported by `mia-export`
from `{ckpt_path.name}` (step {checkpoint.get("global_step", "?")}).

| | |
|---|---|
| parameters | {module.decoder.num_parameters():,} |
| layers, width, heads (key/value heads) | {config.n_layers}, {config.dim}, \
{config.n_heads} ({config.n_kv_heads}) |
| context | {config.max_seq_len} tokens |
| vocabulary | {config.vocab_size} ({kind} tokenizer) |
| weights | {dtype} |

The tokenizer adds no BOS/EOS token: the model was trained on plain text without them.

## Final metrics

Loss in nats per token; bpc is bits per character. Source: {source}.

{metrics_text}
## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{name}")
model = AutoModelForCausalLM.from_pretrained("{name}")
ids = tokenizer("ROMEO:", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=100)[0]))
```

To train on from here with MIA: `mia-train model.init_from={name}`.

## Training config

```yaml
{training}```
"""


def _plain(value: Any) -> Any:
    """Checkpoint hyperparameters as YAML-ready values (tensors and bytes as short text)."""
    import torch

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


@hydra_command("export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
