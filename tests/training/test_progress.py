"""Progress in a log file: plain lines when stdout is not a terminal, the rich bar in one."""

import sys

from lightning.pytorch.callbacks import RichProgressBar

from mia.training.progress import LogLines, progress_bar


def test_the_bar_follows_the_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert isinstance(progress_bar(), RichProgressBar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    bar = progress_bar(every_n_steps=7, every_n_seconds=5)
    assert isinstance(bar, LogLines) and (bar.every_n_steps, bar.every_n_seconds) == (7, 5)


def test_redirected_training_writes_progress_lines(corpus, run_module, tmp_path):
    run = tmp_path / "run"
    result = run_module(
        [
            "mia.cli.train",
            "debug=fast",
            "data=text",
            f"data.files=[{corpus}]",
            "tokenizer=char",
            "trainer.max_steps=25",
            "callbacks.progress_bar.every_n_steps=10",
            f"hydra.run.dir={run}",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "mia.training.progress" in line]
    steps = [line.split(" - ", 1)[1] for line in lines if " - step " in line]
    assert [s.split(" | ")[0] for s in steps] == ["step 10/25", "step 20/25", "step 25/25"]
    assert all(part in steps[0] for part in ("| loss ", " tokens/s | ", "| elapsed 0:", "| ETA 0:"))
    validations = [line for line in lines if "validation at step" in line]
    assert len(validations) == 2 and "loss " in validations[0] and "bpc " in validations[0]
    assert any(" - test: loss " in line for line in lines)
    # Hydra copies the same lines into the run's log file.
    assert "step 25/25" in (run / "train.log").read_text()
