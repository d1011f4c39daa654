"""mia-export: a trained checkpoint becomes a folder transformers loads by itself, with the
same logits, the same greedy text and the same token ids; and every user error is one line."""

from __future__ import annotations

import json

import pytest
import torch
from interop_support import CONTEXT, export_to
from safetensors import safe_open

from mia.cli.generate import generate
from mia.conf import compose
from mia.errors import UserError
from mia.training.checkpoint import load_language_model
from mia.training.module import LanguageModel

transformers = pytest.importorskip("transformers")

KINDS = ["sp", "char"]
PROMPT = "ROMEO:"


@pytest.fixture(params=KINDS)
def exported(request):
    """(MIA module, transformers model, AutoTokenizer, folder, checkpoint) for one trained
    checkpoint and its export."""
    ckpt = request.getfixturevalue(f"{request.param}_run") / "checkpoints" / "last.ckpt"
    folder = request.getfixturevalue(f"{request.param}_export")
    module = load_language_model(ckpt)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return module, model, tokenizer, folder, ckpt


def test_the_folder_holds_what_transformers_expects(exported):
    module, model, _, folder, _ = exported
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md"} <= names
    assert {"tokenizer.json", "tokenizer_config.json"} <= names
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.dtype == torch.float32
    assert model.config.num_key_value_heads == module.config.n_kv_heads == 2
    assert model.config.max_position_embeddings == CONTEXT
    card = (folder / "README.md").read_text()
    assert "## Training config" in card and "block_size: 128" in card
    assert "val/loss" in card and "metrics.json" in card  # found in the run folder
    if module.tokenizer.kind == "sentencepiece":
        assert "tokenizer.model" in names  # what MIA's import reads


def test_logits_match_mia(exported, corpus):
    module, model, _, _, _ = exported
    ids = module.tokenizer.encode(corpus.read_text("utf-8")[:5000])[: 2 * CONTEXT]
    idx = torch.tensor([ids[:CONTEXT], ids[CONTEXT:]])
    with torch.no_grad():
        ours = module.decoder(idx)
        theirs = model(idx).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_greedy_text_matches_mia_generate(exported, capsys):
    module, model, tokenizer, _, ckpt = exported
    overrides = [f"ckpt_path={ckpt}", "max_new_tokens=100", "temperature=0"]
    [ours] = generate(compose("generate", [*overrides, f"prompt={PROMPT}"]))
    assert capsys.readouterr().out.strip() == ours.strip()  # what mia-generate printed

    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    assert ids[0].tolist() == module.tokenizer.encode(PROMPT)
    assert ids.shape[1] + 100 <= CONTEXT
    out = model.generate(ids, max_new_tokens=100, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 100  # no early stop
    assert torch.equal(out, module.decoder.generate(ids, 100, temperature=0))
    assert tokenizer.decode(out[0]) == ours
    assert len(set(out[0, ids.shape[1] :].tolist())) > 3  # real text, not one token repeated


def test_tokenizer_ids_match_mia(exported, sample_texts):
    module, _, tokenizer, _, _ = exported
    mia = module.tokenizer
    alphabet = set(getattr(mia, "chars", "")) if mia.kind == "char" else None
    for text in sample_texts:
        if alphabet is not None and not set(text) <= alphabet:
            continue  # the char vocabulary of the corpus: other characters are an error in MIA
        ids = mia.encode(text)
        assert tokenizer(text)["input_ids"] == ids, text[:80]
        assert tokenizer.decode(ids) == mia.decode(ids), text[:80]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_exports_load(sp_run, sp_export, tmp_path, dtype):
    folder = export_to(sp_run / "checkpoints" / "last.ckpt", tmp_path / dtype, f"dtype={dtype}")
    with safe_open(folder / "model.safetensors", "pt") as weights:
        dtypes = {weights.get_tensor(key).dtype for key in weights.keys()}  # noqa: SIM118
    assert dtypes == {getattr(torch, dtype)}
    assert json.loads((folder / "config.json").read_text())["dtype"] == dtype
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert model.dtype == getattr(torch, dtype)
    full = transformers.AutoModelForCausalLM.from_pretrained(sp_export).eval()
    idx = torch.randint(0, full.config.vocab_size, (1, 32))
    with torch.no_grad():
        low, high = model(idx).logits.float(), full(idx).logits
    # The same model, rounded: errors of a few roundings of the dtype, relative to the logits
    # (a weight in the wrong place would be off by the logits' own size).
    limit = 4 * torch.finfo(getattr(torch, dtype)).eps * high.abs().max().item()
    assert (low - high).abs().max().item() < limit


def test_export_via_the_command(sp_run, run_module, tmp_path):
    ckpt = sp_run / "checkpoints" / "last.ckpt"
    result = run_module(["mia.cli.export", f"ckpt_path={ckpt}", "out_dir=hf"])
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "hf"
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    module = load_language_model(ckpt)
    idx = torch.randint(0, module.config.vocab_size, (1, 40))
    with torch.no_grad():
        assert (model(idx).logits - module.decoder(idx)).abs().max().item() <= 1e-4
    # A second export into the now non-empty folder is refused, in one line.
    again = run_module(["mia.cli.export", f"ckpt_path={ckpt}", "out_dir=hf"])
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "error: out_dir=hf exists and is not empty; choose a new folder, or add "
        "overwrite=true to replace the model files in it"
    ]


