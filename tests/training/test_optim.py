import math
from itertools import pairwise

import pytest
import torch

from mia.errors import UserError
from mia.model import Decoder, ModelConfig
from mia.training.optim import build_optimizer, lr_at, parameter_groups


def test_warmup_is_linear_from_zero():
    assert lr_at(0, 1e-3, warmup_steps=100, decay_steps=1000, min_lr=1e-4) == pytest.approx(1e-5)
    assert lr_at(49, 1e-3, 100, 1000, 1e-4) == pytest.approx(5e-4)
    assert lr_at(99, 1e-3, 100, 1000, 1e-4) == pytest.approx(1e-3)


def test_cosine_decays_to_the_minimum_and_stays():
    assert lr_at(100, 1e-3, 100, 1000, 1e-4) == pytest.approx(1e-3)
    midway = lr_at(550, 1e-3, 100, 1000, 1e-4)
    assert midway == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))
    assert lr_at(1000, 1e-3, 100, 1000, 1e-4) == pytest.approx(1e-4)
    assert lr_at(5000, 1e-3, 100, 1000, 1e-4) == pytest.approx(1e-4)
    lrs = [lr_at(s, 1e-3, 100, 1000, 1e-4) for s in range(100, 1001)]
    assert all(a >= b for a, b in pairwise(lrs))


def test_linear_decays_in_a_straight_line_to_the_minimum_and_stays():
    def lr(step):
        return lr_at(step, 1e-3, 100, 1100, 0.0, kind="linear")

    assert lr(100) == pytest.approx(1e-3)
    assert lr(350) == pytest.approx(0.75e-3)
    assert lr(600) == pytest.approx(0.5e-3)  # a cosine is at half here too
    assert lr(850) == pytest.approx(0.25e-3)  # and lower at three quarters:
    assert lr(1100) == pytest.approx(0.0) and lr(2000) == pytest.approx(0.0)
    assert lr_at(850, 1e-3, 100, 1100, 0.0) == pytest.approx(
        0.5 * (1 + math.cos(0.75 * math.pi)) * 1e-3
    )


def test_constant_schedule():
    assert lr_at(0, 3e-3, 0, 1000, 0.0, kind="constant") == 3e-3
    assert lr_at(999, 3e-3, 0, 1000, 0.0, kind="constant") == 3e-3
    assert lr_at(10, 3e-3, 0, None, 0.0) == 3e-3  # no decay horizon


def test_decay_applies_to_matrices_only():
    model = Decoder(ModelConfig.preset("gpt", vocab_size=50, dim=32, n_layers=2, n_heads=4))
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"])
    counted = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert counted == model.num_parameters()  # the tied embedding once


def test_optimizer_choice():
    model = Decoder(ModelConfig.preset("llama", vocab_size=50, dim=32, n_layers=1, n_heads=4))
    assert isinstance(build_optimizer(model, {"name": "adam", "lr": 1e-3}), torch.optim.Adam)
    adamw = build_optimizer(model, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1})
    assert isinstance(adamw, torch.optim.AdamW)
    with pytest.raises(UserError, match="optimizer.name='sgd'"):
        build_optimizer(model, {"name": "sgd", "lr": 1e-3})
    assert math.isclose(adamw.param_groups[0]["lr"], 1e-3)


def _llama(tie: bool = False) -> Decoder:
    config = ModelConfig.preset(
        "llama", vocab_size=50, dim=32, n_layers=2, n_heads=4, tie_embeddings=tie
    )
    return Decoder(config)


@pytest.mark.parametrize("tie", [False, True])
def test_embeddings_and_head_can_have_a_decay_of_their_own(tie):
    model = _llama(tie)
    decay, no_decay, embedding = parameter_groups(model, 0.8, embedding_weight_decay=0.0)
    assert (decay["weight_decay"], no_decay["weight_decay"], embedding["weight_decay"]) == (
        0.8,
        0.0,
        0.0,
    )
    outside = {id(model.tok_emb.weight), id(model.lm_head.weight)}
    assert {id(p) for p in embedding["params"]} == outside
    block_matrices = {id(p) for p in model.blocks.parameters() if p.ndim == 2}
    assert {id(p) for p in decay["params"]} == block_matrices
    counted = sum(p.numel() for g in (decay, no_decay, embedding) for p in g["params"])
    assert counted == model.num_parameters()


def test_without_an_embedding_decay_of_their_own_there_are_two_groups():
    """So the optimizer state of runs (and checkpoints) that do not use it is unchanged."""
    for apart in (None, 0.1):
        assert len(parameter_groups(_llama(), 0.1, embedding_weight_decay=apart)) == 2


@pytest.mark.parametrize("name", ["adamw", "muon"])
def test_embedding_rows_without_gradient_shrink_only_under_embedding_decay(name):
    """AdamW's decoupled decay shrinks every decayed weight each step, gradient or not: the
    rows of tokens absent from the batch show which decay the embedding table got."""
    rows = {}
    for embedding_decay in (None, 0.0):
        torch.manual_seed(0)
        model = _llama()
        settings = {"name": name, "lr": 1e-2, "weight_decay": 0.5}
        settings["embedding_weight_decay"] = embedding_decay
        optimizer = build_optimizer(model, settings)
        before = model.tok_emb.weight[40:].detach().clone()  # ids 40-49 never appear below
        model(torch.randint(0, 40, (2, 8))).square().mean().backward()
        optimizer.step()
        rows[embedding_decay] = (before, model.tok_emb.weight[40:].detach())
    before, after = rows[None]
    assert torch.allclose(after, before * (1 - 1e-2 * 0.5))
    before, after = rows[0.0]
    assert torch.equal(after, before)
