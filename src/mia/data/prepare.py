"""Text -> tokenizer -> ``train.bin``/``val.bin``/``test.bin`` + ``meta.json``, once per setting.

A prepared folder is ``<cache_dir>/prepared/<corpus>-<tokenizer>-<key>``, where the key
hashes everything that produced it: the corpus settings, the digest of the raw source, the
split fractions, the tokenizer settings and `FORMAT_VERSION`. Anything else in the data
config (block size, batch size, workers, where the file was read from) does not change the
tokens, so it is not in the key. A later run with the same key reuses the folder.

The folder is built in a temporary folder beside it and renamed into place in one step; if
another process finished the same folder first, ours is thrown away. Readers therefore
never see a half-written folder.

Splits are contiguous character ranges: the first ``train`` fraction of the text, then
``val``, then ``test`` (``int(n * train)`` characters for train and ``int(n * test)`` for
test, the rest for val: with 0.9/0.1/0.0 this is nanoGPT's split). Any split may be
empty except train; an empty split gives an empty ``.bin`` and zero figures.

The ``.bin`` files hold the tokens of each split's text only: no BOS/EOS is added, so a
split decodes back to exactly its text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.progress import Progress

from mia.data.corpora import Corpus, open_corpus
from mia.errors import UserError
from mia.tokenizer import (
    Tokenizer,
    cache_key_settings,
    load_tokenizer,
    tokenizer_settings,
    train_tokenizer,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
META_FILE = "meta.json"
# Encode in pieces of about this many characters, cut at newlines, to report progress.
_ENCODE_CHUNK_CHARS = 1 << 20


@dataclass(frozen=True)
class PreparedData:
    """A prepared folder and its ``meta.json``."""

    directory: Path
    meta: dict[str, Any]
    reused: bool  # found in the cache rather than built by this call

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    def bin_path(self, split: str) -> Path:
        return self.directory / f"{split}.bin"

    def load_tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.directory)

    def tokens(self, split: str) -> np.ndarray:
        """A split's tokens, memory-mapped (an empty array for an empty split)."""
        return read_tokens(self.bin_path(split), self.dtype)


def read_tokens(path: Path, dtype: np.dtype | str) -> np.ndarray:
    """Memory-map a ``.bin`` file; `np.memmap` refuses empty files, so those read as []."""
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def split_fractions(data: Mapping[str, Any]) -> dict[str, float]:
    """``data.splits`` checked: keys train/val/test, each in [0, 1], summing to 1, train > 0."""
    splits = data.get("splits")
    if not isinstance(splits, Mapping) or set(splits) != set(SPLITS):
        raise UserError(
            f"data.splits={as_plain(splits)!r} must give train, val and test fractions, "
            "e.g. data.splits={train:0.9,val:0.05,test:0.05}"
        )
    fractions = {}
    for split in SPLITS:
        value = splits[split]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise UserError(f"data.splits.{split}={value!r} must be a number in [0, 1]")
        fractions[split] = float(value)
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise UserError(
            f"data.splits fractions sum to {total:g}, not 1; adjust data.splits.train/val/test"
        )
    if fractions["train"] == 0:
        raise UserError("data.splits.train is 0; the tokenizer and the model need a train split")
    return fractions


def split_text(text: str, fractions: Mapping[str, float]) -> dict[str, str]:
    """Contiguous train/val/test ranges of `text`: disjoint, in order, covering it."""
    n = len(text)
    train_end = int(n * fractions["train"])
    val_end = max(train_end, n - int(n * fractions["test"]))
    return {"train": text[:train_end], "val": text[train_end:val_end], "test": text[val_end:]}


def prepare_dataset(
    data: Mapping[str, Any], tokenizer: Mapping[str, Any], cache_dir: str | Path
) -> PreparedData:
    """Prepare (or find already prepared) the tokens of `data` under `tokenizer`."""
    data, tokenizer = as_plain(data), as_plain(tokenizer)
    cache_dir = Path(cache_dir).expanduser().absolute()
    fractions = split_fractions(data)
    tok_settings = tokenizer_settings(tokenizer)
    corpus = open_corpus(data, cache_dir)
    key_material = {
        "format": FORMAT_VERSION,
        "corpus": corpus.settings,
        "source_sha256": corpus.sha256,
        "splits": fractions,
        "tokenizer": cache_key_settings(tok_settings),
    }
    key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir / "prepared" / f"{corpus.name}-{_tokenizer_tag(tok_settings)}-{key}"

    if (target / META_FILE).is_file():
        log.info("reusing prepared data in %s", target)
        prepared = PreparedData(target, _read_meta(target), reused=True)
    elif target.exists():
        raise UserError(f"{target} is incomplete (no {META_FILE}); delete that folder and rerun")
    else:
        prepared = _build(corpus, fractions, tok_settings, key_material, target)
    check_block_size(prepared.meta, data.get("block_size"))
    return prepared


