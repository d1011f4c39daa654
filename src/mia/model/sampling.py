"""Choosing the next token from logits, and the decoding loop behind `Decoder.generate`.

The loop needs only what `CachedDecoder` names, so this module does not import the decoder
(which imports it): the two stay out of an import circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch


class CachedDecoder(Protocol):
    """What decoding needs of a model: a config with max_seq_len, a forward over token ids
    at given positions, and a KV cache to set up and tear down (`Decoder` is one)."""

    config: Any
    training: bool

    def __call__(
        self, idx: torch.Tensor, input_pos: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def setup_cache(self, batch_size: int, max_len: int | None = None) -> None: ...

    def reset_cache(self) -> None: ...

    @property
    def cache_len(self) -> int: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits: (B, V) -> token ids (B,). Temperature 0 is greedy (argmax)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (got {temperature})")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token once the tokens before it already reach top_p; the first always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


@torch.no_grad()
def stream_tokens(
    model: CachedDecoder,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield each new token (B,) for prompts idx (B, T), one step at a time.

    With the cache, the prompt is run once and then one token per step. When the sequence
    outgrows max_seq_len, the cache is refilled from the last half-context of tokens
    (a sliding window, amortised); without the cache every step recomputes the last
    max_seq_len tokens.
    """
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError("idx must be a non-empty (batch, time) tensor of token ids")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    ctx = model.config.max_seq_len
    was_training = model.training
    model.eval()
    tokens = idx
    try:
        if not use_cache:
            for _ in range(max_new_tokens):
                logits = model(tokens[:, -ctx:])[:, -1]
                nxt = sample_next_token(logits, temperature, top_k, top_p, generator)
                tokens = torch.cat((tokens, nxt[:, None]), dim=1)
                yield nxt
            return

        model.setup_cache(idx.shape[0], min(ctx, idx.shape[1] + max_new_tokens))
        window = tokens[:, -ctx:]
        logits = model(window, input_pos=torch.arange(window.shape[1], device=idx.device))[:, -1]
        pos = window.shape[1]
        for step in range(max_new_tokens):
            nxt = sample_next_token(logits, temperature, top_k, top_p, generator)
            tokens = torch.cat((tokens, nxt[:, None]), dim=1)
            yield nxt
            if step == max_new_tokens - 1:
                break
            if pos == model.cache_len:  # full: keep the newest half-context and refill
                window = tokens[:, -(ctx // 2 + 1) :]
                input_pos = torch.arange(window.shape[1], device=idx.device)
                logits = model(window, input_pos=input_pos)[:, -1]
                pos = window.shape[1]
            else:
                input_pos = torch.tensor([pos], device=idx.device)
                logits = model(nxt[:, None], input_pos=input_pos)[:, -1]
                pos += 1
    finally:
        model.reset_cache()
        model.train(was_training)
