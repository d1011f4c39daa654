"""The Hugging Face Llama layout: config and weights to and from `LlamaForCausalLM`.

MIA's llama-preset decoder is the Llama architecture, with RoPE in the same half-split
layout, so weights move by renaming keys; MIA's fused q/k/v and gate/up projections are
split (or joined) along their output rows. No transformers import is needed here.

A model folder (what ``save_pretrained`` writes) is read and written with JSON and
safetensors only; a ``pytorch_model.bin`` is read with ``weights_only=True``. Nothing stored
in a folder can run code here.

    save_hf_folder(decoder, tokenizer, "out", dtype="bfloat16", card=text)
    config, state, tokenizer = load_hf_folder("out")
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mia.errors import UserError
from mia.interop.hf_tokenizer import TOKENIZER_FILES, tokenizer_files, tokenizer_from_folder
from mia.model.config import ModelConfig
from mia.model.decoder import Decoder
from mia.safe_load import load_weights_only
from mia.tokenizer import Tokenizer

Tensor = torch.Tensor

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Every file a model folder may hold that save_hf_folder writes or that would shadow them.
_WEIGHT_NAMES = (
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_WEIGHT_GLOBS = ("model-*-of-*.safetensors", "pytorch_model-*-of-*.bin")


def export_problems(config: ModelConfig) -> list[str]:
    """What about this config the Llama architecture cannot express (empty if it exports)."""
    problems = []
    if config.norm != "rmsnorm":
        problems.append(f"model.norm={config.norm} (Llama uses rmsnorm)")
    if config.position != "rope":
        problems.append(f"model.position={config.position} (Llama uses rope)")
    if config.mlp != "swiglu":
        problems.append(f"model.mlp={config.mlp} (Llama uses swiglu)")
    if config.bias:
        problems.append("model.bias=true (Llama's linear layers here have no bias)")
    if config.qk_norm:
        problems.append("model.qk_norm=true (Llama has no query/key norm)")
    if config.logit_softcap is not None:
        problems.append(f"model.logit_softcap={config.logit_softcap} (Llama does not cap logits)")
    if config.width_multiplier != 1.0 and config.tie_embeddings:
        problems.append(
            "model.parametrization=mup with tie_embeddings=true (the logits' 1/m multiplier "
            "would fold into the embedding table too)"
        )
    return problems


def check_exportable(config: ModelConfig) -> None:
    problems = export_problems(config)
    if problems:
        raise UserError("this model does not fit the Llama format: " + "; ".join(problems))


def to_hf_config(
    config: ModelConfig, bos_token_id: int | None = None, eos_token_id: int | None = None
) -> dict[str, Any]:
    """A `LlamaConfig` as the dict `config.json` holds."""
    check_exportable(config)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.dim,
        "intermediate_size": config.hidden_dim,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "pad_token_id": None,
        "use_cache": True,
    }


def from_hf_config(hf: Mapping[str, Any], **overrides: Any) -> ModelConfig:
    """A `ModelConfig` for a Llama `config.json` dict (or `LlamaConfig.to_dict()`)."""
    if hf.get("model_type", "llama") != "llama":
        raise UserError(f"expected a Llama model, found model_type={hf.get('model_type')!r}")
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise UserError(f"hidden_act={act!r} is not supported (MIA's SwiGLU uses silu)")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        raise UserError("Llama models with attention_bias or mlp_bias are not supported")
    rope = hf.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default" or hf.get("rope_scaling"):
        raise UserError("Llama models with RoPE scaling are not supported")
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    n_heads = hf["num_attention_heads"]
    dim = hf["hidden_size"]
    head_dim = hf.get("head_dim") or dim // n_heads
    if head_dim * n_heads != dim:
        raise UserError(
            f"head_dim {head_dim} * heads {n_heads} != hidden_size {dim}: not supported"
        )
    values = dict(
        vocab_size=hf["vocab_size"],
        dim=dim,
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        max_seq_len=hf.get("max_position_embeddings", 2048),
        norm="rmsnorm",
        position="rope",
        mlp="swiglu",
        rope_theta=float(theta),
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        bias=False,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        hidden_dim=hf["intermediate_size"],
    )
    values.update(overrides)
    return ModelConfig(**values)


_RENAMES = [  # (MIA key pattern, HF key pattern); {i} is the layer number
    ("tok_emb.weight", "model.embed_tokens.weight"),
    ("norm.weight", "model.norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
    ("blocks.{i}.attn_norm.weight", "model.layers.{i}.input_layernorm.weight"),
    ("blocks.{i}.mlp_norm.weight", "model.layers.{i}.post_attention_layernorm.weight"),
    ("blocks.{i}.attn.proj.weight", "model.layers.{i}.self_attn.o_proj.weight"),
    ("blocks.{i}.mlp.down.weight", "model.layers.{i}.mlp.down_proj.weight"),
]


def to_hf_state_dict(state: Mapping[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """MIA decoder weights -> `LlamaForCausalLM` weights (contiguous tensors, safetensors-ready)."""
    check_exportable(config)
    H, G, D = config.n_heads, config.n_kv_heads, config.head_dim
    out: dict[str, Tensor] = {}
    for i in range(config.n_layers):
        prefix = f"model.layers.{i}"
        q, k, v = state[f"blocks.{i}.attn.qkv.weight"].split((H * D, G * D, G * D), dim=0)
        out[f"{prefix}.self_attn.q_proj.weight"] = q
        out[f"{prefix}.self_attn.k_proj.weight"] = k
        out[f"{prefix}.self_attn.v_proj.weight"] = v
        gate, up = state[f"blocks.{i}.mlp.gate_up.weight"].chunk(2, dim=0)
        out[f"{prefix}.mlp.gate_proj.weight"] = gate
        out[f"{prefix}.mlp.up_proj.weight"] = up
    for mia_key, hf_key in _RENAMES:
        for i in range(config.n_layers) if "{i}" in mia_key else [None]:
            out[hf_key.format(i=i)] = state[mia_key.format(i=i)]
    if config.tie_embeddings:
        del out["lm_head.weight"]  # transformers re-ties it from embed_tokens
    out = {key: value.detach().clone().contiguous() for key, value in out.items()}
    _fold_mup(out, config)
    return out


def _fold_mup(state: dict[str, Tensor], config: ModelConfig) -> None:
    """Fold µP's forward multipliers into the exported weights, in place, so a plain Llama
    computes the same logits. µP's per-matrix multipliers m_t set only the init and the
    rates, not the forward pass; what the forward multiplies by is the logits' 1/m, which
    goes into lm_head, and the attention scale sqrt(D_base)/D against Llama's 1/sqrt(D),
    which goes into q_proj as sqrt(D_base / D) (RoPE rotates each query linearly, so a
    scalar commutes with it): 1/sqrt(m) with a fixed head count, 1 with a fixed head size.
    Both are exact up to rounding."""
    m = config.width_multiplier
    if m == 1.0:
        return
    state["lm_head.weight"].mul_(1.0 / m)
    scale = config.attention_scale
    if scale is None:
        return
    query = scale * math.sqrt(config.head_dim)
    for i in range(config.n_layers):
        state[f"model.layers.{i}.self_attn.q_proj.weight"].mul_(query)


def from_hf_state_dict(state: Mapping[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """`LlamaForCausalLM` weights -> MIA decoder weights (for `Decoder.load_state_dict`)."""
    out: dict[str, Tensor] = {}
    try:
        for i in range(config.n_layers):
            prefix = f"model.layers.{i}"
            out[f"blocks.{i}.attn.qkv.weight"] = torch.cat(
                [state[f"{prefix}.self_attn.{n}_proj.weight"] for n in ("q", "k", "v")], dim=0
            )
            out[f"blocks.{i}.mlp.gate_up.weight"] = torch.cat(
                [state[f"{prefix}.mlp.{n}_proj.weight"] for n in ("gate", "up")], dim=0
            )
        for mia_key, hf_key in _RENAMES:
            for i in range(config.n_layers) if "{i}" in mia_key else [None]:
                if mia_key == "lm_head.weight" and config.tie_embeddings:
                    out[mia_key] = state.get(hf_key, state["model.embed_tokens.weight"])
                    continue
                out[mia_key.format(i=i)] = state[hf_key.format(i=i)]
    except KeyError as missing:
        raise UserError(
            f"the Llama weights lack {missing.args[0]}: not a matching checkpoint"
        ) from None
    return out


# --- model folders ------------------------------------------------------------------------


def save_hf_folder(
    decoder: Decoder,
    tokenizer: Tokenizer | None,
    out_dir: str | Path,
    dtype: str = "float32",
    card: str | None = None,
    generation: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write a folder that ``LlamaForCausalLM.from_pretrained`` and ``AutoTokenizer`` load:
    config.json, model.safetensors (weights in `dtype`), generation_config.json (token ids,
    then `generation` defaults), the tokenizer's files (see `mia.interop.hf_tokenizer`) and
    `card` as README.md. Files of an earlier model in the folder are replaced. Returns the
    files written."""
    config = decoder.config
    check_exportable(config)
    if dtype not in DTYPES:
        raise UserError(f"dtype={dtype}: choose one of {', '.join(DTYPES)}")
    files: dict[str, bytes] = {}
    bos = eos = None
    if tokenizer is not None:
        if tokenizer.vocab_size > config.vocab_size:
            raise UserError(
                f"the tokenizer has {tokenizer.vocab_size} ids but the model only "
                f"{config.vocab_size}: they do not belong together"
            )
        files.update(tokenizer_files(tokenizer))
        bos, eos = tokenizer.bos_id, tokenizer.eos_id
    hf_config = to_hf_config(config, bos_token_id=bos, eos_token_id=eos)
    hf_config["dtype"] = hf_config["torch_dtype"] = dtype  # transformers >= 4.56, and older
    files[CONFIG_FILE] = _json_bytes(hf_config)
    generation_config = {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos}
    generation_config.update(generation or {})
    files[GENERATION_CONFIG_FILE] = _json_bytes(generation_config)
    if card is not None:
        files[CARD_FILE] = card.encode("utf-8")
    weights = {
        key: value.to(DTYPES[dtype])
        for key, value in to_hf_state_dict(decoder.state_dict(), config).items()
    }

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in _model_files(out_dir):
        path.unlink()
    written = [out_dir / WEIGHTS_FILE]
    save_file(weights, written[0], metadata={"format": "pt"})
    for name, content in files.items():
        (out_dir / name).write_bytes(content)
        written.append(out_dir / name)
    return written


