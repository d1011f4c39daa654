"""The Hugging Face Llama layout: config and weights to and from `LlamaForCausalLM`.

MIA's llama-preset decoder is the Llama architecture, with RoPE in the same half-split
layout, so weights move by renaming keys; MIA's fused q/k/v and gate/up projections are
split (or joined) along their output rows. No transformers import is needed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mia.errors import UserError
from mia.model.config import ModelConfig

Tensor = torch.Tensor


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
    return {key: value.detach().clone().contiguous() for key, value in out.items()}


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
