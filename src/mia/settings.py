"""The valid range of every numeric and choice setting of every command, in one table.

Each command checks its config against `RULES[command]` before it prepares data or builds
a model, so a wrong value ends in one line per setting (``error: optimizer.lr=-1: must be a
number > 0``, exit status 2) instead of a traceback halfway through a run. A setting that a
config does not have is not checked (mia-eval's ``data`` holds only what the user changes).
Ranges that other code owns are asked of it: Lightning's precisions, accelerators and
strategies, the model's own `ModelConfig` check, the data splits' check.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from mia.errors import UserError
from mia.step_memory import GIB, gpu_memory, host_memory, step_bytes

_ABSENT = object()
# What torch.compile's C++ code is built with, when CXX is not set.
CXX_COMPILERS = ("g++", "clang++", "c++")


@dataclass(frozen=True)
class Rule:
    """`key` (a dotted config path) must satisfy `ok`; `valid` says so in words (or gives
    the words when called, where working them out imports something slow)."""

    key: str
    valid: str | Callable[[], str]
    ok: Callable[[Any], bool]

    def problem(self, cfg: DictConfig) -> str | None:
        value = OmegaConf.select(cfg, self.key, default=_ABSENT)
        if value is _ABSENT or self.ok(value):
            return None
        valid = self.valid if isinstance(self.valid, str) else self.valid()
        return f"{self.key}={_show(value)}: must be {valid}"


def _show(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None:
        return "null"
    return "''" if value == "" else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(key: str, minimum: int, null: bool = False) -> Rule:
    valid = f"an integer >= {minimum}" + (" or null" if null else "")
    return Rule(key, valid, lambda v: (null and v is None) or (_is_int(v) and v >= minimum))


def number(
    key: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    null: bool = False,
) -> Rule:
    """A finite number within [low, high] (or open ends)."""

    def ok(v: Any) -> bool:
        if null and v is None:
            return True
        if not _is_number(v):
            return False
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    if low is not None and high is not None:
        valid = (
            f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        )
    elif low is not None:
        valid = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        valid = "a number"
    return Rule(key, valid + (" or null" if null else ""), ok)


def choice(key: str, values: Iterable[Any], null: bool = False) -> Rule:
    allowed = [str(v) for v in values]
    valid = "one of " + ", ".join(allowed) + (" or null" if null else "")
    return Rule(key, valid, lambda v: (null and v is None) or (v is not None and str(v) in allowed))


def boolean(key: str) -> Rule:
    return Rule(key, "true or false", lambda v: isinstance(v, bool))


def _betas(value: Any) -> bool:
    return (
        isinstance(value, ListConfig | list | tuple)
        and len(value) == 2
        and all(_is_number(b) and 0 <= b < 1 for b in value)
    )


def _devices(value: Any) -> bool:
    if isinstance(value, ListConfig | list):
        return len(value) > 0 and all(_is_int(d) and d >= 0 for d in value)
    return value == "auto" or (_is_int(value) and (value >= 1 or value == -1))


def _eval_batches(value: Any) -> bool:
    return (
        value is None or (_is_int(value) and value >= 0) or (_is_number(value) and 0 <= value <= 1)
    )


def _non_empty_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _precisions() -> list[str]:
    from typing import get_args

    from lightning.fabric.connector import (
        _PRECISION_INPUT_INT,
        _PRECISION_INPUT_STR,
        _PRECISION_INPUT_STR_ALIAS,
    )

    return [
        str(p)
        for t in (_PRECISION_INPUT_STR, _PRECISION_INPUT_INT, _PRECISION_INPUT_STR_ALIAS)
        for p in get_args(t)
    ]


def _accelerators() -> list[str]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]


def _strategies() -> list[str]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]


# --- cross-setting checks: (cfg) -> a problem or None ---------------------------------------

Check = Callable[[DictConfig], "str | None"]


def _gpu_present(key: str, wanted: tuple[str, ...]) -> Check:
    def check(cfg: DictConfig) -> str | None:
        value = OmegaConf.select(cfg, key, default=None)
        if str(value) not in wanted:
            return None
        import torch

        if torch.cuda.is_available():
            return None
        fix = "use trainer=cpu or trainer.accelerator=auto" if "." in key else f"use {key}=cpu"
        return f"{key}={value}: no CUDA GPU is visible on this machine; {fix}"

    return check


def _decay_after_warmup(cfg: DictConfig) -> str | None:
    decay = OmegaConf.select(cfg, "scheduler.decay_steps", default=None)
    warmup = OmegaConf.select(cfg, "scheduler.warmup_steps", default=0)
    if _is_int(decay) and _is_int(warmup) and decay <= warmup:
        return (
            f"scheduler.decay_steps={decay}: must be greater than scheduler.warmup_steps={warmup} "
            "(or null for trainer.max_steps)"
        )
    return None


def zero_rate_tail(scheduler: Any, horizon: int | None, max_steps: int, whence: str) -> str | None:
    """The refusal of a run whose decaying schedule reaches a rate of 0 at `horizon`, before
    trainer.max_steps: every step after it would leave the weights as they are. `whence` says
    where the horizon comes from."""
    name = OmegaConf.select(scheduler, "name", default="cosine") if scheduler else None
    ratio = OmegaConf.select(scheduler, "min_lr_ratio", default=0.1) if scheduler else None
    if name not in ("cosine", "linear") or ratio != 0 or not _is_int(horizon):
        return None
    if not _is_int(max_steps) or horizon >= max_steps:
        return None
    return (
        f"trainer.max_steps={max_steps}: the {name} schedule reaches a learning rate of 0 at "
        f"step {horizon} ({whence}), so steps {horizon}-{max_steps} would not train; give "
        f"scheduler.decay_steps={max_steps} to decay until the new last step (or "
        "scheduler.min_lr_ratio > 0 to train on at that fraction of the rate)"
    )


def _decay_before_the_end(cfg: DictConfig) -> str | None:
    decay = OmegaConf.select(cfg, "scheduler.decay_steps", default=None)
    max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
    warmup = OmegaConf.select(cfg, "scheduler.warmup_steps", default=0)
    if "scheduler" not in cfg or (_is_int(decay) and _is_int(warmup) and decay <= warmup):
        return None  # no decay at all: _decay_after_warmup speaks
    return zero_rate_tail(cfg.scheduler, decay, max_steps, f"scheduler.decay_steps={decay}")


def _splits(cfg: DictConfig) -> str | None:
    if OmegaConf.select(cfg, "data.splits", default=None) is None:
        return None
    from mia.data.splitting import split_fractions

    try:
        split_fractions(OmegaConf.to_container(cfg.data, resolve=True))
    except UserError as err:
        return str(err)
    return None


def _cache_dir(cfg: DictConfig) -> str | None:
    """paths.cache_dir: a folder that exists or can be created, and can be written."""
    from mia.folders import folder_problem

    path = OmegaConf.select(cfg, "paths.cache_dir", default=None)
    problem = None if path is None else folder_problem(path)
    return None if problem is None else f"paths.cache_dir={path}: {problem}; give another folder"


def _fsdp_on_gpu(cfg: DictConfig) -> str | None:
    """Lightning's FSDP strategy shards over GPUs only; on CPU it stops with a traceback."""
    strategy = OmegaConf.select(cfg, "trainer.strategy", default=None)
    if isinstance(strategy, DictConfig):
        strategy = str(strategy.get("_target_", "")).rsplit(".", 1)[-1].lower()
    if strategy is None or "fsdp" not in str(strategy).lower():
        return None
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator == "cpu" or (accelerator == "auto" and not _cuda_available()):
        return (
            f"trainer.strategy={strategy}: FSDP runs on GPUs only, and this run's accelerator is "
            f"{accelerator if accelerator == 'cpu' else 'auto (no GPU here)'}; use trainer=ddp "
            "for several CPU processes, or a GPU"
        )
    return None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cxx_compiler_found() -> bool:
    """Whether torch.compile can build its code here: CXX, or a C++ compiler on the PATH."""
    return bool(os.environ.get("CXX") or any(map(shutil.which, CXX_COMPILERS)))


