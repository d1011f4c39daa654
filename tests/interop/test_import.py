"""Import: mia-train model.init_from=<folder> starts from a Hugging Face Llama folder (its
config, weights and tokenizer); a folder that does not fit ends in one line; nothing stored
in a folder runs code."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from interop_support import train_overrides

from mia.cli.eval import evaluate
from mia.cli.train import train
from mia.conf import compose
from mia.data import prepare_dataset
from mia.errors import UserError
from mia.interop.hf import decoder_from_hf_folder, load_hf_folder
from mia.tokenizer import CharTokenizer, SentencePieceTokenizer, train_tokenizer
from mia.training.checkpoint import load_language_model

transformers = pytest.importorskip("transformers")

VOCAB = 400


@pytest.fixture(scope="module")
def sp_model(corpus) -> bytes:
    """A SentencePiece tokenizer.model trained on the play corpus."""
    config = {"kind": "sentencepiece", "vocab_size": VOCAB}
    return train_tokenizer(config, corpus.read_text("utf-8")).model


def llama_folder(path, sp_model: bytes, *, tie: bool = False, weights: str = "safetensors"):
    """A random LlamaForCausalLM with grouped-query attention (4 heads, 2 key/value heads),
    saved with save_pretrained, plus a tokenizer.model; returns (folder, model)."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_theta=500.0,
        tie_word_embeddings=tie,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # larger than init, and non-unit norms, so the parity means something
        for name, param in model.named_parameters():
            param.normal_(1.0 if "norm" in name else 0.0, 0.1 if "norm" in name else 0.15)
    model.save_pretrained(path)
    if weights == "bin":  # the older format: a pickled state dict
        (path / "model.safetensors").unlink()
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    (path / "tokenizer.model").write_bytes(sp_model)
    return path, model


@pytest.mark.parametrize(
    ("tie", "weights"), [(False, "safetensors"), (True, "safetensors"), (False, "bin")]
)
def test_an_imported_llama_gives_the_same_logits(tmp_path, sp_model, tie, weights):
    folder, model = llama_folder(tmp_path / "llama", sp_model, tie=tie, weights=weights)
    decoder, tokenizer = decoder_from_hf_folder(folder)
    assert decoder.config.n_heads == 4 and decoder.config.n_kv_heads == 2
    assert decoder.config.tie_embeddings is tie
    assert isinstance(tokenizer, SentencePieceTokenizer) and tokenizer.model == sp_model
    idx = torch.randint(0, VOCAB, (2, 50))
    with torch.no_grad():
        assert (decoder(idx) - model(idx).logits).abs().max().item() <= 1e-4


def run_from(folder, corpus, cache, out, *extra):
    """train() from a folder for 2 steps whose updates are below float32's resolution (lr
    1e-30), so the step runs and the weights stay exactly the folder's."""
    overrides = train_overrides(corpus, cache, out, f"model.init_from={folder}", *extra)
    overrides += ["trainer.max_steps=2", "trainer.val_check_interval=2", "optimizer.lr=1e-30"]
    overrides += ["scheduler.warmup_steps=0"]
    return train(compose("train", overrides))


def test_training_starts_from_a_saved_llama(tmp_path, corpus, session_cache, sp_model):
    folder, model = llama_folder(tmp_path / "llama", sp_model)
    # The folder's config wins over model.* sizes; data.block_size (64) fits its 128 positions.
    out = tmp_path / "run"
    metrics = run_from(folder, corpus, session_cache, out, "model.dim=48", "data.block_size=64")
    assert metrics["val/loss"] > 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    module = load_language_model(ckpt)
    assert module.config.dim == 64 and module.config.hidden_dim == 160
    assert module.config.n_kv_heads == 2 and module.config.max_seq_len == 128
    assert module.hparams.data["tokenizer"] == {
        "kind": "sentencepiece",
        "model_file": str(folder / "tokenizer.model"),
    }
    assert module.tokenizer.to_state()["model"] == sp_model  # the data used its tokenizer
    idx = torch.randint(0, VOCAB, (1, 40))
    with torch.no_grad():  # the trained weights are still the folder's
        assert (module.decoder(idx) - model(idx).logits).abs().max().item() <= 1e-4
    # mia-eval continues from the run: same tokenizer, same prepared data.
    overrides = [f"ckpt_path={ckpt}", f"paths.cache_dir={session_cache}"]
    evaluated = evaluate(compose("eval", [*overrides, f"paths.output_dir={tmp_path / 'ev'}"]))
    assert evaluated["test/loss"] > 0


