"""The decoder-only language model: LLaMA and classic transformer parts behind one config."""

from mia.model.config import PRESETS, ModelConfig, ModelConfigError
from mia.model.decoder import Decoder
from mia.model.sampling import sample_next_token

__all__ = ["PRESETS", "Decoder", "ModelConfig", "ModelConfigError", "sample_next_token"]
