"""MIA: train, study and ship small LLaMA-style language models."""

__version__ = "0.2.0"
