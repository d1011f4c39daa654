"""The LightningDataModule: prepared token files in, batches out.

    dm = TextDataModule(cfg.data, cfg.tokenizer, cfg.paths.cache_dir, seed=cfg.seed)
    dm.prepare_data(); dm.setup("fit")          # cheap when the data is already prepared
    model = build(vocab_size=dm.vocab_size)     # the one thing the model needs from the data

``vocab_size``, ``tokenizer``, ``meta`` and the others prepare and load on first access if
`setup` has not run yet, so they can be read before a Trainer exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from mia.data.dataset import SAMPLERS, EvalWindows, TrainBatches
from mia.data.prepare import SPLITS, PreparedData, as_plain, chars_per_token, prepare_dataset
from mia.errors import UserError
from mia.tokenizer import Tokenizer


class TextDataModule(L.LightningDataModule):
    """Train on an endless stream of windows (`data.sampler`: random offsets, or shuffled
    epochs); validate and test on whole splits.

    `data` is the ``cfg.data`` node (corpus, path/files, stage_directions, splits,
    block_size, batch_size, sampler, num_workers), `tokenizer` the ``cfg.tokenizer`` node;
    either a DictConfig or a plain dict.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        tokenizer: Mapping[str, Any],
        cache_dir: str | Path,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.data_config: dict[str, Any] = dict(as_plain(data))
        self.tokenizer_config: dict[str, Any] = dict(as_plain(tokenizer))
        self.cache_dir = Path(cache_dir).expanduser()
        self.seed = int(seed)
        self.block_size = _count(self.data_config, "block_size", minimum=1)
        self.batch_size = _count(self.data_config, "batch_size", minimum=1)
        self.num_workers = _count(self.data_config, "num_workers", minimum=0, default=0)
        self.sampler = self.data_config.get("sampler") or "random"
        if self.sampler not in SAMPLERS:
            raise UserError(f"data.sampler={self.sampler!r} must be one of {', '.join(SAMPLERS)}")
        self._prepared: PreparedData | None = None
        self._tokenizer: Tokenizer | None = None

    # -- preparing -------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Tokenize into the cache, or find it there (Lightning: once per node)."""
        self._prepared = prepare_dataset(self.data_config, self.tokenizer_config, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        """Load the tokenizer and meta; a second call does nothing."""
        if self._tokenizer is not None:
            return
        if self._prepared is None:  # another process prepared it, or prepare_data was skipped
            self.prepare_data()
        assert self._prepared is not None
        self._tokenizer = self._prepared.load_tokenizer()

    @property
    def prepared(self) -> PreparedData:
        self.setup()
        assert self._prepared is not None
        return self._prepared

    @property
    def prepared_dir(self) -> Path:
        return self.prepared.directory

    @property
    def meta(self) -> dict[str, Any]:
        return self.prepared.meta

    @property
    def tokenizer(self) -> Tokenizer:
        self.setup()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def chars_per_token(self) -> dict[str, float]:
        """Characters per token of each split (NaN for an empty one): bits per character
        is loss / ln 2 / chars_per_token."""
        return chars_per_token(self.meta)

    # -- loaders ---------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        """Endless batches; the first is number ``global_step * accumulate_grad_batches``."""
        dataset = TrainBatches(
            self.prepared.bin_path("train"),
            self.prepared.dtype,
            block_size=self.block_size,
            batch_size=self.batch_size,
            seed=self.seed,
            rank=self._rank(),
            sampler=self.sampler,
            world_size=self._world_size(),
        )
        return _ResumingLoader(
            dataset,
            start_index=self.start_index,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            # Off: each new iteration must start at the current step, which the dataset
            # copies inside persistent workers would not learn.
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        """The test split's windows; an empty test split gives a loader with no batches, so
        ``trainer.test`` runs and logs no test metrics."""
        return self._eval_loader("test")

    def start_index(self) -> int:
        """Where the training stream starts: the number of batches already trained on."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return int(trainer.global_step) * int(trainer.accumulate_grad_batches)

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in SPLITS:
            raise ValueError(split)
        dataset = EvalWindows(self.prepared.bin_path(split), self.prepared.dtype, self.block_size)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0 and len(dataset) > 0,
        )

    def _rank(self) -> int:
        return 0 if self.trainer is None else int(self.trainer.global_rank)

    def _world_size(self) -> int:
        return int(getattr(self.trainer, "world_size", 1))


class _ResumingLoader(DataLoader):
    """A DataLoader over `TrainBatches` that sets the stream's start each time it is iterated
    (a resumed run, or a new epoch under ``limit_train_batches``)."""

    def __init__(
        self, dataset: TrainBatches, start_index: Callable[[], int], **kwargs: Any
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.start_index = start_index

    def __iter__(self) -> Iterator[Any]:
        self.dataset.start = self.start_index()
        return super().__iter__()


def _count(config: Mapping[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"data.{key}={value!r} must be an integer >= {minimum}")
    return value
