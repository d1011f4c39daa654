import json

import pytest
import torch

from mia.cli.eval import evaluate
from mia.cli.generate import generate
from mia.cli.train import train
from mia.conf import compose
from mia.errors import UserError


def test_fast_run_goes_through_the_whole_pipeline(train_config, tmp_path):
    metrics = train(train_config())
    run = tmp_path / "run"
    for key in ("val/loss", "val/ppl", "val/acc", "val/bpc", "test/loss", "test/bpc"):
        assert key in metrics
    assert metrics["val/loss"] < 3.0  # from ln(vocab) ~ 3.4 at the start
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("step*.ckpt"))) == 1  # the best
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics)


def test_a_corpus_without_a_test_split_skips_the_test(train_config, recwarn):
    cfg = train_config("data.splits.train=0.9", "data.splits.val=0.1", "data.splits.test=0.0")
    metrics = train(cfg)
    assert "val/loss" in metrics
    assert not [k for k in metrics if k.startswith("test/")]
    # No test pass over an empty split (Lightning warns of an empty loader when one runs).
    assert not [w for w in recwarn if "DataLoader" in str(w.message)]


def tensorboard_tags(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    return set(acc.Tags()["scalars"]) | set(acc.Tags()["tensors"])


def test_tensorboard_gets_curves_samples_and_hparams(train_config, tmp_path):
    train(train_config())
    tags = tensorboard_tags(tmp_path / "run")
    for tag in ("train/loss", "train/grad_norm", "train/tokens_per_s", "val/loss", "val/bpc"):
        assert tag in tags
    assert any(t.startswith("lr-") for t in tags)  # the learning-rate monitor
    assert any("samples" in t for t in tags)  # text samples
    assert "hparams/val/bpc" in tags  # final metrics for the HParams tab


def tensors_equal(a, b) -> bool:
    """Nested dicts/lists of tensors and plain values, equal to the bit."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


@pytest.mark.parametrize(
    "extra",
    [
        ("model.dropout=0.0",),
        ("model.dropout=0.1",),
        ("model.dropout=0.0", "model.attention_dropout=0.1"),
        ("optimizer=muon",),
        ("data.sampler=shuffled",),
        ("model.parametrization=mup", "model.mup_base_dim=16"),
        ("optimizer=muon", "model.parametrization=mup", "model.mup_base_dim=16"),
    ],
    ids=[
        "adamw",
        "adamw-dropout",
        "adamw-attention-dropout",
        "muon",
        "shuffled-epochs",
        "mup-adamw",
        "mup-muon",
    ],
)
def test_resume_is_exact(train_config, tmp_path, extra):
    """20 steps, then resumed to 40, ends with the same weights and optimizer state as 40
    steps straight (with dropout, or attention dropout alone; with Muon + AdamW, whose
    states both travel; with the shuffled-epochs sampler)."""
    common = ("test=false", "scheduler.decay_steps=40", *extra)
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
    assert tensors_equal(a["optimizer_states"], b["optimizer_states"])
    states = a["optimizer_states"][0]
    assert (
        all(states[k]["state"] for k in ("muon", "adamw")) if "muon" in states else states["state"]
    )
    if "model.parametrization=mup" in extra:  # width 32 tuned at 16: m = 2
        assert a["hyper_parameters"]["model"]["mup_base_dim"] == 16
        if "muon" not in states:  # AdamW's hidden matrices step at half the rate
            decay, *_, hidden = states["param_groups"]
            assert hidden["lr"] == pytest.approx(decay["lr"] / 2)


def test_eval_reproduces_the_test_metrics(train_config, tmp_path, cache_dir):
    # Whole splits in training too (debug=fast evaluates only 5 batches).
    metrics = train(
        train_config("trainer.limit_val_batches=null", "trainer.limit_test_batches=null")
    )
    best = next((tmp_path / "run" / "checkpoints").glob("step*.ckpt"))
    cfg = compose("eval", cfg_overrides(best, cache_dir, tmp_path))
    evaluated = evaluate(cfg)
    for key in ("test/loss", "test/acc", "test/bpc"):
        assert evaluated[key] == pytest.approx(metrics[key], rel=1e-6)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text()) == pytest.approx(evaluated)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"  # saved after the final validation
    val = evaluate(compose("eval", [*cfg_overrides(last, cache_dir, tmp_path), "split=val"]))
    assert val["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)


def cfg_overrides(ckpt, cache_dir, tmp_path):
    return [
        f"ckpt_path={ckpt}",
        f"paths.cache_dir={cache_dir}",
        f"paths.output_dir={tmp_path / 'ev'}",
    ]


def test_generate_prints_text_for_each_prompt(train_config, tmp_path, capsys):
    train(train_config("trainer.max_steps=60"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    base = [f"ckpt_path={ckpt}", "max_new_tokens=40"]
    out = generate(compose("generate", [*base, "prompt=[ROMEO:,JULIET:]", "temperature=0"]))
    assert len(out) == 2
    assert out[0].startswith("ROMEO:") and len(out[0]) == len("ROMEO:") + 40  # characters
    printed = capsys.readouterr().out
    assert out[0] in printed and out[1] in printed
    again = generate(compose("generate", [*base, "prompt=[ROMEO:,JULIET:]", "temperature=0"]))
    assert again == out  # greedy is deterministic
    # Within the context (32 tokens), cached and uncached decoding choose the same tokens.
    short = [f"ckpt_path={ckpt}", "max_new_tokens=24", "prompt=ROMEO:", "temperature=0"]
    cached = generate(compose("generate", short))
    assert cached == generate(compose("generate", [*short, "use_cache=false"]))
    sampled = generate(compose("generate", [*base, "prompt=ROMEO:", "seed=3", "top_p=0.9"]))
    assert sampled == generate(compose("generate", [*base, "prompt=ROMEO:", "seed=3", "top_p=0.9"]))


def test_generation_stops_at_the_end_of_text_when_asked(train_config, tmp_path):
    """Short documents, so the model soon learns to end a text: with stop_at_eos=true the
    greedy continuation ends where the model emits end-of-text, without it goes on."""
    docs = tmp_path / "docs.jsonl"
    lines = [json.dumps({"text": "to be or not"}) for _ in range(400)]
    docs.write_text("\n".join(lines) + "\n")
    overrides = ("data=text", f"data.files=[{docs}]", "trainer.max_steps=60", "test=false")
    overrides += ("callbacks.text_samples=null",)  # its prompt, a newline, is not in the text
    train(train_config(*overrides))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    base = [f"ckpt_path={ckpt}", "max_new_tokens=40", "prompt=to be", "temperature=0"]
    (stopped,) = generate(compose("generate", [*base, "stop_at_eos=true"]))
    (going_on,) = generate(compose("generate", [*base, "stop_at_eos=false"]))
    assert stopped == "to be or not"
    assert going_on.startswith(stopped) and len(going_on) > len(stopped)


def test_user_errors_name_the_setting(train_config, tmp_path):
    with pytest.raises(UserError, match="ckpt_path=.*no such checkpoint"):
        train(train_config("ckpt_path=" + str(tmp_path / "missing.ckpt")))
    with pytest.raises(UserError, match="ckpt_path=last: there is no"):
        train(train_config("ckpt_path=last", output_dir=tmp_path / "fresh"))
    with pytest.raises(UserError, match="dim must be a positive integer"):
        train(train_config("model.dim=-8"))
    train(train_config("trainer.max_steps=10", output_dir=tmp_path / "small"))
    other = tmp_path / "small" / "checkpoints" / "last.ckpt"
    with pytest.raises(
        UserError, match=r"holds another model \(model.dim: checkpoint 32, this run 48"
    ):
        train(train_config("model.dim=48", f"ckpt_path={other}"))


@pytest.mark.slow
def test_compiled_training_saves_plain_weights(train_config, tmp_path):
    """model.compile=true trains through torch.compile as an eager run does; the checkpoint
    holds each weight once, under the same keys as an eager run."""
    metrics = train(train_config("model.compile=true", "trainer.max_steps=10", "test=false"))
    assert "val/loss" in metrics
    compiled = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    eager_metrics = train(
        train_config("trainer.max_steps=10", "test=false", output_dir=tmp_path / "eager")
    )
    eager = torch.load(tmp_path / "eager" / "checkpoints" / "last.ckpt", weights_only=True)
    assert compiled["state_dict"].keys() == eager["state_dict"].keys()
    # The same training, up to the compiled kernels' rounding.
    assert metrics["val/loss"] == pytest.approx(eager_metrics["val/loss"], rel=0.01)


@pytest.mark.slow
def test_compiled_validation_pads_a_short_last_batch_without_recompiling():
    """A split whose last batch is short: the compiled model pads it rather than compiling
    again, and its metrics match the eager model's."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from mia.training.module import LanguageModel

    model = dict(vocab_size=48, dim=32, n_layers=2, n_heads=2, n_kv_heads=2, max_seq_len=16)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 48, (10, 16), generator=generator)
    y = torch.randint(0, 48, (10, 16), generator=generator)
    y[-1, 5:] = -100  # a padded last window, as EvalWindows gives
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # batches of 4, 4 and 2

    def validate(compile: bool) -> dict[str, float]:
        torch.manual_seed(0)
        lm = LanguageModel(model=model, optimizer={}, scheduler={}, compile=compile)
        trainer = L.Trainer(
            accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        torch._dynamo.reset()  # forget graphs that earlier tests compiled
        with torch._dynamo.config.patch(error_on_recompile=True):
            (metrics,) = trainer.validate(lm, dataloaders=loader, verbose=False)
        return metrics

    eager, compiled = validate(False), validate(True)
    assert compiled["val/acc"] == pytest.approx(eager["val/acc"], abs=1e-6)
    assert compiled["val/loss"] == pytest.approx(eager["val/loss"], rel=1e-4)
