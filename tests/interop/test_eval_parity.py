"""mia-eval's loss against transformers' own loss on the exported model, same windows."""

import pytest
import torch

from mia.cli.eval import evaluate
from mia.conf import compose
from mia.data import TextDataModule
from mia.training.checkpoint import read_checkpoint

transformers = pytest.importorskip("transformers")


def test_eval_val_loss_equals_transformers_loss(sp_run, sp_export, session_cache, tmp_path):
    ckpt = sp_run / "checkpoints" / "last.ckpt"
    ours = evaluate(
        compose(
            "eval",
            [
                f"ckpt_path={ckpt}",
                "split=val",
                f"paths.cache_dir={session_cache}",
                f"paths.output_dir={tmp_path / 'eval'}",
            ],
        )
    )["val/loss"]

    # The val windows as mia-eval walks them: the checkpoint's data, every window in order.
    data = dict(read_checkpoint(ckpt)["hyper_parameters"]["data"])
    tokenizer = data.pop("tokenizer")
    data.pop("chars_per_token")
    dm = TextDataModule(data, tokenizer, cache_dir=session_cache, seed=0)
    dm.prepare_data()
    dm.setup("test")

    model = transformers.AutoModelForCausalLM.from_pretrained(sp_export, dtype=torch.float32)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in dm.val_dataloader():
            # transformers' own causal-LM loss, given the targets already shifted (-100 is
            # ignored by both): the mean over the batch's counted targets.
            logits = model(input_ids=x).logits
            loss = model.loss_function(logits, None, model.config.vocab_size, shift_labels=y)
            counted = int((y != -100).sum())
            total += float(loss) * counted
            count += counted
    assert count > 1000
    assert ours == pytest.approx(total / count, abs=1e-4)
