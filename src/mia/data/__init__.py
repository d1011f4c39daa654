"""Corpora, their one-time preparation into token files, and the LightningDataModule.

`TextDataModule` is imported on first use: `mia-prepare` needs neither torch nor Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mia.data.corpora import CORPORA, Corpus, open_corpus
from mia.data.prepare import SPLITS, PreparedData, prepare_dataset
from mia.data.splitting import split_fractions, split_text

if TYPE_CHECKING:
    from mia.data.datamodule import TextDataModule

__all__ = [
    "CORPORA",
    "SPLITS",
    "Corpus",
    "PreparedData",
    "TextDataModule",
    "open_corpus",
    "prepare_dataset",
    "split_fractions",
    "split_text",
]


def __getattr__(name: str) -> Any:
    if name == "TextDataModule":
        from mia.data.datamodule import TextDataModule

        return TextDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