@pytest.mark.parametrize("kind", ["sp", "char"])
def test_training_starts_from_a_mia_export(request, tmp_path, corpus, session_cache, kind):
    run = request.getfixturevalue(f"{kind}_run")
    folder = request.getfixturevalue(f"{kind}_export")
    original = load_language_model(run / "checkpoints" / "last.ckpt")
    _, _, tokenizer = load_hf_folder(folder)
    run_from(folder, corpus, session_cache, tmp_path / "run", "tokenizer=char")
    module = load_language_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert module.config == original.config
    assert module.tokenizer.to_state() == tokenizer.to_state()
    if kind == "char":
        assert isinstance(module.tokenizer, CharTokenizer)
        assert tokenizer.to_state() == original.tokenizer.to_state()
    else:  # the same model; its settings now say which (digest), not how it was trained
        assert tokenizer.to_state()["model"] == original.tokenizer.to_state()["model"]
        assert module.hparams.data["tokenizer"]["model_file"] == str(folder / "tokenizer.model")
    for key, value in original.decoder.state_dict().items():
        torch.testing.assert_close(module.decoder.state_dict()[key], value, atol=0, rtol=0)


def test_code_in_a_pytorch_model_bin_is_never_run(tmp_path, corpus, session_cache, sp_model):
    folder, _ = llama_folder(tmp_path / "llama", sp_model, weights="bin")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"model.embed_tokens.weight": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(UserError, match=r"pytorch_model.bin: refused to load, it holds code"):
        run_from(folder, corpus, session_cache, tmp_path / "run")
    assert not marker.exists()


@pytest.mark.parametrize(
    "case",
    ["no-folder", "no-config", "gpt2", "no-weights", "shape", "block-size", "no-tokenizer"],
)
def test_a_folder_that_does_not_fit_is_one_line(tmp_path, corpus, session_cache, sp_model, case):
    folder, _ = llama_folder(tmp_path / "llama", sp_model)
    config = json.loads((folder / "config.json").read_text())
    extra = []
    if case == "no-folder":
        shutil.rmtree(folder)
        message = "no such folder"
    elif case == "no-config":
        (folder / "config.json").unlink()
        message = "no config.json; give a Hugging Face model folder"
    elif case == "gpt2":
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
        message = "expected a Llama model, found model_type='gpt2'"
    elif case == "no-weights":
        (folder / "model.safetensors").unlink()
        message = r"no weights \(model.safetensors or pytorch_model.bin\)"
    elif case == "shape":
        (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
        message = r"the weights do not fit the model \(.*size mismatch for blocks.0.mlp"
    elif case == "block-size":
        extra = ["data.block_size=256"]
        message = r"data.block_size=256 exceeds the context of model.init_from=.*128"
    else:
        (folder / "tokenizer.model").unlink()
        message = "no tokenizer MIA can use"
    with pytest.raises(UserError, match=message) as err:
        run_from(folder, corpus, session_cache, tmp_path / "run", *extra)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("model.init_from=") or case == "block-size"


def test_a_model_file_keys_the_prepared_data_by_its_digest(tmp_path, corpus, sp_model):
    """tokenizer.model_file: the same model at another path reuses the prepared data; another
    model does not; and the prepared data is tokenized by that model."""
    data = {"corpus": "text", "files": [str(corpus)], "block_size": 8}
    data["splits"] = {"train": 0.9, "val": 0.05, "test": 0.05}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tokenizer.model").write_bytes(sp_model)
    cache = tmp_path / "cache"
    first = prepare_dataset(
        data, {"kind": "sentencepiece", "model_file": str(tmp_path / "a/tokenizer.model")}, cache
    )
    second = prepare_dataset(
        data, {"kind": "sentencepiece", "model_file": str(tmp_path / "b/tokenizer.model")}, cache
    )
    assert not first.reused and second.reused and second.directory == first.directory
    assert first.load_tokenizer().to_state()["model"] == sp_model
    other = train_tokenizer({"kind": "sentencepiece", "vocab_size": 350}, corpus.read_text())
    (tmp_path / "c.model").write_bytes(other.model)
    third = prepare_dataset(
        data, {"kind": "sentencepiece", "model_file": str(tmp_path / "c.model")}, cache
    )
    assert third.directory != first.directory
    for bad, message in [
        ("missing.model", "no such file"),
        (str(corpus), "not a SentencePiece model"),
    ]:
        with pytest.raises(UserError, match=f"tokenizer.model_file=.*{message}"):
            prepare_dataset(data, {"kind": "sentencepiece", "model_file": bad}, cache)


def test_a_fixed_char_vocabulary_must_cover_the_corpus(tmp_path, corpus):
    data = {"corpus": "text", "files": [str(corpus)], "block_size": 8}
    data["splits"] = {"train": 0.9, "val": 0.05, "test": 0.05}
    chars = "".join(sorted(set(corpus.read_text())))
    prepared = prepare_dataset(data, {"kind": "char", "chars": chars}, tmp_path)
    assert prepared.load_tokenizer().to_state() == CharTokenizer(chars).to_state()
    with pytest.raises(UserError, match=r"the corpus has 1 character\(s\) outside the fixed"):
        prepare_dataset(data, {"kind": "char", "chars": chars[1:]}, tmp_path)
    unknown = prepare_dataset(data, {"kind": "char", "chars": chars[1:], "unknown": True}, tmp_path)
    assert unknown.meta["vocab_size"] == len(chars)
