"""optimizer=muon: Muon for the blocks' matrices, AdamW for the rest, as one optimizer."""

import torch
import torch.nn.functional as F

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


# Exact resume with Muon: tests/training/test_train.py::test_resume_is_exact[muon].


def test_fewer_newton_schulz_steps_orthogonalise_less():
    """muon_ns_steps reaches Muon: one step leaves the update further from orthogonal."""
    deviations = {}
    for steps in (1, 5):
        model = tiny_decoder()
        opt = build_optimizer(model, {**MUON, "muon_ns_steps": steps, "muon_momentum": 0.0})
        weight = model.blocks[0].attn.proj.weight  # (32, 32): square, so the update is U V^T
        before = weight.detach().clone()
        idx = torch.randint(0, 50, (4, 16))
        F.cross_entropy(model(idx).flatten(0, 1), idx.flatten()).backward()
        opt.step()
        update = (before - weight.detach()) / 0.02
        singular = torch.linalg.svdvals(update)
        deviations[steps] = (singular - 1).abs().mean().item()
    assert deviations[1] > deviations[5]
