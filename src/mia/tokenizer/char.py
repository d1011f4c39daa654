"""Character-level tokenizer: one id per distinct character of the train split.

The vocabulary is the sorted distinct characters of the train split, so Tiny Shakespeare
gives the usual 65. A character that appears only in the val or test split cannot get an
id of its own (the model never trained on it), so such characters share one extra
"unknown" id, appended after the characters, and decode to U+FFFD. That id exists only when
the held-out splits need it: Tiny Shakespeare's val split has no new character, so its
vocabulary stays 65. Encoding a character outside the vocabulary when there is no unknown
id (say, in a generation prompt) is a `UserError`.

A corpus of documents also gets an end-of-text id, the last one, which the data puts after
each document; it decodes to nothing. A continuous text (Tiny Shakespeare) has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mia.errors import UserError
from mia.tokenizer.base import Tokenizer

UNKNOWN_CHAR = "\ufffd"


class CharTokenizer(Tokenizer):
    """Characters to ids by their rank in a sorted character list."""

    kind = "char"

    def __init__(self, chars: str, unknown: bool = False, eos: bool = False) -> None:
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise ValueError("chars must be distinct and sorted")
        self.chars = chars
        self.unknown_id: int | None = len(chars) if unknown else None
        self._eos_id: int | None = len(chars) + unknown if eos else None
        self._index = {c: i for i, c in enumerate(chars)}
        self._pieces = [*chars, UNKNOWN_CHAR] if unknown else list(chars)
        if eos:
            self._pieces.append("")

    @classmethod
    def train(cls, train_text: str, heldout_text: str = "", eos: bool = False) -> CharTokenizer:
        """Vocabulary from `train_text`; an unknown id only if `heldout_text` needs one; an
        end-of-text id with `eos`."""
        chars = "".join(sorted(set(train_text)))
        unknown = not set(heldout_text) <= set(chars)
        return cls(chars, unknown=unknown, eos=eos)

    @classmethod
    def fixed(cls, chars: str, unknown: bool, text: str) -> CharTokenizer:
        """A given vocabulary (e.g. an imported model's); `text` (the corpus) must fit in it
        unless it has the unknown id."""
        tokenizer = cls(chars, unknown=unknown)
        missing = sorted(set(text) - set(chars))
        if missing and not unknown:
            shown = "".join(missing[:10])
            raise UserError(
                f"the corpus has {len(missing)} character(s) outside the fixed char vocabulary "
                f"(tokenizer.chars), e.g. {shown!r}; use text in that vocabulary"
            )
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def eos_id(self) -> int | None:
        return self._eos_id

    def encode(self, text: str) -> list[int]:
        index = self._index
        try:
            return [index[c] for c in text]
        except KeyError as err:
            if self.unknown_id is None:
                raise UserError(
                    f"character {err.args[0]!r} is not in the char tokenizer's vocabulary "
                    "(only characters of the train split are); remove it from the text"
                ) from None
        unknown = self.unknown_id
        return [index.get(c, unknown) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        if ids and (min(ids) < 0 or max(ids) >= self.vocab_size):
            raise ValueError(f"token id out of range for vocab_size {self.vocab_size}")
        pieces = self._pieces
        return "".join([pieces[i] for i in ids])

    def to_state(self) -> dict[str, Any]:
        state = {"kind": self.kind, "chars": self.chars, "unknown": self.unknown_id is not None}
        if self._eos_id is not None:
            state["eos"] = True
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CharTokenizer:
        unknown = bool(state.get("unknown", False))
        return cls(state["chars"], unknown=unknown, eos=bool(state.get("eos", False)))
