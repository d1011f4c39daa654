"""Parity with transformers' LlamaForCausalLM: same weights, same logits, same greedy tokens."""

import pytest
import torch

from mia.errors import UserError
from mia.interop import hf
from mia.model import Decoder, ModelConfig

transformers = pytest.importorskip("transformers")

VOCAB = 97


def mia_llama(n_kv_heads: int, tie: bool = False) -> Decoder:
    torch.manual_seed(0)
    config = ModelConfig.preset(
        "llama",
        vocab_size=VOCAB,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=n_kv_heads,
        max_seq_len=128,
        rope_theta=500.0,
        norm_eps=1e-6,
        tie_embeddings=tie,
    )
    model = Decoder(config)
    with torch.no_grad():  # weights larger than at init, and non-unit norms, so parity is tested
        for name, param in model.named_parameters():
            param.normal_(1.0 if "norm" in name else 0.0, 0.1 if "norm" in name else 0.15)
    return model.eval()


def to_transformers(model: Decoder):
    hf_config = transformers.LlamaConfig(**hf.to_hf_config(model.config))
    hf_model = transformers.LlamaForCausalLM(hf_config).eval()
    missing, unexpected = hf_model.load_state_dict(
        hf.to_hf_state_dict(model.state_dict(), model.config), strict=False
    )
    assert not unexpected
    assert all("lm_head" in key for key in missing)  # only when tied
    return hf_model


@pytest.mark.parametrize(("heads", "tie"), [(4, False), (2, False), (1, False), (2, True)])
def test_logits_and_greedy_tokens_match_transformers(heads, tie):
    model = mia_llama(heads, tie)
    hf_model = to_transformers(model)
    idx = torch.randint(0, VOCAB, (2, 30))
    with torch.no_grad():
        ours = model(idx)
        theirs = hf_model(idx).logits
    assert (ours - theirs).abs().max().item() <= 1e-4

    prompt = idx[:, :6]
    greedy = model.generate(prompt, max_new_tokens=50, temperature=0)
    hf_greedy = hf_model.generate(
        prompt, max_new_tokens=50, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    assert torch.equal(greedy, hf_greedy)


@pytest.mark.parametrize("heads", [4, 2, 1])
def test_weights_round_trip_through_the_llama_layout(heads):
    model = mia_llama(heads)
    hf_model = to_transformers(model)
    config = hf.from_hf_config(hf_model.config.to_dict())
    assert config == model.config
    back = Decoder(config)
    back.load_state_dict(hf.from_hf_state_dict(hf_model.state_dict(), config))
    idx = torch.randint(0, VOCAB, (1, 12))
    torch.testing.assert_close(back.eval()(idx), model(idx), atol=0, rtol=0)


def test_classic_parts_do_not_export():
    config = ModelConfig.preset("gpt", vocab_size=VOCAB, dim=64, n_heads=4)
    with pytest.raises(UserError, match=r"model.norm=layernorm.*model.position=learned"):
        hf.to_hf_config(config)