@pytest.fixture
def gpt_ckpt(tmp_path):
    """A checkpoint of the classic (GPT-style) decoder, which Llama cannot express."""
    module = LanguageModel(
        model={"vocab_size": 50, "dim": 32, "n_layers": 1, "n_heads": 4, "norm": "layernorm"}
        | {"position": "learned", "mlp": "gelu", "bias": True, "tie_embeddings": True},
        optimizer={},
        scheduler={},
    )
    path = tmp_path / "gpt.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


@pytest.mark.parametrize("case", ["missing", "gpt", "not-empty", "dtype"])
def test_user_errors(sp_run, gpt_ckpt, tmp_path, case):
    from mia.cli.export import export

    ckpt, out = sp_run / "checkpoints" / "last.ckpt", tmp_path / "out"
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    overrides, message = {
        "missing": ([], "ckpt_path=missing.ckpt: no such checkpoint file"),
        "gpt": ([f"ckpt_path={gpt_ckpt}"], "this model does not fit the Llama format: model.norm"),
        "not-empty": ([f"out_dir={full}"], f"out_dir={full} exists and is not empty; choose a"),
        "dtype": (["dtype=int8"], "dtype=int8: must be one of float32, bfloat16, float16"),
    }[case]
    defaults = ["ckpt_path=missing.ckpt" if case == "missing" else f"ckpt_path={ckpt}"]
    defaults.append(f"out_dir={out}")
    with pytest.raises(UserError) as err:
        export(compose("export", [*defaults, *overrides]))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
    assert not out.exists()
    assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_a_user_error_is_one_line_from_the_command(gpt_ckpt, run_module, tmp_path):
    result = run_module(["mia.cli.export", f"ckpt_path={gpt_ckpt}", "out_dir=out"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: this model does not fit the Llama format: model.norm=layernorm (Llama uses "
        "rmsnorm); model.position=learned (Llama uses rope); model.mlp=gelu (Llama uses "
        "swiglu); model.bias=true (Llama's linear layers here have no bias)"
    ]
    assert not (tmp_path / "out").exists()


def test_overwrite_keeps_other_files(sp_run, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "pytorch_model.bin").write_bytes(b"an older model")  # would shadow nothing, but stale
    with pytest.raises(UserError, match="exists and is not empty"):
        export_to(sp_run / "checkpoints" / "last.ckpt", folder)
    export_to(sp_run / "checkpoints" / "last.ckpt", folder, "overwrite=true")
    assert (folder / "notes.txt").read_text() == "mine"
    assert not (folder / "pytorch_model.bin").exists()
    assert (folder / "model.safetensors").is_file()


def test_code_in_a_checkpoint_is_never_run_by_export(tmp_path, run_module, code_running_checkpoint):
    evil, marker = code_running_checkpoint
    result = run_module(["mia.cli.export", f"ckpt_path={evil}", "out_dir=out"])
    assert result.returncode == 2
    assert "refused to load, it holds code" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_metrics_come_from_the_checkpoint_without_a_run_folder(sp_run, tmp_path):
    lone = tmp_path / "lone.ckpt"
    lone.write_bytes((sp_run / "checkpoints" / "last.ckpt").read_bytes())
    card = (export_to(lone, tmp_path / "out") / "README.md").read_text()
    assert "ModelCheckpoint" in card and "| val/loss |" in card
