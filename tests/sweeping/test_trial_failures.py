"""Two causes of a failed trial inside an Optuna search, each ending its trial and not the
search: a sampled shape the model refuses, and a size no memory holds (refused by the
step-memory check before anything is allocated); and how an allocation that fails anyway
is named."""

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import TINY

from mia.sweeping.jobs import error_line

HUGE = 2**42  # model.dim: one step's activations alone would need millions of GiB


@pytest.fixture(scope="module")
def search(tmp_path_factory, corpus: Path, sweep_cache: Path) -> tuple[dict, str, int]:
    """A grid over model.dim: 32 trains, 30 is not divisible by 4 heads, HUGE cannot fit."""
    where = tmp_path_factory.mktemp("search")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mia.cli.train",
            *TINY,
            f"data.files=[{corpus}]",
            "hparams_search=optuna",
            "trainer.max_steps=6",
            "trainer.val_check_interval=6",
            "model.n_heads=4",
            "hydra/sweeper/sampler=grid",
            f'hydra.sweeper.params={{model.dim:"choice(32,30,{HUGE})",model.n_layers:"choice(2)",'
            'optimizer.lr:"choice(3e-3)",optimizer.weight_decay:"choice(0.1)"}',
        ],
        cwd=where,
        env={**os.environ, "MIA_CACHE_DIR": str(sweep_cache), "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (where / "outputs" / "optuna.db").is_file(), done.stdout + done.stderr
    storage = f"sqlite:///{where}/outputs/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    trials = {
        t.params["model.dim"]: t for t in optuna.load_study(study_name=name, storage=storage).trials
    }
    return trials, done.stdout + done.stderr, done.returncode


def test_a_shape_the_model_refuses_fails_its_trial_with_the_models_reason(search):
    trials, output, status = search
    assert status == 0, output[-3000:]  # the preset's max_failure_rate=1.0: the search goes on
    assert trials[32].state == TrialState.COMPLETE
    assert trials[30].state == TrialState.FAIL
    reason = "invalid model config: dim (30) must be divisible by n_heads (4)"
    assert trials[30].user_attrs["mia:failure"] == reason
    table = output[output.index("Optuna study") :]
    assert reason in table and "1 complete, 0 pruned, 2 failed" in table


def test_a_size_no_memory_holds_fails_its_trial_with_a_reason_that_says_so(search):
    trials, output, _ = search
    assert trials[HUGE].state == TrialState.FAIL
    reason = trials[HUGE].user_attrs["mia:failure"]
    assert "one training step needs at least" in reason and "GiB" in reason, reason
    assert "lower data.block_size or data.batch_size" in reason and "\n" not in reason
    assert reason in output


def test_an_allocation_the_cpu_refuses_is_named_out_of_memory():
    refused = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory:"
        " you tried to allocate 140737488355328 bytes. Error code 12\n(Cannot allocate memory)"
    )
    reason = error_line(refused)
    assert reason.startswith("out of memory: ") and reason.endswith("(RuntimeError)")
    assert "can't allocate memory" in reason and "\n" not in reason


def test_out_of_memory_on_an_accelerator_says_so_too():
    import torch

    assert error_line(
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB\nmore")
    ) == ("out of memory: CUDA out of memory. Tried to allocate 2 GiB (OutOfMemoryError)")
    assert error_line(ValueError("bad\nvalue")) == "bad (ValueError)"