def load_hf_folder(
    folder: str | Path, label: str | None = None
) -> tuple[ModelConfig, dict[str, Tensor], Tokenizer | None]:
    """A Llama model folder as MIA's model config, decoder weights (for
    `Decoder.load_state_dict`, see `load_decoder_weights`) and tokenizer (None if the folder
    has none MIA can use). Whatever does not fit is a one-line `UserError` starting with
    `label` (default: the folder)."""
    folder = Path(folder)
    label = label or str(folder)
    if not folder.is_dir():
        raise UserError(f"{label}: no such folder")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise UserError(
            f"{label}: no {CONFIG_FILE}; give a Hugging Face model folder "
            "(written by save_pretrained or mia-export)"
        )
    try:
        hf = json.loads(config_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{label}: {CONFIG_FILE} is not valid JSON") from None
    if not isinstance(hf, dict):
        raise UserError(f"{label}: {CONFIG_FILE} does not hold a model config")
    try:
        config = from_hf_config(hf)
    except KeyError as missing:
        raise UserError(f"{label}: {CONFIG_FILE} lacks {missing.args[0]!r}") from None
    except (UserError, TypeError) as err:
        raise UserError(f"{label}: {err}") from None
    weights = read_hf_weights(folder, label)
    try:
        state = from_hf_state_dict(weights, config)
    except UserError as err:
        raise UserError(f"{label}: {err}") from None
    except RuntimeError as err:  # halves of a fused weight whose shapes do not fit
        raise UserError(
            f"{label}: the weights do not fit {CONFIG_FILE} ({_one_line(err)})"
        ) from None
    return config, state, tokenizer_from_folder(folder)


def read_hf_weights(folder: str | Path, label: str | None = None) -> dict[str, Tensor]:
    """The tensors of a model folder: model.safetensors, pytorch_model.bin (weights only), or
    the shards either index names."""
    folder = Path(folder)
    label = label or str(folder)
    for single, index in (
        (WEIGHTS_FILE, "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (folder / single).is_file():
            return _read_weight_file(folder / single, label)
        if (folder / index).is_file():
            weights: dict[str, Tensor] = {}
            for shard in _shards(folder / index, label):
                weights.update(_read_weight_file(folder / shard, label))
            return weights
    raise UserError(f"{label}: no weights ({WEIGHTS_FILE} or pytorch_model.bin)")


def load_decoder_weights(decoder: Decoder, state: Mapping[str, Tensor], label: str) -> None:
    """`decoder.load_state_dict(state)`, with a mismatch as one line instead of a traceback."""
    try:
        decoder.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"{label}: the weights do not fit the model ({_one_line(err)})") from None


def decoder_from_hf_folder(folder: str | Path) -> tuple[Decoder, Tokenizer | None]:
    """The `Decoder` (float32, eval mode) and tokenizer of a Llama model folder."""
    config, state, tokenizer = load_hf_folder(folder)
    decoder = Decoder(config)
    load_decoder_weights(decoder, state, str(folder))
    return decoder.eval(), tokenizer


def _model_files(folder: Path) -> list[Path]:
    """Files in `folder` that belong to a model folder (to replace them, not mix them)."""
    names = {CONFIG_FILE, GENERATION_CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, *TOKENIZER_FILES}
    found = [folder / name for name in (*sorted(names), *_WEIGHT_NAMES)]
    found += [path for pattern in _WEIGHT_GLOBS for path in sorted(folder.glob(pattern))]
    return [path for path in found if path.is_file()]


def _shards(index: Path, label: str) -> list[str]:
    try:
        weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{label}: {index.name} is not a weight index") from None
    for shard in shards:  # names inside the folder only
        if not isinstance(shard, str) or Path(shard).name != shard:
            raise UserError(f"{label}: {index.name} names a file outside the folder: {shard!r}")
    return shards


def _read_weight_file(path: Path, label: str) -> dict[str, Tensor]:
    if not path.is_file():
        raise UserError(f"{label}: {path.name} is missing")
    if path.suffix == ".safetensors":
        try:
            return load_file(path, device="cpu")
        except Exception as err:
            raise UserError(
                f"{label}: {path.name} is not a readable safetensors file ({type(err).__name__})"
            ) from None
    weights = load_weights_only(path, f"{label}: {path.name}")
    if not isinstance(weights, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in weights.items()
    ):
        raise UserError(f"{label}: {path.name} does not hold a dict of named tensors")
    return weights


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