def _compile(cfg: DictConfig) -> str | None:
    """model.compile: true, false or auto, and for true a C++ compiler on the PATH for
    torch.compile's code (inductor builds C++ on CPU, and Triton's launchers with one on GPU).
    auto compiles where a compiler is found and runs eagerly where none is."""
    value = OmegaConf.select(cfg, "model.compile", default=False)
    if not isinstance(value, bool) and value != "auto":
        return f"model.compile={_show(value)}: must be true, false or auto"
    if value is True and not cxx_compiler_found():
        return (
            "model.compile=true: torch.compile needs a C++ compiler and none is on the PATH "
            "(g++, clang++ or c++, or set CXX); install one (apt install g++) or set "
            "model.compile=false"
        )
    return None


def _model(cfg: DictConfig) -> str | None:
    """The model settings, checked by `ModelConfig` itself (with a stand-in vocabulary
    size: the tokenizer sets the real one after data preparation)."""
    if "model" not in cfg or cfg.model.get("init_from"):
        return None  # an imported model's config.json sets the shape
    from mia.model import ModelConfig, ModelConfigError

    values = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("compile", "init_from"):  # run options beside the shape (cli/train.py)
        values.pop(key, None)
    try:
        ModelConfig.from_dict({**values, "vocab_size": 1})
    except ModelConfigError as err:
        return str(err)
    block, context = cfg.data.get("block_size"), values.get("max_seq_len")
    if _is_int(block) and _is_int(context) and block > context:
        return f"data.block_size={block}: must be <= model.max_seq_len={context}"
    return None