def check_block_size(meta: Mapping[str, Any], block_size: Any) -> None:
    """Training draws windows of block_size + 1 tokens from the train split."""
    if block_size is None:
        return
    train_tokens = meta["splits"]["train"]["tokens"]
    if train_tokens < int(block_size) + 1:
        raise UserError(
            f"the train split has {train_tokens} tokens, too few for data.block_size={block_size} "
            f"(needs at least block_size + 1); lower data.block_size or use more text"
        )


def _build(
    corpus: Corpus,
    fractions: dict[str, float],
    tok_settings: dict[str, Any],
    key_material: dict[str, Any],
    target: Path,
) -> PreparedData:
    started = time.perf_counter()
    log.info("preparing %s into %s", corpus.name, target)
    text = corpus.read()
    if not text:
        raise UserError(f"the {corpus.name} corpus is empty ({corpus.origin}); give it some text")
    texts = split_text(text, fractions)
    if not texts["train"]:
        raise UserError(
            f"the train split of {len(text)} characters is empty; raise data.splits.train"
        )

    if "model_file" in tok_settings or "chars" in tok_settings:
        log.info("using the given %s vocabulary", tok_settings["kind"])
    else:
        log.info(
            "training the %s tokenizer on %d characters", tok_settings["kind"], len(texts["train"])
        )
    tokenizer = train_tokenizer(tok_settings, texts["train"], texts["val"] + texts["test"])
    dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the cache is shared
    try:
        splits = _encode_splits(tokenizer, texts, dtype, tmp)
        tokenizer.save(tmp)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": target.name,
            "key": key_material,
            "source": {
                "corpus": corpus.name,
                "origin": corpus.origin,
                "sha256": corpus.sha256,
                "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "characters": len(text),
                "bytes": len(text.encode()),
            },
            "data": {**corpus.settings, "splits": fractions},
            "tokenizer": {
                **cache_key_settings(tok_settings),
                "vocab_size": tokenizer.vocab_size,
                "bos_id": tokenizer.bos_id,
                "eos_id": tokenizer.eos_id,
            },
            "vocab_size": tokenizer.vocab_size,
            "dtype": dtype.name,
            "splits": splits,
            "seconds": round(time.perf_counter() - started, 3),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / META_FILE).is_file():
            raise
        log.info("another process prepared %s first; using it", target)
        return PreparedData(target, _read_meta(target), reused=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("prepared %s in %.1f s", target, meta["seconds"])
    return PreparedData(target, meta, reused=False)


def _encode_splits(
    tokenizer: Tokenizer, texts: dict[str, str], dtype: np.dtype, directory: Path
) -> dict[str, dict[str, Any]]:
    """Write ``<split>.bin`` for each split; returns the per-split figures."""
    figures = {}
    total = sum(len(t) for t in texts.values())
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("encoding", total=total)
        for split, text in texts.items():
            progress.update(task, description=f"encoding {split}")
            with (directory / f"{split}.bin").open("wb") as out:
                tokens = 0
                for chunk in _newline_chunks(text, _ENCODE_CHUNK_CHARS):
                    ids = np.asarray(tokenizer.encode(chunk), dtype=dtype)
                    ids.tofile(out)
                    tokens += ids.size
                    progress.update(task, advance=len(chunk))
            characters = len(text)
            figures[split] = {
                "characters": characters,
                "bytes": len(text.encode()),
                "tokens": tokens,
                "chars_per_token": round(characters / tokens, 4) if tokens else None,
            }
    return figures


def _newline_chunks(text: str, size: int) -> Iterator[str]:
    """Consecutive pieces of about `size` characters, each ending just after a newline
    (except the last): tokenizers encode them to consecutive parts of the whole encoding."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _tokenizer_tag(settings: Mapping[str, Any]) -> str:
    if settings["kind"] == "sentencepiece":
        return f"{settings['model_type']}{settings['vocab_size']}"
    return str(settings["kind"])


def _read_meta(directory: Path) -> dict[str, Any]:
    return json.loads((directory / META_FILE).read_text("utf-8"))


def as_plain(node: Any) -> Any:
    """A DictConfig/ListConfig as plain dicts and lists (other values unchanged)."""
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def chars_per_token(meta: Mapping[str, Any]) -> dict[str, float]:
    """Characters per token of each split (NaN for an empty split)."""
    return {
        split: figures["characters"] / figures["tokens"] if figures["tokens"] else math.nan
        for split, figures in meta["splits"].items()
    }
