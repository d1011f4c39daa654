#!/usr/bin/env python
"""Run a command and keep its end-of-run block: from "Run folder:" to the end of "Next:".

`mia-train` ends by naming its run folder and checkpoints and printing the commands that use
them. This script runs a command (or reads the output of one already run, --from-log),
finds that block (the last one, if the output holds several) and prints it indented for
the README, or writes it to a results file under docs/results/ with the machine, date and
command, as the benchmark scripts do.

    python scripts/sample_outputs.py --print -- mia-train
    python scripts/sample_outputs.py --results docs/results/sample_fast.json -- mia-train debug=fast
    mia-train 2>&1 | tee train.log; python scripts/sample_outputs.py --print --from-log train.log

The command runs from the current folder, so run it from the repository root for the
paths a user sees (outputs/... is git-ignored). Exit status: the command's own when it
failed, 1 when its output has no such block, else 0.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from mia.results import make_result, write_result

START = "Run folder:"
NEXT = "Next:"


def end_of_run_block(output: str) -> list[str]:
    """The lines of the last end-of-run block in `output`: "Run folder:" through the
    indented commands under "Next:"; empty when there is none."""
    lines = output.replace("\r", "\n").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(START)]
    if not starts:
        return []
    block: list[str] = []
    in_next = False
    for line in lines[starts[-1] :]:
        if in_next and not line.startswith("  "):
            break
        block.append(line.rstrip())
        in_next = in_next or line.strip() == NEXT
    return block if in_next else []


def indented(block: list[str]) -> str:
    """The block as a Markdown code block indented by four spaces (blank lines kept)."""
    return "\n".join(f"    {line}" if line else "" for line in block)


def run(command: list[str]) -> tuple[int, str]:
    """Run `command`, echoing its output, and return its exit status and output."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    chunks = []
    for line in process.stdout:
        sys.stderr.write(line)
        chunks.append(line)
    return process.wait(), "".join(chunks)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--print", action="store_true", help="print the block indented for Markdown")
    p.add_argument(
        "--results",
        default="",
        help="JSON file under docs/results/ to write the block to (its earlier set moves "
        "into the file's history); none by default",
    )
    p.add_argument(
        "--from-log",
        type=Path,
        help="read this saved output of the command instead of running it (then give the "
        "command after -- only to record it)",
    )
    p.add_argument("command", nargs="*", help="the command and its arguments, after --")
    args = p.parse_args(argv)
    if not args.command and args.from_log is None:
        p.error("give a command after --, or --from-log FILE")
    if not (args.print or args.results):
        args.print = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_log is not None:
        try:
            status, output = 0, args.from_log.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            print(f"error: --from-log {args.from_log}: {err.strerror}", file=sys.stderr)
            return 2
    else:
        try:
            status, output = run(args.command)
        except OSError as err:
            print(f"error: {args.command[0]}: {err.strerror}", file=sys.stderr)
            return 2
    if status != 0:
        print(f"error: the command exited with status {status}", file=sys.stderr)
        return status
    block = end_of_run_block(output)
    if not block:
        print(
            f"error: the output has no end-of-run block ({START!r} ... {NEXT!r})", file=sys.stderr
        )
        return 1
    if args.print:
        print(indented(block))
    if args.results:
        command = shlex.join(args.command) if args.command else f"(read from {args.from_log})"
        result = make_result(
            Path(args.results).stem,
            f"End-of-run output of {command}",
            ["line"],
            [[line] for line in block],
            notes="The lines the command printed last, from 'Run folder:' to the end of 'Next:'.",
            command=command,
        )
        print(f"written to {write_result(result, Path(args.results))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
