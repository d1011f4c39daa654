"""The speedrun switches and the Llama format: what Llama cannot express is refused, in the
same one-line style as the rest; zero-initialised residuals change only the start, so they
export; an imported Llama has every switch off."""

import pytest
import torch
import torch.nn.functional as F

from mia.errors import UserError
from mia.interop import hf
from mia.model import Decoder, ModelConfig

TINY = dict(vocab_size=61, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)

REFUSED = {
    "qk_norm": (dict(qk_norm=True), "model.qk_norm=true (Llama has no query/key norm)"),
    "relu2": (dict(mlp="relu2"), "model.mlp=relu2 (Llama uses swiglu)"),
    "logit_softcap": (
        dict(logit_softcap=30),
        "model.logit_softcap=30.0 (Llama does not cap logits)",
    ),
}


@pytest.mark.parametrize("switch", REFUSED)
def test_export_names_what_llama_cannot_express(switch, tmp_path):
    overrides, message = REFUSED[switch]
    config = ModelConfig.preset("llama", **TINY, **overrides)
    assert hf.export_problems(config) == [message]
    with pytest.raises(UserError) as err:
        hf.save_hf_folder(Decoder(config), None, tmp_path / "out")
    assert str(err.value) == f"this model does not fit the Llama format: {message}"
    assert not (tmp_path / "out").exists()


def test_every_refused_switch_is_listed_in_one_error():
    switches = dict(qk_norm=True, mlp="relu2", logit_softcap=30, zero_init_residual=True)
    config = ModelConfig.preset("llama", **TINY, **switches)
    assert sorted(hf.export_problems(config)) == sorted(m for _, m in REFUSED.values())
    with pytest.raises(
        UserError, match=r"mlp=relu2 .*; model.qk_norm=true .*; model.logit_softcap=30.0 "
    ):
        hf.check_exportable(config)


def test_zero_init_residual_exports_with_the_same_logits():
    transformers = pytest.importorskip("transformers")
    config = ModelConfig.preset("llama", **TINY, zero_init_residual=True)
    assert hf.export_problems(config) == []
    torch.manual_seed(0)
    model = Decoder(config)
    batch = torch.randint(0, config.vocab_size, (2, 17))
    F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten()).backward()
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()  # residuals leave zero
    model.eval()

    hf_model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf.to_hf_config(config)))
    hf_model.load_state_dict(hf.to_hf_state_dict(model.state_dict(), config))
    with torch.no_grad():
        ours, theirs = model(batch), hf_model.eval()(batch).logits
    assert ours.abs().max() > 0
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_an_imported_llama_has_every_switch_off():
    config = ModelConfig.preset("llama", **TINY)
    imported = hf.from_hf_config(hf.to_hf_config(config))
    assert imported == config
    assert (imported.qk_norm, imported.logit_softcap, imported.zero_init_residual) == (
        False,
        None,
        False,
    )
    assert imported.mlp == "swiglu"
