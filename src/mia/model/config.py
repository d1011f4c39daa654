"""`ModelConfig`: the sizes and component choices of a decoder, validated in one place.

A checkpoint stores `ModelConfig.to_dict()`, so it describes the model it holds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from mia.errors import UserError

Norm = Literal["rmsnorm", "layernorm"]
Position = Literal["rope", "learned"]
MLP = Literal["swiglu", "gelu", "relu2"]
Parametrization = Literal["sp", "mup"]

_CHOICES = {
    "norm": ("rmsnorm", "layernorm"),
    "position": ("rope", "learned"),
    "mlp": ("swiglu", "gelu", "relu2"),
    "parametrization": ("sp", "mup"),
}

# Component choices of the two designs MIA starts from; sizes come from the caller.
PRESETS: dict[str, dict[str, Any]] = {
    "llama": dict(norm="rmsnorm", position="rope", mlp="swiglu", bias=False, tie_embeddings=False),
    "gpt": dict(norm="layernorm", position="learned", mlp="gelu", bias=True, tie_embeddings=True),
}


class ModelConfigError(UserError, ValueError):
    """One or more invalid model settings; the message lists every one."""


@dataclass
class ModelConfig:
    vocab_size: int = 2048
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    # Key/value heads: 1 is multi-query, n_heads is multi-head, in between grouped-query.
    # None means n_heads.
    n_kv_heads: int | None = None
    max_seq_len: int = 256
    norm: Norm = "rmsnorm"
    position: Position = "rope"
    mlp: MLP = "swiglu"
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0
    # Dropout on the attention weights; None takes `dropout`. On CPU any attention dropout
    # moves PyTorch's attention off its fused kernel onto the math path, many times slower,
    # so 0 here with `dropout` > 0 regularises the residual stream at little cost.
    attention_dropout: float | None = None
    bias: bool = False
    tie_embeddings: bool = False
    # SwiGLU hidden size: about 8/3 * dim, rounded up to a multiple of this (LLaMA's rule).
    multiple_of: int = 32
    # Feed-forward hidden size; None derives it (SwiGLU rule above, 4 * dim for GELU, ReLU²).
    hidden_dim: int | None = None
    # Speedrun switches, all off by default (the LLaMA and GPT designs use none of them).
    # RMSNorm over each head's queries and keys, before RoPE (modded-nanoGPT, Qwen3).
    qk_norm: bool = False
    # c > 0 squashes the logits into (-c, c): c * tanh(logits / c) (Gemma 2). None: no cap.
    logit_softcap: float | None = None
    # Start the residual output projections at zero, so every block begins as the identity.
    zero_init_residual: bool = False
    # "mup": maximal update parametrisation (Yang et al., Tensor Programs V). With width
    # multiplier m = dim / mup_base_dim: hidden matrices start at std 0.02/sqrt(m) and
    # AdamW steps them at lr/m, the logits are multiplied by 1/m and attention scores
    # scale as 1/D instead of 1/sqrt(D), so the settings tuned at mup_base_dim hold at
    # dim. "sp": the standard parametrisation.
    parametrization: Parametrization = "sp"
    # The width the hyper-parameters were tuned at (same depth and head count); None: this
    # model's own width, where mup equals sp.
    mup_base_dim: int | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "max_seq_len", "multiple_of"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                problems.append(f"{name} must be a positive integer (got {value!r})")
        if self.n_kv_heads is None and isinstance(self.n_heads, int):
            self.n_kv_heads = self.n_heads
        if not isinstance(self.n_kv_heads, int) or self.n_kv_heads <= 0:
            problems.append(f"n_kv_heads must be a positive integer (got {self.n_kv_heads!r})")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                problems.append(
                    f"{name} must be one of {', '.join(allowed)} (got {getattr(self, name)!r})"
                )
        if not problems:
            if self.dim % self.n_heads:
                problems.append(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
            elif self.position == "rope" and (self.dim // self.n_heads) % 2:
                problems.append(
                    f"head size dim/n_heads = {self.dim // self.n_heads} must be even for RoPE"
                )
            if self.n_heads % self.n_kv_heads:
                problems.append(
                    f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})"
                )
        if not _is_fraction(self.dropout):
            problems.append(f"dropout must be in [0, 1) (got {self.dropout!r})")
        if self.attention_dropout is not None and not _is_fraction(self.attention_dropout):
            problems.append(
                f"attention_dropout must be in [0, 1) or null (got {self.attention_dropout!r})"
            )
        if not self.norm_eps > 0:
            problems.append(f"norm_eps must be positive (got {self.norm_eps})")
        if not self.rope_theta > 0:
            problems.append(f"rope_theta must be positive (got {self.rope_theta})")
        if self.hidden_dim is not None and (
            not isinstance(self.hidden_dim, int) or self.hidden_dim <= 0
        ):
            problems.append(
                f"hidden_dim must be a positive integer or null (got {self.hidden_dim!r})"
            )
        for name in ("bias", "tie_embeddings", "qk_norm", "zero_init_residual"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if self.mup_base_dim is not None and (
            not isinstance(self.mup_base_dim, int)
            or isinstance(self.mup_base_dim, bool)
            or self.mup_base_dim <= 0
        ):
            problems.append(
                f"mup_base_dim must be a positive integer or null (got {self.mup_base_dim!r})"
            )
        if self.logit_softcap is not None and not _is_positive_number(self.logit_softcap):
            problems.append(
                f"logit_softcap must be a positive number or null (got {self.logit_softcap!r})"
            )
        if problems:
            raise ModelConfigError("invalid model config: " + "; ".join(problems))
        if self.logit_softcap is not None:
            self.logit_softcap = float(self.logit_softcap)
        if self.hidden_dim is None:
            self.hidden_dim = (
                swiglu_hidden_dim(self.dim, self.multiple_of)
                if self.mlp == "swiglu"
                else 4 * self.dim
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def width_multiplier(self) -> float:
        """µP's m = dim / mup_base_dim; 1 under sp or without a base width."""
        if self.parametrization != "mup" or self.mup_base_dim is None:
            return 1.0
        return self.dim / self.mup_base_dim

    @property
    def attention_scale(self) -> float | None:
        """The attention scores' scale, or None for the default 1/sqrt(D). Under µP, 1/D with
        the constant that makes it 1/sqrt(D) at the base width: sqrt(D_base) / D, where
        D_base = D / m is the head size of the base model (same head count)."""
        m = self.width_multiplier
        if m == 1.0:
            return None
        return 1.0 / math.sqrt(self.head_dim * m)

    @property
    def attention_dropout_rate(self) -> float:
        """Dropout on the attention weights: attention_dropout, or dropout when that is None."""
        return self.dropout if self.attention_dropout is None else self.attention_dropout

    @property
    def draws_dropout(self) -> bool:
        """Whether training draws dropout masks anywhere (residual stream or attention)."""
        return self.dropout > 0 or self.attention_dropout_rate > 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """The `llama` or `gpt` component choices, with sizes and any other field overridden."""
        if name not in PRESETS:
            raise ModelConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict, naming any key that is not a model setting. A missing key takes
        its default, so checkpoints from before a setting existed still load."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelConfigError(f"unknown model setting(s): {', '.join(unknown)}")
        return cls(**values)


def _is_positive_number(value: Any) -> bool:
    """A finite number > 0; bools are not numbers here."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def swiglu_hidden_dim(dim: int, multiple_of: int) -> int:
    """LLaMA's SwiGLU width: 2/3 of 4 * dim (same parameters as a 4x GELU MLP), rounded up."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


def _is_fraction(value: Any) -> bool:
    """A number in [0, 1); bools are not numbers here."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value < 1.0
