"""The one interface every tokenizer offers, and how tokenizers are stored.

A tokenizer's whole state is a dict of plain values (str, int, float, bool, bytes, None,
lists and dicts of those): it goes into a torch checkpoint that loads with
``weights_only=True``, and into ``tokenizer.json`` (plus any binary model file) in a
prepared-data folder.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

STATE_FILE = "tokenizer.json"


class Tokenizer(ABC):
    """Text to token ids and back; ``decode(encode(s)) == s`` for text the tokenizer covers."""

    kind: ClassVar[str]  # the `tokenizer.kind` config value that builds this class

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of token ids: every id is in ``range(vocab_size)``."""

    @property
    def bos_id(self) -> int | None:
        """Beginning-of-sequence id, or None if the tokenizer has none."""
        return None

    @property
    def eos_id(self) -> int | None:
        """End-of-sequence id, or None if the tokenizer has none."""
        return None

    def set_threads(self, threads: int) -> None:  # noqa: B027 - most tokenizers have none
        """How many threads `encode` may use (a worker process among several uses 1)."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS added)."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, as plain values; includes ``kind``."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        """Rebuild from `to_state()`."""

    def save(self, directory: str | Path) -> list[Path]:
        """Write the tokenizer into `directory`; returns the files written.

        Byte strings in the state go to files of their own (named by `_binary_files`), the
        rest to ``tokenizer.json``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = dict(self.to_state())
        written = []
        for key, filename in self._binary_files().items():
            path = directory / filename
            path.write_bytes(state.pop(key))
            state[key] = {"file": filename}
            written.append(path)
        state_path = directory / STATE_FILE
        state_path.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return [state_path, *written]

    @classmethod
    def _binary_files(cls) -> dict[str, str]:
        """State keys holding bytes, and the file each is saved to."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def read_saved_state(directory: str | Path) -> dict[str, Any]:
    """The state written by `Tokenizer.save`, with binary files read back in."""
    directory = Path(directory)
    state = json.loads((directory / STATE_FILE).read_text("utf-8"))
    for key, value in list(state.items()):
        if isinstance(value, dict) and set(value) == {"file"}:
            state[key] = (directory / value["file"]).read_bytes()
    return state
