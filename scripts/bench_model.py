#!/usr/bin/env python
"""Measure the decoder on CPU (or GPU): training tokens/s and decoding tokens/s.

For each preset, at one size: training throughput (forward + backward + AdamW step, in
float32 or bf16 autocast) and greedy decoding throughput with and without the KV cache.

    python scripts/bench_model.py --dim 128 --n-layers 4 --n-heads 4 --seq-len 256
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["llama", "gpt"])
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--n-kv-heads", type=int, default=None, help="llama only; default n_heads")
    p.add_argument("--seq-len", type=int, default=256, help="training context (max_seq_len)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size")
    p.add_argument("--steps", type=int, default=20, help="timed training steps (after 3 warm-up)")
    p.add_argument("--precision", choices=["32", "bf16"], default="32")
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--decode-batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args()


def train_tokens_per_s(model: Decoder, args: argparse.Namespace) -> float:
    device = torch.device(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cpu" or None)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if args.precision == "bf16"
        else nullcontext()
    )
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len + 1), device=device)
    x, y = batch[:, :-1], batch[:, 1:]
    times = []
    for step in range(args.steps + 3):
        start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return args.batch_size * args.seq_len / statistics.median(times)


def decode_tokens_per_s(model: Decoder, args: argparse.Namespace, use_cache: bool) -> float:
    prompt = torch.randint(
        0, args.vocab_size, (args.decode_batch, args.prompt_len), device=args.device
    )
    model.generate(prompt, 4, temperature=0, use_cache=use_cache)  # warm-up
    start = time.perf_counter()
    model.generate(prompt, args.new_tokens, temperature=0, use_cache=use_cache)
    return args.decode_batch * args.new_tokens / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"device={args.device} threads={torch.get_num_threads()} precision={args.precision} "
        f"dim={args.dim} layers={args.n_layers} heads={args.n_heads} vocab={args.vocab_size} "
        f"train: batch {args.batch_size} x {args.seq_len}; decode: batch {args.decode_batch}, "
        f"prompt {args.prompt_len} + {args.new_tokens} new tokens"
    )
    header = (
        f"{'preset':<8}{'params':>10}{'train tok/s':>14}{'decode+cache':>15}"
        f"{'decode, no cache':>19}"
    )
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        overrides = dict(
            vocab_size=args.vocab_size,
            dim=args.dim,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            max_seq_len=max(args.seq_len, args.prompt_len + args.new_tokens),
        )
        if preset == "llama" and args.n_kv_heads:
            overrides["n_kv_heads"] = args.n_kv_heads
        model = Decoder(ModelConfig.preset(preset, **overrides)).to(args.device)
        train = train_tokens_per_s(model.train(), args)
        model.eval()
        cached = decode_tokens_per_s(model, args, use_cache=True)
        uncached = decode_tokens_per_s(model, args, use_cache=False)
        print(
            f"{preset:<8}{model.num_parameters():>10,}{train:>14,.0f}{cached:>15,.0f}{uncached:>19,.0f}"
        )


if __name__ == "__main__":
    main()
