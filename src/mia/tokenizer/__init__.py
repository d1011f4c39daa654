"""Tokenizers behind one interface: SentencePiece subwords (``sentencepiece``) and characters
(``char``), chosen by the ``tokenizer.kind`` config value.

    tok = train_tokenizer(cfg.tokenizer, train_text)
    tok.save(folder);  tok = load_tokenizer(folder)
    state = tok.to_state();  tok = tokenizer_from_state(state)   # e.g. inside a checkpoint
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mia.errors import UserError
from mia.tokenizer.base import Tokenizer, read_saved_state
from mia.tokenizer.char import CharTokenizer
from mia.tokenizer.subword import SentencePieceTokenizer, sentencepiece_settings

__all__ = [
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "tokenizer_from_state",
    "tokenizer_settings",
    "train_tokenizer",
]

_KINDS: dict[str, type[Tokenizer]] = {
    CharTokenizer.kind: CharTokenizer,
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
}


def tokenizer_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that determine a trained tokenizer, checked (they key the data cache)."""
    kind = config.get("kind")
    if kind == CharTokenizer.kind:
        return {"kind": kind}
    if kind == SentencePieceTokenizer.kind:
        return {"kind": kind, **sentencepiece_settings(config)}
    raise UserError(
        f"unknown tokenizer.kind {kind!r}; choose tokenizer=sentencepiece or tokenizer=char"
    )


def train_tokenizer(
    config: Mapping[str, Any], train_text: str, heldout_text: str = ""
) -> Tokenizer:
    """Train the tokenizer `config` describes on `train_text`.

    `heldout_text` (the val and test splits) is only looked at by the char tokenizer, to
    decide whether it needs an id for characters the train split lacks.
    """
    settings = tokenizer_settings(config)
    if settings["kind"] == CharTokenizer.kind:
        return CharTokenizer.train(train_text, heldout_text)
    return SentencePieceTokenizer.train(train_text, settings)


def tokenizer_from_state(state: Mapping[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.to_state()`."""
    kind = state.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r} in tokenizer state")
    return _KINDS[kind].from_state(dict(state))


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load a tokenizer written by `Tokenizer.save(directory)`."""
    return tokenizer_from_state(read_saved_state(directory))
