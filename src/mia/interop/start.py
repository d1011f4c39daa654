"""Starting a training run from a Hugging Face Llama folder (``model.init_from=<folder>``).

The folder's config.json sets the model and its tokenizer tokenizes the data, so the run
continues where the imported model left off.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict

from mia.errors import UserError

if TYPE_CHECKING:
    import torch

    from mia.model import ModelConfig
    from mia.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def start_from_folder(cfg: DictConfig) -> tuple[ModelConfig, dict[str, torch.Tensor]] | None:
    """With model.init_from=<folder> (a Hugging Face Llama folder): its model config (with
    this run's model.dropout and attention_dropout) and weights, and cfg.tokenizer set to its
    tokenizer, so the data is tokenized by it. None without model.init_from."""
    from mia.interop.hf import load_hf_folder

    folder = cfg.model.get("init_from")
    if not folder:
        return None
    folder = Path(str(folder)).expanduser().absolute()
    label = f"model.init_from={cfg.model.init_from}"
    config, state, tokenizer = load_hf_folder(folder, label)
    if tokenizer is None:
        raise UserError(
            f"{label}: no tokenizer MIA can use; it reads tokenizer.model (SentencePiece) or "
            "the char tokenizer.json that mia-export writes: add the model's tokenizer.model"
        )
    if tokenizer.vocab_size > config.vocab_size:
        raise UserError(
            f"{label}: the tokenizer has {tokenizer.vocab_size} ids, more than the model's "
            f"vocab_size {config.vocab_size}"
        )
    if cfg.data.block_size > config.max_seq_len:
        raise UserError(
            f"data.block_size={cfg.data.block_size} exceeds the context of {label} "
            f"(max_position_embeddings={config.max_seq_len}); lower data.block_size"
        )
    with open_dict(cfg):
        cfg.tokenizer = imported_tokenizer_config(folder, tokenizer)
    log.info("starting from %s: its config.json sets the model (cfg.model sizes unused)", folder)
    attention_dropout = cfg.model.get("attention_dropout")
    return dataclasses.replace(
        config, dropout=cfg.model.dropout, attention_dropout=attention_dropout
    ), state


def imported_tokenizer_config(folder: Path, tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokenizer config that tokenizes the data with an imported model's tokenizer."""
    from mia.interop.hf_tokenizer import SENTENCEPIECE_MODEL
    from mia.tokenizer import CharTokenizer

    if isinstance(tokenizer, CharTokenizer):
        unknown = tokenizer.unknown_id is not None
        return {"kind": "char", "chars": tokenizer.chars, "unknown": unknown}
    return {"kind": "sentencepiece", "model_file": str(folder / SENTENCEPIECE_MODEL)}
