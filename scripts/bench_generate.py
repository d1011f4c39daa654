#!/usr/bin/env python
"""Decoding speed on CPU: MIA with and without its KV cache against transformers' generate.

The same model runs in both: a checkpoint (--ckpt, exported with mia-export's code to a
temporary folder) or a random llama model of the given size, exported the same way. Each
engine decodes greedily from the same random prompts at each batch size; the table gives
new tokens per second (all sequences of the batch counted; median of --repeats runs) and
checks that the greedy tokens agree.

    python scripts/bench_generate.py                        # random model, dim 256, 6 layers
    python scripts/bench_generate.py --ckpt outputs/runs/train/<time>/checkpoints/last.ckpt
    python scripts/bench_generate.py --batch-sizes 1 --new-tokens 64 --repeats 1   # quick

Needs transformers (the dev extra).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mia.interop import hf
from mia.model import Decoder, ModelConfig
from mia.results import add_results_argument, make_result, save


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ckpt", type=Path, default=None, help="a MIA checkpoint (default: random)")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--n-heads", type=int, default=8)
    p.add_argument("--n-kv-heads", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--context", type=int, default=512, help="max_seq_len of the random model")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    p.add_argument("--no-uncached", action="store_true", help="skip MIA without the cache")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    add_results_argument(p, "bench_generate")
    return p.parse_args()


def random_decoder(args: argparse.Namespace) -> Decoder:
    """A random llama model whose logits are spread out enough that greedy choices are not
    near-ties (so both engines' tokens can be compared)."""
    config = ModelConfig.preset(
        "llama",
        vocab_size=args.vocab_size,
        dim=args.dim,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        n_kv_heads=args.n_kv_heads,
        max_seq_len=args.context,
    )
    model = Decoder(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.08)
    return model.eval()


def export_model(args: argparse.Namespace, folder: Path) -> None:
    if args.ckpt is None:
        hf.save_hf_folder(random_decoder(args), None, folder)
        return
    from mia.cli.export import export
    from mia.conf import compose

    export(compose("export", [f"ckpt_path={args.ckpt}", f"out_dir={folder}", "overwrite=true"]))


def timed(run: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    """Median seconds of `repeats` calls (after one short warm-up by the caller) and the
    last output."""
    seconds, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - start)
    assert out is not None
    return statistics.median(seconds), out


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        export_model(args, folder)
        ours, _ = hf.decoder_from_hf_folder(folder)
        theirs = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    theirs.eval()
    config = ours.config
    if args.prompt_len + args.new_tokens > config.max_seq_len:
        raise SystemExit(
            f"prompt {args.prompt_len} + {args.new_tokens} new tokens exceed the context "
            f"{config.max_seq_len}; lower --new-tokens"
        )
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads; model: {ours.num_parameters():,} parameters, "
        f"dim {config.dim}, {config.n_layers} layers, {config.n_heads} heads "
        f"({config.n_kv_heads} kv), vocab {config.vocab_size}, context {config.max_seq_len}; "
        f"prompt {args.prompt_len} + {args.new_tokens} new tokens, greedy, float32"
    )

    def hf_generate(prompt: torch.Tensor, n: int) -> torch.Tensor:
        return theirs.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            temperature=None,
            top_k=None,
            top_p=None,
            use_cache=True,
            eos_token_id=None,
            pad_token_id=0,
        )

    engines: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
        "MIA, KV cache": lambda p, n: ours.generate(p, n, temperature=0, use_cache=True),
        "MIA, no cache": lambda p, n: ours.generate(p, n, temperature=0, use_cache=False),
        "transformers generate": hf_generate,
    }
    if args.no_uncached:
        del engines["MIA, no cache"]

    header = f"{'batch':>5}  {'engine':<24}{'tokens/s':>10}{'ms/step':>10}{'vs HF':>8}  greedy"
    print(header)
    print("-" * len(header))
    generator = torch.Generator().manual_seed(args.seed)
    table = []
    for batch in args.batch_sizes:
        prompt = torch.randint(0, config.vocab_size, (batch, args.prompt_len), generator=generator)
        results = {}
        with torch.inference_mode():
            for name, run in engines.items():
                run(prompt, 4)  # warm-up
                repeats = 1 if name == "MIA, no cache" else args.repeats
                results[name] = timed(lambda run=run, p=prompt: run(p, args.new_tokens), repeats)
        reference = results["transformers generate"][1]
        hf_rate = batch * args.new_tokens / results["transformers generate"][0]
        for name, (seconds, tokens) in results.items():
            rate = batch * args.new_tokens / seconds
            same = (
                "reference"
                if name == "transformers generate"
                else agreement(tokens, reference, args.prompt_len)
            )
            print(
                f"{batch:>5}  {name:<24}{rate:>10,.0f}{1000 * seconds / args.new_tokens:>10.2f}"
                f"{rate / hf_rate:>7.2f}x  {same}"
            )
            step_ms = round(1000 * seconds / args.new_tokens, 1)
            table.append([batch, name, round(rate), step_ms, round(rate / hf_rate, 2), same])
    columns = ["batch", "engine", "tokens/s", "ms/step", "vs transformers", "tokens"]
    notes = (
        f"Greedy decoding of {args.new_tokens} new tokens after a {args.prompt_len}-token "
        f"prompt, float32, {torch.get_num_threads()} threads; a {ours.num_parameters():,}-"
        f"parameter model (width {config.dim}, {config.n_layers} layers, {config.n_heads} "
        f"heads / {config.n_kv_heads} kv heads, vocabulary {config.vocab_size}); "
        f"transformers {transformers.__version__}."
    )
    save(make_result("bench_generate", "Decoding speed", columns, table, notes), args.results)


def agreement(tokens: torch.Tensor, reference: torch.Tensor, prompt_len: int) -> str:
    """Whether greedy tokens equal the reference's, or from which new token they differ."""
    if torch.equal(tokens, reference):
        return "same tokens"
    if tokens.shape != reference.shape:
        return f"different lengths {tuple(tokens.shape)} vs {tuple(reference.shape)}"
    first = int((tokens != reference).any(dim=0).nonzero()[0])
    return f"DIFFERENT from new token {first - prompt_len + 1}"


if __name__ == "__main__":
    main()
