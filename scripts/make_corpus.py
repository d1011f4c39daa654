"""Write a large text corpus made from the plays, for measuring data preparation.

The plays (as `data=shakespeare` reads them) are cut into blocks of whole lines, and the
blocks are written in a fresh random order, pass after pass, until the file reaches the
size asked for: the text does not merely repeat, but every line is Shakespeare's.

    python scripts/make_corpus.py --size 100M --out /tmp/corpus-100M.txt
    python scripts/make_corpus.py --size 1G --out /tmp/corpus-1G.txt --block-lines 40
    python scripts/make_corpus.py --size 50M --out /tmp/docs.jsonl --jsonl   # documents
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from mia.data import plays

_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}


def parse_size(text: str) -> int:
    """``100M`` -> 100,000,000 bytes (K, M, G are powers of 10)."""
    text = text.strip().upper()
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def blocks(block_lines: int) -> list[str]:
    """The plays as blocks of `block_lines` whole lines."""
    lines = plays.read_plays(plays.play_files(), False).splitlines(keepends=True)
    return ["".join(lines[i : i + block_lines]) for i in range(0, len(lines), block_lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", required=True, help="bytes to write: 100M, 300M, 1G, ...")
    parser.add_argument("--out", required=True, type=Path, help="the file to write")
    parser.add_argument("--block-lines", type=int, default=20, help="lines per block (20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the block order (0)")
    parser.add_argument(
        "--jsonl", action="store_true", help="write JSON Lines, one block per document"
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    pieces = blocks(args.block_lines)
    rng = random.Random(args.seed)
    written = 0
    with args.out.open("w", encoding="utf-8") as out:
        while written < size:
            rng.shuffle(pieces)
            for piece in pieces:
                if args.jsonl:
                    piece = json.dumps({"text": piece}, ensure_ascii=False) + "\n"
                out.write(piece)
                written += len(piece.encode())
                if written >= size:
                    break
    print(f"wrote {written:,} bytes to {args.out}")


if __name__ == "__main__":
    main()
