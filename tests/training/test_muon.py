"""optimizer=muon: Muon for the blocks' matrices, AdamW for the rest, as one optimizer."""

import pytest
import torch
import torch.nn.functional as F

from mia.cli.train import train
from mia.model import Decoder, ModelConfig
from mia.training.optim import MuonWithAdamW, build_optimizer

MUON = {"name": "muon", "lr": 3e-3, "weight_decay": 0.1, "muon_lr": 0.02}


def tiny_decoder() -> Decoder:
    torch.manual_seed(0)
    config = ModelConfig.preset("llama", vocab_size=50, dim=32, n_layers=2, n_heads=4)
    return Decoder(config)


def test_hidden_matrices_go_to_muon_and_the_rest_to_adamw():
    model = tiny_decoder()
    opt = build_optimizer(model, MUON)
    assert isinstance(opt, MuonWithAdamW)
    muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    adamw = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    block_matrices = {id(p) for p in model.blocks.parameters() if p.ndim == 2}
    assert muon == block_matrices
    assert not muon & adamw and muon | adamw == {id(p) for p in model.parameters()}
    assert id(model.tok_emb.weight) in adamw and id(model.lm_head.weight) in adamw
    assert {g["lr"] for g in opt.muon.param_groups} == {0.02}
    assert {g["lr"] for g in opt.adamw.param_groups} == {3e-3}


def test_the_schedule_scales_both_rates_and_a_step_moves_every_weight():
    model = tiny_decoder()
    opt = build_optimizer(model, MUON)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    assert [g["lr"] for g in opt.muon.param_groups] == [0.01]
    assert {g["lr"] for g in opt.adamw.param_groups} == {1.5e-3}
    before = [p.detach().clone() for p in model.parameters()]
    idx = torch.randint(0, 50, (4, 16))
    F.cross_entropy(model(idx).flatten(0, 1), idx.flatten()).backward()
    opt.step()
    scheduler.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_state_round_trips():
    model = tiny_decoder()
    opt = build_optimizer(model, MUON)
    idx = torch.randint(0, 50, (4, 16))
    F.cross_entropy(model(idx).flatten(0, 1), idx.flatten()).backward()
    opt.step()
    again = build_optimizer(model, MUON)
    again.load_state_dict(opt.state_dict())
    assert again.param_groups[0] is again.muon.param_groups[0]  # groups stay shared
    for key in ("muon", "adamw"):
        a, b = opt.state_dict()[key]["state"], again.state_dict()[key]["state"]
        assert a.keys() == b.keys()
        for i in a:
            for name, value in a[i].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[i][name]))


@pytest.mark.slow
def test_muon_training_resumes_exactly(train_config, tmp_path):
    """20 steps, then resumed to 40, equals 40 straight: Muon's and AdamW's state both
    travel in the checkpoint, and the schedule continues."""
    common = ("optimizer=muon", "test=false", "scheduler.decay_steps=40")
    common += ("callbacks.text_samples.every_n_steps=0",)
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(train_config(*common, "trainer.max_steps=40", output_dir=straight))
    train(train_config(*common, "trainer.max_steps=20", output_dir=halves))
    train(train_config(*common, "trainer.max_steps=40", "ckpt_path=last", output_dir=halves))
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(halves / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 40
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert set(a["optimizer_states"][0]) == {"muon", "adamw"}