def _fits_memory(cfg: DictConfig) -> str | None:
    """data.batch_size x data.block_size: a lower bound on one step's activations and logits
    (mia.step_memory) that is beyond this machine's memory (the GPU's, on a GPU) is refused
    before any data is prepared; the run would swap, stall or be killed, never train."""
    if "model" not in cfg or cfg.model.get("init_from") or _model(cfg) is not None:
        return None  # an imported shape, or one that _model refuses
    from mia.model import ModelConfig, ModelConfigError

    values = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("compile", "init_from"):
        values.pop(key, None)
    try:  # the vocabulary comes with the data; a SentencePiece size is known before
        vocab = OmegaConf.select(cfg, "tokenizer.vocab_size", default=None)
        model = ModelConfig.from_dict({**values, "vocab_size": vocab if _is_int(vocab) else 1})
    except ModelConfigError:
        return None  # _model speaks
    precision = str(OmegaConf.select(cfg, "trainer.precision", default="32"))
    needed = step_bytes(
        batch=cfg.data.batch_size,
        block=cfg.data.block_size,
        dim=model.dim,
        hidden=model.hidden_dim or 0,
        layers=model.n_layers,
        vocab=vocab if _is_int(vocab) else 0,
        value_bytes=2 if "16" in precision else 4,
    )
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and _cuda_available())
    have, where = (gpu_memory(), "the GPU has") if on_gpu else (host_memory(), "this machine has")
    if have is None or needed <= have:
        return None
    return (
        f"data.batch_size={cfg.data.batch_size} x data.block_size={cfg.data.block_size}: one "
        f"training step needs at least {needed / GIB:,.1f} GiB for activations and logits, and "
        f"{where} {have / GIB:,.1f} GiB; lower data.block_size or data.batch_size"
    )


# --- the table ----------------------------------------------------------------------------

DATA = [
    integer("data.block_size", 1),
    integer("data.batch_size", 1),
    integer("data.num_workers", 0),
    integer("data.prepare_workers", 1, null=True),
    choice("data.sampler", ["random", "shuffled"]),
    choice("tokenizer.kind", ["sentencepiece", "char"]),
]

