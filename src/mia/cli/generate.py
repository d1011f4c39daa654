"""mia-generate: continue prompts with a trained checkpoint, streaming text to stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from omegaconf import DictConfig, ListConfig

from mia.cli.command import hydra_command
from mia.errors import UserError
from mia.settings import check_settings


def stream_text(cfg: DictConfig, prompt: str, module, seed: int) -> Iterator[str]:
    """Yield pieces of text as tokens arrive; a piece is held back while it ends inside a
    multi-byte character (byte-fallback tokens)."""
    import torch

    from mia.model.sampling import stream_tokens

    tokenizer = module.tokenizer
    ids = tokenizer.encode(prompt)
    if not ids:
        raise UserError(
            "prompt: the prompt encodes to no tokens; give some text (default is a newline)"
        )
    idx = torch.tensor([ids], device=module.device)
    new: list[int] = []
    shown = ""
    for token in stream_tokens(
        module.decoder,
        idx,
        cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        seed=seed,
        use_cache=cfg.use_cache,
    ):
        if cfg.get("stop_at_eos", False) and int(token[0]) == tokenizer.eos_id:
            break  # the model ended the text (documents end with this id in training)
        new.append(int(token[0]))
        text = tokenizer.decode(new)
        if text.endswith("\ufffd"):
            continue
        yield text[len(shown) :]
        shown = text
    text = tokenizer.decode(new)
    if len(text) > len(shown):
        yield text[len(shown) :]


def generate(cfg: DictConfig) -> list[str]:
    """Print (and return) a continuation of each prompt."""
    check_settings(cfg, "generate")  # before the slow imports: a mistake is reported at once
    from mia.training.checkpoint import load_language_model

    module = load_language_model(cfg.ckpt_path).to(cfg.device)
    prompts = list(cfg.prompt) if isinstance(cfg.prompt, ListConfig | list) else [cfg.prompt]
    for prompt in prompts:  # every prompt checked before any text is printed
        try:
            module.tokenizer.encode(str(prompt))
        except UserError as err:
            raise UserError(f"prompt={prompt!r}: {err}") from None
    outputs = []
    for i, prompt in enumerate(prompts):
        for n in range(cfg.num_samples):
            if len(prompts) * cfg.num_samples > 1:
                print(f"--- sample {len(outputs) + 1} ---", flush=True)
            print(prompt, end="", flush=True)
            pieces = []
            for piece in stream_text(cfg, str(prompt), module, cfg.seed + 1000 * i + n):
                pieces.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            print(flush=True)
            outputs.append(str(prompt) + "".join(pieces))
    return outputs


@hydra_command("generate")
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
