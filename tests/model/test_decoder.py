import pytest
import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig

VOCAB = 61
HEAD_LAYOUTS = {"mha": 4, "gqa": 2, "mqa": 1}


def tiny(preset: str, n_kv_heads: int = 4, **overrides) -> Decoder:
    torch.manual_seed(0)
    values = dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads)
    values["max_seq_len"] = 96
    values.update(overrides)
    return Decoder(ModelConfig.preset(preset, **values)).eval()


# The speedrun switches, one at a time and all together, on top of a preset.
SWITCHES = {
    "plain": {},
    "qk_norm": dict(qk_norm=True),
    "relu2": dict(mlp="relu2"),
    "softcap": dict(logit_softcap=10.0),
    "zero_init": dict(zero_init_residual=True),
    # m = 4: 1/D attention, 1/m logits; readout and query not zeroed, so both act from step 0
    "mup": dict(parametrization="mup", mup_base_dim=8, mup_zero_init=False),
    "all": dict(qk_norm=True, mlp="relu2", logit_softcap=10.0, zero_init_residual=True),
}
# Every head layout of both presets plainly; each switch on a few of them (MHA, GQA, MQA).
CASES = [(p, name, "plain") for p in ("llama", "gpt") for name in HEAD_LAYOUTS]
CASES += [
    (p, name, switch)
    for switch in SWITCHES
    if switch != "plain"
    for p, name in (("llama", "gqa"), ("llama", "mqa"), ("gpt", "mha"))
]
CASE_ARGS = ("preset", "heads", "switch")


def tiny_case(preset: str, heads: str, switch: str) -> Decoder:
    return tiny(preset, HEAD_LAYOUTS[heads], **SWITCHES[switch])


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_forward_and_backward(preset, heads, switch):
    model = tiny_case(preset, heads, switch).train()
    idx = torch.randint(0, VOCAB, (3, 17))
    logits = model(idx)
    assert logits.shape == (3, 17, VOCAB)
    F.cross_entropy(logits.flatten(0, 1), idx.flatten()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_causality(preset, heads, switch):
    model = tiny_case(preset, heads, switch)
    idx = torch.randint(0, VOCAB, (2, 24))
    t = 11
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + 1) % VOCAB
    before, after = model(idx), model(changed)
    torch.testing.assert_close(before[:, :t], after[:, :t], atol=0, rtol=0)
    assert not torch.allclose(before[:, t:], after[:, t:])


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_cached_logits_equal_uncached(preset, heads, switch):
    model = tiny_case(preset, heads, switch)
    idx = torch.randint(0, VOCAB, (2, 40))
    full = model(idx)
    model.setup_cache(batch_size=2, max_len=64)
    prompt = model(idx[:, :25], input_pos=torch.arange(25))
    steps = [model(idx[:, t : t + 1], input_pos=torch.tensor([t])) for t in range(25, 40)]
    model.reset_cache()
    torch.testing.assert_close(torch.cat([prompt, *steps], dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_greedy_tokens_identical_with_and_without_cache(preset, heads, switch):
    model = tiny_case(preset, heads, switch)
    # Larger weights than at initialisation: sharp logits (no near-ties) and varied text.
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, 0.3)
    prompts = torch.randint(0, VOCAB, (3, 8))
    cached = model.generate(prompts, max_new_tokens=60, temperature=0)
    uncached = model.generate(prompts, max_new_tokens=60, temperature=0, use_cache=False)
    assert cached.shape == (3, 68)
    assert torch.equal(cached, uncached)
    assert len(set(cached[0, 8:].tolist())) > 3  # a real sequence, not one repeated token


def test_generation_past_the_context_length():
    model = tiny("llama", 2, max_seq_len=16)
    out = model.generate(
        torch.randint(0, VOCAB, (2, 5)), max_new_tokens=40, temperature=0.8, seed=1
    )
    assert out.shape == (2, 45)
    assert model.cache_len == 0  # the cache is torn down after decoding


def test_sampling_is_repeatable_with_a_seed():
    model = tiny("gpt", 4)
    prompt = torch.randint(0, VOCAB, (2, 4))
    a = model.generate(prompt, 30, temperature=1.0, top_k=10, top_p=0.9, seed=7)
    b = model.generate(prompt, 30, temperature=1.0, top_k=10, top_p=0.9, seed=7)
    c = model.generate(prompt, 30, temperature=1.0, top_k=10, top_p=0.9, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("preset", ["llama", "gpt"])
def test_gqa_with_all_kv_heads_equals_mha(preset):
    """G == H through the grouped path equals plain multi-head attention on the same weights."""
    model = tiny(preset, 4)
    idx = torch.randint(0, VOCAB, (2, 20))
    attn = model.blocks[0].attn
    x = torch.randn(2, 20, 32)
    rope = None
    if preset == "llama":
        rope = (model.rope_cos[:20], model.rope_sin[:20])
    ours = attn(x, rope)
    # Reference: textbook multi-head attention with the same projections.
    q, k, v = attn.qkv(x).split(32, dim=-1)
    q, k, v = (t.view(2, 20, 4, 8).transpose(1, 2) for t in (q, k, v))
    if rope is not None:
        from mia.model.rope import apply_rope

        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    scores = (q @ k.transpose(-2, -1)) / 8**0.5
    scores = scores.masked_fill(torch.ones(20, 20).triu(1).bool(), float("-inf"))
    ref = attn.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 20, 32))
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert model(idx).shape == (2, 20, VOCAB)


def test_mqa_equals_mha_with_shared_key_value_heads():
    """Grouped attention equals MHA whose key/value heads repeat each group's weights."""
    gqa = tiny("llama", 2)
    mha = tiny("llama", 4)
    state = gqa.state_dict()
    for i in range(2):
        q, k, v = state[f"blocks.{i}.attn.qkv.weight"].split((32, 16, 16))
        expand = lambda w: w.view(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32)  # noqa: E731
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat((q, expand(k), expand(v)))
    mha.load_state_dict(state)
    idx = torch.randint(0, VOCAB, (2, 20))
    torch.testing.assert_close(mha(idx), gqa(idx), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("preset", ["llama", "gpt"])
def test_tiny_model_overfits_one_batch(preset):
    """60 AdamW steps on one fixed batch take the loss from ~ln(61) = 4.1 to under 0.1 (it gets
    there in about 30)."""
    model = tiny(preset, 2).train()
    torch.manual_seed(1)
    batch = torch.randint(0, VOCAB, (4, 33))
    x, y = batch[:, :-1], batch[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_weight_tying_and_parameter_count():
    tied = tiny("gpt", 4)
    assert tied.lm_head.weight is tied.tok_emb.weight
    untied = tiny("gpt", 4, tie_embeddings=False)
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * 32
    emb = VOCAB * 32 + 96 * 32  # token and position tables
    assert tied.num_parameters(exclude_embeddings=True) == tied.num_parameters() - emb


def test_residual_projections_are_depth_scaled():
    model = tiny("llama", 4, n_layers=8, dim=256, n_heads=8)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.05)
