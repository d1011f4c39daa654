"""A µP model exports to the Llama format with its multipliers folded into the weights
(the logits' 1/m into lm_head, the attention's 1/D into q_proj): transformers then computes
the same logits, and importing the folder gives a standard model with those logits too. A
µP model with tied embeddings cannot fold the logits' multiplier and is refused in one line."""

import pytest
import torch
import torch.nn.functional as F

from mia.errors import UserError
from mia.interop import hf
from mia.model import Decoder, ModelConfig

MUP = dict(
    vocab_size=61,
    dim=64,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    max_seq_len=64,
    parametrization="mup",
    mup_base_dim=16,  # m = 4
)


def trained(config: ModelConfig) -> Decoder:
    """A decoder after a few AdamW steps, so no weight is at its initial value."""
    torch.manual_seed(0)
    model = Decoder(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = torch.randint(0, config.vocab_size, (2, 17))
    for _ in range(3):
        F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten()).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.mark.parametrize(
    "heads",
    [{}, {"head_size": 8}],  # fixed head count (q_proj folds 1/sqrt(m)); fixed head size
    ids=["head_count", "head_size"],
)
def test_mup_export_folds_multipliers_and_matches_transformers(tmp_path, heads):
    transformers = pytest.importorskip("transformers")
    config = ModelConfig.preset("llama", **MUP, **heads)
    assert config.width_multiplier == 4.0 and hf.export_problems(config) == []
    model = trained(config)
    batch = torch.randint(0, config.vocab_size, (2, 40))

    hf_model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf.to_hf_config(config)))
    hf_model.load_state_dict(hf.to_hf_state_dict(model.state_dict(), config))
    with torch.no_grad():
        ours, theirs = model(batch), hf_model.eval()(batch).logits
    assert ours.abs().max() > 0.1
    assert (ours - theirs).abs().max().item() <= 1e-5
    # unfolded weights would not match: the folding is what makes it right
    plain = hf.to_hf_state_dict(
        model.state_dict(),
        ModelConfig.preset("llama", **MUP | heads | dict(parametrization="sp")),
    )
    hf_model.load_state_dict(plain)
    with torch.no_grad():
        assert (ours - hf_model(batch).logits).abs().max().item() > 1e-2

    # and back: the folder imports as a standard model with the same logits
    hf.save_hf_folder(model, None, tmp_path / "out")
    imported, _ = hf.decoder_from_hf_folder(tmp_path / "out")
    assert imported.config.parametrization == "sp"
    with torch.no_grad():
        assert (imported.eval()(batch) - ours).abs().max().item() <= 1e-5


def test_mup_with_tied_embeddings_is_refused_in_one_line(tmp_path):
    config = ModelConfig.preset("llama", **MUP, tie_embeddings=True)
    with pytest.raises(UserError) as err:
        hf.save_hf_folder(Decoder(config), None, tmp_path / "out")
    assert str(err.value) == (
        "this model does not fit the Llama format: model.parametrization=mup with "
        "tie_embeddings=true (the logits' 1/m multiplier would fold into the embedding table too)"
    )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_mup_at_its_base_width_exports_like_sp():
    config = ModelConfig.preset("llama", **MUP | dict(mup_base_dim=64, tie_embeddings=True))
    assert hf.export_problems(config) == []
    model = trained(config)
    sp = ModelConfig.preset("llama", **MUP | dict(parametrization="sp", tie_embeddings=True))
    ours = hf.to_hf_state_dict(model.state_dict(), config)
    theirs = hf.to_hf_state_dict(model.state_dict(), sp)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