# mia-eval: null keeps the checkpoint's value.
EVAL_DATA = [
    integer("data.block_size", 1, null=True),
    integer("data.batch_size", 1, null=True),
    integer("data.num_workers", 0, null=True),
    integer("data.prepare_workers", 1, null=True),
]

OPTIMIZER = [
    choice("optimizer.name", ["adamw", "adam", "muon"]),
    number("optimizer.lr", 0, low_open=True),
    Rule("optimizer.betas", "two numbers in [0, 1), e.g. [0.9,0.99]", _betas),
    number("optimizer.eps", 0, low_open=True),
    number("optimizer.weight_decay", 0),
    number("optimizer.embedding_weight_decay", 0, null=True),
    Rule("optimizer.fused", "true, false or null", lambda v: v is None or isinstance(v, bool)),
    number("optimizer.muon_lr", 0, low_open=True),
    number("optimizer.muon_momentum", 0, 1, high_open=True),
    number("optimizer.muon_weight_decay", 0),
    integer("optimizer.muon_ns_steps", 1),
]

SCHEDULER = [
    choice("scheduler.name", ["cosine", "linear", "constant"]),
    integer("scheduler.warmup_steps", 0),
    integer("scheduler.decay_steps", 1, null=True),
    number("scheduler.min_lr_ratio", 0, 1),
]


# Values seen often enough to accept without asking Lightning, whose import takes seconds.
_COMMON = {
    "trainer.precision": {"32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true"},
    "trainer.accelerator": {"auto", "cpu", "gpu", "cuda"},
    "trainer.strategy": {"auto", "ddp", "ddp_spawn"},
}


def _lightning_choice(key: str, known: Callable[[], list[str]], or_config: bool = False) -> Rule:
    """One of the values Lightning accepts for `key` (or, with `or_config`, a config with
    _target_): the common ones are checked without importing Lightning, the rest against
    Lightning's own list."""
    config = ", or a config with _target_" if or_config else ""
    return Rule(
        key,
        lambda: "one of " + ", ".join(known()) + config,
        lambda v: (
            (or_config and isinstance(v, DictConfig)) or str(v) in _COMMON[key] or str(v) in known()
        ),
    )


def trainer_rules(fit: bool) -> list[Rule]:
    rules = [
        _lightning_choice("trainer.precision", _precisions),
        _lightning_choice("trainer.accelerator", _accelerators),
        _lightning_choice("trainer.strategy", _strategies, or_config=True),
        Rule(
            "trainer.devices", "an integer >= 1, -1 (all), auto, or a list of device ids", _devices
        ),
        integer("trainer.num_nodes", 1),
        Rule(
            "trainer.limit_test_batches",
            "null, an integer >= 0 or a fraction in [0, 1]",
            _eval_batches,
        ),
    ]
    if fit:
        rules += [
            integer("trainer.max_steps", 1),
            integer("trainer.val_check_interval", 1),
            Rule(
                "trainer.limit_val_batches",
                "null, an integer >= 0 or a fraction in [0, 1]",
                _eval_batches,
            ),
            integer("trainer.accumulate_grad_batches", 1),
            integer("trainer.log_every_n_steps", 1),
            number("trainer.gradient_clip_val", 0, null=True),
            integer("trainer.num_sanity_val_steps", -1),
            integer("callbacks.last_checkpoint.every_n_train_steps", 0, null=True),
            integer("callbacks.progress_bar.every_n_steps", 0),
            integer("callbacks.flops_monitor.window", 2),
            number("callbacks.progress_bar.every_n_seconds", 0, low_open=True),
            integer("callbacks.text_samples.every_n_steps", 0),
            integer("callbacks.text_samples.max_new_tokens", 0),
            number("callbacks.text_samples.temperature", 0),
            integer("callbacks.text_samples.top_k", 1, null=True),
        ]
    return rules


