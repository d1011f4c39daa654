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
    # Fix the head size instead of the head count: n_heads becomes dim // head_size, and
    # n_kv_heads keeps the query heads per key/value head that n_heads / n_kv_heads give
    # (so a wider model has more heads of the same size, and more key/value heads in the
    # same ratio). None: n_heads as given, head size dim // n_heads.
    head_size: int | None = None
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
    # "mup": maximal update parametrisation (Yang et al., Tensor Programs V, Table 8). The
    # base model is this config at width mup_base_dim (`base_config`). Each matrix inside
    # the blocks has its own multiplier m_t = fan_in / the base model's fan_in (mia.model.mup):
    # it starts at std 0.02/sqrt(m_t) and AdamW steps it at lr/m_t; the logits are
    # multiplied by 1/m (m = dim / mup_base_dim) and attention scores scale as
    # sqrt(D_base)/D, so the settings tuned at mup_base_dim hold at dim. "sp": the
    # standard parametrisation.
    parametrization: Parametrization = "sp"
    # The width the hyper-parameters were tuned at (same depth; same head count, or same
    # head size with head_size set); None: this model's own width.
    mup_base_dim: int | None = None
    # Under mup, start the readout (lm_head) and the query projection at zero, as Tensor
    # Programs V and Microsoft's mup package recommend: the initial logits are then zero
    # and the initial attention uniform at every width, so the start does not depend on
    # the width at all (the narrow model's start is the wide model's start) and the
    # tuned rate carries over better; it costs nothing in loss. With tie_embeddings the
    # readout is the embedding table and keeps its init (only the query is zeroed).
    # No effect under sp.
    mup_zero_init: bool = True

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
        if self.head_size is not None:
            problems += self._heads_from_head_size() if not problems else []
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
        for name in ("bias", "tie_embeddings", "qk_norm", "zero_init_residual", "mup_zero_init"):
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
            self.hidden_dim = self._derived_hidden_dim(self.dim)
        if self.parametrization == "mup" and self.mup_base_dim is not None:
            try:
                self.base_config()
            except ModelConfigError as err:
                raise ModelConfigError(
                    f"invalid model config: mup_base_dim={self.mup_base_dim} gives no valid "
                    f"base model ({str(err).removeprefix('invalid model config: ')})"
                ) from None

    def _heads_from_head_size(self) -> list[str]:
        """With head_size set: n_heads = dim // head_size, n_kv_heads in the given ratio."""
        size = self.head_size
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            return [f"head_size must be a positive integer or null (got {size!r})"]
        if self.dim % size:
            return [f"dim ({self.dim}) must be divisible by head_size ({size})"]
        if self.n_heads % self.n_kv_heads:
            return [f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})"]
        group = self.n_heads // self.n_kv_heads  # query heads per key/value head
        heads = self.dim // size
        if heads % group:
            return [
                f"head_size={size} gives {heads} query heads, not a multiple of the "
                f"{group} query heads per key/value head that n_heads/n_kv_heads ask"
            ]
        self.n_heads, self.n_kv_heads = heads, heads // group
        return []

    def _derived_hidden_dim(self, dim: int) -> int:
        """The feed-forward size a model of width `dim` gets when hidden_dim is not given."""
        return swiglu_hidden_dim(dim, self.multiple_of) if self.mlp == "swiglu" else 4 * dim

    def base_config(self) -> ModelConfig:
        """µP's base model: this config at width mup_base_dim (this model's own width when
        that is None), as an sp model. It keeps the head count, or the head size with
        head_size set; the feed-forward size follows the same rule at the base width (a
        hidden_dim given explicitly keeps its ratio to the width)."""
        base = self.mup_base_dim or self.dim
        hidden = None
        if self.hidden_dim != self._derived_hidden_dim(self.dim):
            hidden, rest = divmod(self.hidden_dim * base, self.dim)
            if rest:
                raise ModelConfigError(
                    f"invalid model config: hidden_dim={self.hidden_dim} does not scale to "
                    f"width {base} (hidden_dim * mup_base_dim / dim must be a whole number)"
                )
        return dataclasses.replace(
            self, dim=base, hidden_dim=hidden, parametrization="sp", mup_base_dim=None
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
        D_base is the base model's head size (D / m with a fixed head count; D itself with
        a fixed head_size, where the scale is the default 1/sqrt(D))."""
        if self.width_multiplier == 1.0:
            return None
        base_head = self.base_config().head_dim
        if base_head == self.head_dim:
            return None
        return math.sqrt(base_head) / self.head_dim

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
