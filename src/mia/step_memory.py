"""Whether one training step of a batch can fit this machine: a lower bound on the memory
its activations and logits take, against the memory there is.

The bound counts only what a step certainly holds for the backward pass, in the compute
dtype: per layer, the residual stream, its normalised copy, the attention output and the
feed-forward input (4 x dim values a token) and the feed-forward's two hidden activations
(2 x hidden); and the logits with their gradient in float32 (2 x vocabulary). A real step
takes more (attention's own buffers, the optimizer, workspace), so a run refused here could
never have run, and one let through may still run out of memory.
"""

from __future__ import annotations

import os

GIB = 1 << 30


def step_bytes(
    *, batch: int, block: int, dim: int, hidden: int, layers: int, vocab: int, value_bytes: int
) -> int:
    """The lower bound on one training step's activation and logit memory, in bytes."""
    tokens = batch * block
    per_layer = tokens * (4 * dim + 2 * hidden) * value_bytes
    logits = tokens * vocab * 4 * 2
    return layers * per_layer + logits


def host_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_memory() -> int | None:
    """The first visible GPU's memory in bytes, or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)
