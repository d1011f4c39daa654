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
from mia.tokenizer.subword import SentencePieceTokenizer, identity_settings, sentencepiece_settings

__all__ = [
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "cache_key_settings",
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
    """The settings that determine a trained tokenizer, checked (they key the data cache).

    A fixed vocabulary (``tokenizer.chars`` for char, ``tokenizer.model_file`` for
    SentencePiece) replaces training; `cache_key_settings` gives the part that keys the cache.
    """
    kind = config.get("kind")
    if kind == CharTokenizer.kind:
        return char_settings(config)
    if kind == SentencePieceTokenizer.kind:
        return {"kind": kind, **sentencepiece_settings(config)}
    raise UserError(
        f"unknown tokenizer.kind {kind!r}; choose tokenizer=sentencepiece or tokenizer=char"
    )


def cache_key_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`tokenizer_settings` as they enter the prepared-data cache key: what the tokenizer is
    (a pretrained model by its digest), not where it was read from."""
    if settings.get("kind") == SentencePieceTokenizer.kind:
        return {"kind": settings["kind"], **identity_settings(settings)}
    return dict(settings)


def char_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"kind": "char"}``, or with ``tokenizer.chars`` a fixed vocabulary: those characters
    (distinct, sorted) and, with ``tokenizer.unknown``, one extra unknown id."""
    chars = config.get("chars")
    if chars is None:
        return {"kind": CharTokenizer.kind}
    if not isinstance(chars, str) or not chars or list(chars) != sorted(set(chars)):
        raise UserError("tokenizer.chars must be a non-empty string of distinct, sorted characters")
    return {"kind": CharTokenizer.kind, "chars": chars, "unknown": bool(config.get("unknown"))}


def train_tokenizer(
    config: Mapping[str, Any], train_text: str, heldout_text: str = "", eos: bool = False
) -> Tokenizer:
    """Train the tokenizer `config` describes on `train_text`.

    `heldout_text` (the val and test splits) is only looked at by the char tokenizer, to
    decide whether it needs an id for characters the train split lacks; with `eos` it gets
    an end-of-text id (SentencePiece always has one). The char tokenizer only looks at
    which characters occur, so each text may be just those characters. A fixed vocabulary
    (``chars`` or ``model_file``) is loaded instead of trained.
    """
    settings = tokenizer_settings(config)
    if settings["kind"] == CharTokenizer.kind:
        if "chars" in settings:
            text = train_text + heldout_text
            return CharTokenizer.fixed(settings["chars"], settings["unknown"], text)
        return CharTokenizer.train(train_text, heldout_text, eos=eos)
    if "model_file" in settings:
        return SentencePieceTokenizer.from_file(settings)
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