GENERATION = [
    number("temperature", 0),
    number("top_p", 0, 1, low_open=True, null=True),
    integer("top_k", 1, null=True),
    integer("max_new_tokens", 0),
    integer("num_samples", 1),
    integer("seed", 0),
    boolean("use_cache"),
    boolean("stop_at_eos"),
    choice("device", ["cpu", "cuda"]),
]


def _export_rules() -> list[Rule]:
    from mia.interop.hf import DTYPES

    return [
        choice("dtype", DTYPES),
        Rule("out_dir", "a folder path", _non_empty_text),
        boolean("overwrite"),
        number("generation.temperature", 0),
        integer("generation.top_k", 1, null=True),
        number("generation.top_p", 0, 1, low_open=True, null=True),
        boolean("generation.do_sample"),
    ]


def rules(command: str) -> tuple[list[Rule], list[Check]]:
    """The rules and cross-setting checks of a command (its task_name). Only that command's
    table is built: the trainer's rules import Lightning and the export rules torch, which
    take seconds that a mistake in `mia-generate` or `mia-prepare` should not wait for."""
    gpu = _gpu_present("trainer.accelerator", ("gpu", "cuda"))
    table: dict[str, Callable[[], tuple[list[Rule], list[Check]]]] = {
        "train": lambda: (
            [
                *DATA,
                *OPTIMIZER,
                *SCHEDULER,
                *trainer_rules(fit=True),
                integer("seed", 0),
                number("budget_flops", 0, low_open=True, null=True),
                boolean("test"),
                boolean("resume"),
            ],
            [
                _splits,
                _decay_after_warmup,
                _decay_before_the_end,
                _model,
                _fits_memory,
                _compile,
                gpu,
                _fsdp_on_gpu,
                _cache_dir,
            ],
        ),
        "prepare": lambda: ([*DATA, boolean("force")], [_splits, _cache_dir]),
        "eval": lambda: (
            [*EVAL_DATA, choice("split", ["test", "val"]), *trainer_rules(fit=False)],
            [gpu, _cache_dir],
        ),
        "generate": lambda: (GENERATION, [_gpu_present("device", ("cuda",))]),
        "export": lambda: (_export_rules(), []),
    }
    if command not in table:
        raise ValueError(f"no settings rules for command {command!r}")
    return table[command]()


# What a required setting (``???`` in conf/) takes, for the message when it is not given.
REQUIRED = {
    "ckpt_path": "a checkpoint, e.g. ckpt_path=outputs/runs/train/<time>/checkpoints/last.ckpt",
    "out_dir": "a folder to write, e.g. out_dir=shakespeare-llama",
}


def _missing(cfg: DictConfig) -> list[str]:
    """A line for each required setting left unset."""
    keys = [k for k in cfg if k != "hydra" and OmegaConf.is_missing(cfg, k)]
    return [f"{k}: required; give {REQUIRED.get(k, f'{k}=<value>')}" for k in keys]


def problems(cfg: DictConfig, command: str) -> list[str]:
    """Every invalid setting of cfg for `command`, one line each."""
    table, checks = rules(command)
    found = _missing(cfg) + [p for rule in table if (p := rule.problem(cfg)) is not None]
    if not found:  # settings that relate two values, once each value is in its range
        found = [p for check in checks if (p := check(cfg)) is not None]
    return found


def check_settings(cfg: DictConfig, command: str) -> None:
    """Raise a `UserError` listing every invalid setting, one per line."""
    found = problems(cfg, command)
    if found:
        raise UserError("\nerror: ".join(found))


class CheckSettings(Callback):
    """A Hydra callback that checks a single run's settings before Hydra creates its run
    folder, so a wrong value leaves nothing behind (register it under hydra.callbacks)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        command = config.get("task_name")
        try:
            rules(command)
        except ValueError:
            return
        try:
            check_settings(config, command)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
