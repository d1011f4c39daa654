"""TextDataModule: attributes, the training stream as a pure function of (seed, index, rank),
resuming, workers, whole-split evaluation windows, and a run under a real Trainer."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mia.data import TextDataModule
from mia.data.dataset import IGNORE_INDEX, EvalWindows, train_batch, window_offsets
from mia.errors import UserError
from mia.tokenizer import Tokenizer

BLOCK, BATCH = 16, 4


def _data(text_file: Path, **overrides: object) -> dict:
    return {
        "corpus": "text",
        "files": [str(text_file)],
        "splits": {"train": 0.8, "val": 0.1, "test": 0.1},
        "block_size": BLOCK,
        "batch_size": BATCH,
        "num_workers": 0,
    } | overrides


def _module(text_file: Path, cache_dir: Path, seed: int = 0, **overrides: object) -> TextDataModule:
    dm = TextDataModule(_data(text_file, **overrides), {"kind": "char"}, str(cache_dir), seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _first(loader: torch.utils.data.DataLoader, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(itertools.islice(iter(loader), n))


def test_attributes_after_setup(text_file: Path, cache_dir: Path) -> None:
    config = OmegaConf.create({"data": _data(text_file), "tokenizer": {"kind": "char"}})
    dm = TextDataModule(config.data, config.tokenizer, str(cache_dir), seed=3)
    dm.prepare_data()
    dm.setup("fit")
    tokenizer = dm.tokenizer
    dm.setup("validate")  # a second call does not reload
    assert dm.tokenizer is tokenizer and isinstance(tokenizer, Tokenizer)
    assert dm.vocab_size == tokenizer.vocab_size == dm.meta["vocab_size"]
    assert (dm.block_size, dm.batch_size) == (BLOCK, BATCH)
    assert dm.prepared_dir.parent == cache_dir / "prepared"
    assert set(dm.chars_per_token) == {"train", "val", "test"}
    assert dm.chars_per_token["train"] == pytest.approx(1.0)


def test_vocab_size_is_available_without_setup(text_file: Path, cache_dir: Path) -> None:
    dm = TextDataModule(_data(text_file), {"kind": "char"}, cache_dir)
    assert dm.vocab_size > 10


def test_training_batches_are_shifted_windows_of_the_train_split(
    text_file: Path, cache_dir: Path
) -> None:
    dm = _module(text_file, cache_dir)
    train = np.asarray(dm.prepared.tokens("train"), dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(train, BLOCK + 1)
    for x, y in _first(dm.train_dataloader(), 3):
        assert x.shape == y.shape == (BATCH, BLOCK)
        assert x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x.numpy(), y.numpy(), strict=True):
            window = np.append(row_x, row_y[-1])
            assert (windows == window).all(axis=1).any()  # a real slice of the train split


def test_a_batch_depends_only_on_seed_index_and_rank(text_file: Path, cache_dir: Path) -> None:
    tokens = _module(text_file, cache_dir).prepared.tokens("train")

    def batch(seed: int, index: int, rank: int) -> torch.Tensor:
        x, _ = train_batch(tokens, index, seed=seed, rank=rank, block_size=BLOCK, batch_size=BATCH)
        return x

    assert torch.equal(batch(1, 5, 0), batch(1, 5, 0))
    assert not torch.equal(batch(1, 5, 0), batch(1, 6, 0))
    assert not torch.equal(batch(1, 5, 0), batch(2, 5, 0))
    assert not torch.equal(batch(1, 5, 0), batch(1, 5, 1))


_FRESH = """
import sys
from mia.data.dataset import TrainBatches
path, dtype = sys.argv[1:]
stream = TrainBatches(path, dtype, block_size=16, batch_size=4, seed=7, rank=1, start=11)
x, y = next(iter(stream))
print(x.tolist(), y.tolist())
"""


def test_same_seed_and_step_give_the_same_batch_in_a_fresh_process(
    text_file: Path, cache_dir: Path
) -> None:
    dm = _module(text_file, cache_dir, seed=7)
    dm.trainer = SimpleNamespace(global_step=11, accumulate_grad_batches=1, global_rank=1)
    x, y = next(iter(dm.train_dataloader()))
    path, dtype = dm.prepared.bin_path("train"), dm.prepared.dtype.name
    result = subprocess.run(
        [sys.executable, "-c", _FRESH, str(path), dtype], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"{x.tolist()} {y.tolist()}"


def test_resuming_continues_the_stream(text_file: Path, cache_dir: Path) -> None:
    dm = _module(text_file, cache_dir, seed=1)
    stream = _first(dm.train_dataloader(), 10)
    dm.trainer = SimpleNamespace(global_step=3, accumulate_grad_batches=2, global_rank=0)
    resumed = _first(dm.train_dataloader(), 4)
    for (x, y), (rx, ry) in zip(stream[6:], resumed, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_ranks_see_different_batches(text_file: Path, cache_dir: Path) -> None:
    dm = _module(text_file, cache_dir)
    dm.trainer = SimpleNamespace(global_step=0, accumulate_grad_batches=1, global_rank=0)
    x0, _ = next(iter(dm.train_dataloader()))
    dm.trainer.global_rank = 1
    x1, _ = next(iter(dm.train_dataloader()))
    assert not torch.equal(x0, x1)


@pytest.mark.slow
def test_workers_do_not_change_the_stream(text_file: Path, cache_dir: Path) -> None:
    single = _first(_module(text_file, cache_dir, num_workers=0).train_dataloader(), 6)
    multi = _first(_module(text_file, cache_dir, num_workers=2).train_dataloader(), 6)
    for (x, y), (mx, my) in zip(single, multi, strict=True):
        assert torch.equal(x, mx) and torch.equal(y, my)


@pytest.mark.parametrize("block_size", [1, 5, BLOCK])
def test_validation_visits_every_token_once(
    text_file: Path, cache_dir: Path, block_size: int
) -> None:
    dm = _module(text_file, cache_dir, block_size=block_size)
    tokens = np.asarray(dm.prepared.tokens("val"), dtype=np.int64)
    xs, ys = [], []
    for x, y in dm.val_dataloader():
        assert x.shape[1] == y.shape[1] == block_size and x.shape[0] <= BATCH
        xs.append(x.flatten())
        ys.append(y.flatten())
    x, y = torch.cat(xs), torch.cat(ys)
    counted = y != IGNORE_INDEX
    assert torch.equal(y[counted], torch.from_numpy(tokens[1:]))  # each target once, in order
    assert torch.equal(x[counted], torch.from_numpy(tokens[:-1]))  # with its own context
    assert not counted[: len(tokens) - 1].logical_not().any()  # padding only at the end
    assert (x[~counted] == 0).all()


def test_eval_windows_of_a_tiny_split(tmp_path: Path) -> None:
    path = tmp_path / "split.bin"
    for n, windows in [(0, 0), (1, 0), (2, 1), (5, 1), (6, 2)]:
        np.arange(n, dtype=np.uint16).tofile(path)
        assert len(EvalWindows(path, np.uint16, block_size=4)) == windows
    x, y = EvalWindows(path, np.uint16, block_size=4)[1]
    assert x.tolist() == [4, 0, 0, 0] and y.tolist() == [5, -100, -100, -100]


def test_empty_test_split_gives_no_batches(text_file: Path, cache_dir: Path) -> None:
    dm = _module(text_file, cache_dir, splits={"train": 0.9, "val": 0.1, "test": 0.0})
    assert list(dm.test_dataloader()) == []
    assert np.isnan(dm.chars_per_token["test"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"block_size": 0}, "data.block_size=0 must be an integer >= 1"),
        ({"batch_size": "8"}, "data.batch_size='8' must be an integer >= 1"),
        ({"num_workers": -1}, "data.num_workers=-1 must be an integer >= 0"),
    ],
)
def test_bad_loader_settings_are_user_errors(
    text_file: Path, cache_dir: Path, overrides: dict, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        TextDataModule(_data(text_file, **overrides), {"kind": "char"}, cache_dir)


def test_train_split_shorter_than_a_window_names_block_size(
    text_file: Path, cache_dir: Path
) -> None:
    dm = TextDataModule(_data(text_file, block_size=10**7), {"kind": "char"}, cache_dir)
    with pytest.raises(UserError, match=r"data\.block_size=10000000"):
        dm.prepare_data()


class _Recorder(L.LightningModule):
    """Trains one parameter and records every training and validation batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.train_batches: list[torch.Tensor] = []
        self.val_batches = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        self.train_batches.append(batch[0].clone())
        return (self.weight - batch[0].float().mean()) ** 2

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> None:
        self.val_batches += 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.slow
