#!/usr/bin/env python
"""Measure the decoder on CPU (or GPU): training tokens/s and decoding tokens/s.

For each preset, at one size: training throughput (forward + backward + AdamW step, in
float32 or bf16 autocast) and greedy decoding throughput with and without the KV cache.

    python scripts/bench_model.py --dim 128 --n-layers 4 --n-heads 4 --seq-len 256

`--profile N` also runs N more training steps of each preset under torch.profiler and prints
the operators that took the most time, by input shape, and the step's time by kind of
work (matrix multiplies, attention, the optimizer, the rest: elementwise and reductions).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from mia.model import Decoder, ModelConfig
from mia.results import add_results_argument, make_result, save


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
    p.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N training steps per preset"
    )
    p.add_argument("--top", type=int, default=15, help="operators to list with --profile")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_results_argument(p, "bench_model")
    return p.parse_args()


def training_step(model: Decoder, args: argparse.Namespace) -> Callable[[], None]:
    """One forward + backward + fused AdamW step on a fixed random batch, as a closure."""
    device = torch.device(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cpu" or None)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if args.precision == "bf16"
        else nullcontext()
    )
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len + 1), device=device)
    x, y = batch[:, :-1], batch[:, 1:]

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def train_tokens_per_s(step: Callable[[], None], args: argparse.Namespace) -> float:
    times = []
    for i in range(args.steps + 3):
        start = time.perf_counter()
        step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return args.batch_size * args.seq_len / statistics.median(times)


def kind_of_work(op: str) -> str:
    if op in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"):
        return "matrix multiplies"
    if "attention" in op:
        return "attention"
    if "adam" in op or op.startswith("Optimizer."):
        return "optimizer"
    return "the rest"


def print_profile(step: Callable[[], None], args: argparse.Namespace) -> None:
    """Self time per operator over `args.profile` steps, the largest first, and by kind."""
    from torch.profiler import profile

    with profile(record_shapes=True) as prof:
        for _ in range(args.profile):
            step()
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: -e.self_cpu_time_total)
    print(f"  {'operator':<44}{'calls/step':>11}{'us/call':>10}{'share':>8}  input shapes")
    for e in events[: args.top]:
        print(
            f"  {e.key[:43]:<44}{e.count / args.profile:>11.1f}"
            f"{e.self_cpu_time_total / e.count:>10.1f}{e.self_cpu_time_total / total:>8.1%}"
            f"  {e.input_shapes}"
        )
    kinds: dict[str, float] = {}
    for e in events:
        kind = kind_of_work(e.key)
        kinds[kind] = kinds.get(kind, 0.0) + e.self_cpu_time_total
    print(
        f"  per step {total / args.profile / 1e3:.1f} ms (profiled): "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    )


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
    table = []
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
        step = training_step(model.train(), args)
        train = train_tokens_per_s(step, args)
        model.eval()
        cached = decode_tokens_per_s(model, args, use_cache=True)
        uncached = decode_tokens_per_s(model, args, use_cache=False)
        print(
            f"{preset:<8}{model.num_parameters():>10,}{train:>14,.0f}{cached:>15,.0f}{uncached:>19,.0f}"
        )
        table.append([preset, model.num_parameters(), round(train), round(cached), round(uncached)])
        if args.profile:
            model.train()
            print_profile(step, args)
    columns = ["preset", "parameters", "train tokens/s", "decode tokens/s, KV cache", "no cache"]
    notes = (
        f"{args.device}, {torch.get_num_threads()} threads, precision {args.precision}; training "
        f"is forward + backward + fused AdamW on batch {args.batch_size} x {args.seq_len}; "
        f"decoding is greedy, batch {args.decode_batch}, {args.prompt_len} prompt + "
        f"{args.new_tokens} new tokens."
    )
    save(make_result("bench_model", "Throughput of the presets", columns, table, notes),
         args.results)  # fmt: skip


if __name__ == "__main__":
    main()
