"""Corpus -> tokenizer -> ``train.bin``/``val.bin``/``test.bin`` + ``meta.json``, once per setting.

A prepared folder is ``<cache_dir>/prepared/<corpus>-<tokenizer>-<key>``, where the key
hashes everything that produced it: the corpus settings, the digest of the raw source, the
split fractions, the tokenizer settings (its sample size included) and `FORMAT_VERSION`.
Anything else in the data config (block size, batch size, workers, where the file was read
from) does not change the tokens, so it is not in the key. A later run with the same key
reuses the folder.

The folder is built in a temporary folder beside it and renamed into place in one step; if
another process finished the same folder first, ours is thrown away. Readers therefore
never see a half-written folder.

The corpus streams through twice, so memory does not grow with it: a first pass samples at
most ``tokenizer.sample_chars`` characters of the train split to train the tokenizer
(`mia.data.sampling`; a smaller train split is used whole) and counts the bytes; a second
encodes on ``data.prepare_workers`` processes (`mia.data.encoding`). How text is split is
`mia.data.splitting`'s job.

A continuous text's ``.bin`` files hold the tokens of each split's text only: no BOS/EOS,
so a split decodes back to exactly its text. A corpus of documents puts the tokenizer's
end-of-text id after each document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from mia.data.cache import META_FILE, building_folder, discard, read_meta, verify_prepared
from mia.data.corpora import SPLITS, Corpus, open_corpus
from mia.data.encoding import default_workers, encode_splits
from mia.data.sampling import sample_train_text
from mia.data.splitting import split_fractions, split_stream, split_text
from mia.errors import UserError
from mia.folders import check_folder
from mia.tokenizer import (
    Tokenizer,
    cache_key_settings,
    load_tokenizer,
    tokenizer_settings,
    train_tokenizer,
)

__all__ = ["SPLITS", "PreparedData", "prepare_dataset", "split_fractions", "split_text"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


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


def prepare_dataset(
    data: Mapping[str, Any],
    tokenizer: Mapping[str, Any],
    cache_dir: str | Path,
    force: bool = False,
) -> PreparedData:
    """Prepare (or find already prepared, and check) the tokens of `data` under `tokenizer`;
    `force` prepares again over what the cache holds."""
    data, tokenizer = as_plain(data), as_plain(tokenizer)
    cache_dir = Path(cache_dir).expanduser().absolute()
    check_folder("paths.cache_dir", cache_dir)
    fractions = split_fractions(data)
    workers = prepare_workers(data)
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

    if force or not target.exists():
        prepared = _build(corpus, fractions, tok_settings, key_material, target, workers, force)
    else:
        log.debug("reusing prepared data in %s", target)  # the run names it once it starts
        meta = read_meta(target)
        verify_prepared(target, meta)
        prepared = PreparedData(target, meta, reused=True)
    check_block_size(prepared.meta, data.get("block_size"))
    return prepared


def prepare_workers(data: Mapping[str, Any]) -> int:
    """``data.prepare_workers``: encoding processes; null means one per CPU."""
    value = data.get("prepare_workers")
    if value is None:
        return default_workers()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(
            f"data.prepare_workers={value!r} must be an integer >= 1 (or null for one per CPU)"
        )
    return value


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
    workers: int,
    replace: bool = False,
) -> PreparedData:
    started = time.perf_counter()
    log.info("preparing %s into %s", corpus.name, target)
    stream = split_stream(corpus, fractions)
    tokenizer, sample = _train_tokenizer(corpus, stream, tok_settings)
    dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32)

    with building_folder(target) as tmp:
        log.info("encoding %.1f MB", sample.total_bytes / 1e6)
        encoded = encode_splits(
            stream(), corpus.documents, tokenizer, dtype, tmp, workers, sample.total_bytes
        )
        splits = encoded["splits"]
        tokenizer.save(tmp)
        source = {
            "corpus": corpus.name,
            "origin": corpus.origin,
            "sha256": corpus.sha256,
            "text_sha256": encoded["text_sha256"],
            "characters": sum(f["characters"] for f in splits.values()),
            "bytes": sum(f["bytes"] for f in splits.values()),
        }
        if corpus.documents:
            del source["text_sha256"]
            source["documents"] = sum(f["documents"] for f in splits.values())
        meta = {
            "format_version": FORMAT_VERSION,
            "name": target.name,
            "key": key_material,
            "source": source,
            "data": {**corpus.settings, "splits": fractions},
            "documents": corpus.documents,
            "tokenizer": {
                **cache_key_settings(tok_settings),
                "vocab_size": tokenizer.vocab_size,
                "bos_id": tokenizer.bos_id,
                "eos_id": tokenizer.eos_id,
                "trained_on_characters": len(sample.text) if sample.text else None,
            },
            "vocab_size": tokenizer.vocab_size,
            "dtype": dtype.name,
            "splits": splits,
            "encoding": {
                "workers": encoded["workers"],
                "seconds": round(encoded["seconds"], 3),
                "mb_per_s": round(source["bytes"] / 1e6 / max(encoded["seconds"], 1e-9), 2),
            },
            "seconds": round(time.perf_counter() - started, 3),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        if target.exists() and replace:  # force=true: this build takes the old one's place
            discard(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / META_FILE).is_file():
                raise
            log.info("another process prepared %s first; using it", target)
            return PreparedData(target, read_meta(target), reused=True)
    log.info(
        "prepared %s in %.1f s (encoding at %.1f MB/s on %d process(es))",
        target,
        meta["seconds"],
        meta["encoding"]["mb_per_s"],
        meta["encoding"]["workers"],
    )
    return PreparedData(target, meta, reused=False)


def _train_tokenizer(corpus: Corpus, stream, tok_settings: dict[str, Any]):
    """First pass over the corpus: sample it, check it, train (or load) the tokenizer."""
    kind = tok_settings["kind"]
    trains = kind == "sentencepiece" and "model_file" not in tok_settings
    sample = sample_train_text(
        stream(),
        corpus.documents,
        sample_chars=tok_settings["sample_chars"] if trains else 0,
        seed=tok_settings.get("sample_seed", 0),
        count_chars=kind == "char",
    )
    if not sample.total_bytes:
        what = "has no documents" if corpus.documents else "is empty"
        raise UserError(f"the {corpus.name} corpus {what} ({corpus.origin}); give it some text")
    if not sample.train_characters:
        raise UserError(
            f"the train split of the {corpus.name} corpus is empty; raise data.splits.train "
            "or give more text"
        )
    if kind == "char":
        train_text = "".join(sorted(sample.chars.get("train", ())))
        heldout = "".join(sorted(sample.chars.get("val", set()) | sample.chars.get("test", set())))
    else:
        train_text, heldout = sample.text, ""
    if (not trains and kind != "char") or "chars" in tok_settings:
        log.info("using the given %s vocabulary", kind)
    elif trains:
        log.info(
            "training the %s tokenizer on %d of the train split's %d characters",
            kind,
            len(sample.text),
            sample.train_characters,
        )
    tokenizer = train_tokenizer(tok_settings, train_text, heldout, eos=corpus.documents)
    if corpus.documents and tokenizer.eos_id is None:
        raise UserError(
            "this corpus is documents, but the tokenizer has no end-of-text id to put between "
            "them; use a tokenizer that has one (tokenizer=sentencepiece trains one)"
        )
    return tokenizer, sample


def _tokenizer_tag(settings: Mapping[str, Any]) -> str:
    if settings["kind"] == "sentencepiece":
        return f"{settings['model_type']}{settings['vocab_size']}"
    return str(settings["kind"])


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