def test_a_trainer_sees_the_stream_in_order_across_epochs(
    text_file: Path, cache_dir: Path, tmp_path: Path
) -> None:
    dm = TextDataModule(_data(text_file), {"kind": "char"}, cache_dir, seed=5)
    model = _Recorder()
    trainer = L.Trainer(
        max_steps=5,
        limit_train_batches=2,  # epochs of 2 batches: the loader is iterated three times
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    fresh = TextDataModule(_data(text_file), {"kind": "char"}, cache_dir, seed=5)
    expected = [x for x, _ in _first(fresh.train_dataloader(), 5)]
    assert len(model.train_batches) == 5
    for seen, want in zip(model.train_batches, expected, strict=True):
        assert torch.equal(seen, want)
    assert model.val_batches > 0


def _shuffled_offsets(n_tokens: int, batches: range, *, rank: int = 0, world: int = 1):
    return np.concatenate(
        [
            window_offsets(
                n_tokens,
                i,
                seed=3,
                rank=rank,
                block_size=BLOCK,
                batch_size=BATCH,
                sampler="shuffled",
                world_size=world,
            )
            for i in batches
        ]
    )


@pytest.mark.parametrize("n_tokens", [BLOCK * 50 + 7, BLOCK * 48 + 1])
def test_shuffled_epochs_train_on_every_window_once_an_epoch(n_tokens: int) -> None:
    windows = (n_tokens - BLOCK) // BLOCK
    offsets = _shuffled_offsets(n_tokens, range(3 * windows // BATCH))
    epochs = [offsets[e * windows : (e + 1) * windows] for e in range(2)]
    for epoch in epochs:
        assert (0 <= epoch).all() and (epoch + BLOCK + 1 <= n_tokens).all()  # windows fit
        shift = epoch.min() % BLOCK
        assert ((epoch - shift) % BLOCK == 0).all()  # consecutive windows from one start
        assert sorted((epoch - shift) // BLOCK) == list(range(windows))  # each once
        assert not np.array_equal(epoch, np.sort(epoch))  # in a shuffled order
    assert not np.array_equal(epochs[0], epochs[1])  # each epoch its own order


def test_shuffled_epochs_are_shared_out_among_ranks() -> None:
    n_tokens = BLOCK * 40 + 3
    windows = (n_tokens - BLOCK) // BLOCK
    batches = range(windows // (2 * BATCH))
    alone = _shuffled_offsets(n_tokens, range(2 * len(batches)))
    rank0 = _shuffled_offsets(n_tokens, batches, rank=0, world=2).reshape(-1, BATCH)
    rank1 = _shuffled_offsets(n_tokens, batches, rank=1, world=2).reshape(-1, BATCH)
    interleaved = np.stack([rank0, rank1], axis=1).ravel()
    assert np.array_equal(interleaved, alone)  # two ranks walk the one-rank order together


def test_a_corpus_shorter_than_two_windows_still_trains_shuffled() -> None:
    offsets = _shuffled_offsets(BLOCK + 3, range(5))
    assert ((0 <= offsets) & (offsets + BLOCK + 1 <= BLOCK + 3)).all()


def test_the_datamodule_draws_with_its_sampler(text_file: Path, cache_dir: Path) -> None:
    dm = _module(text_file, cache_dir, seed=5, sampler="shuffled")
    x, _ = next(iter(dm.train_dataloader()))
    tokens = dm.prepared.tokens("train")
    expected, _ = train_batch(
        tokens, 0, seed=5, rank=0, block_size=BLOCK, batch_size=BATCH, sampler="shuffled"
    )
    assert torch.equal(x, expected)
    assert not torch.equal(
        x, _first(_module(text_file, cache_dir, seed=5).train_dataloader(), 1)[0][0]
    )
    with pytest.raises(UserError, match="data.sampler='epochs' must be one of random, shuffled"):
        _module(text_file, cache_dir, sampler="epochs")
