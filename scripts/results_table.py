#!/usr/bin/env python
"""Print the Markdown table of measured results in docs/results/ (all, or the files given).

python scripts/results_table.py                                 # every file
python scripts/results_table.py docs/results/bench_train.json   # one
python scripts/results_table.py --history docs/results/main_job.json   # and earlier sets
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mia.results import RESULTS_DIR, markdown


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", type=Path, nargs="*", help="result files (default: all)")
    p.add_argument("--history", action="store_true", help="also the earlier sets in each file")
    args = p.parse_args()
    for path in args.files or sorted(RESULTS_DIR.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        sets = [result, *result.get("history", [])] if args.history else [result]
        for i, one in enumerate(sets):
            title = one.get("title", path.stem) + (" (earlier set)" if i else "")
            print(f"## {title}\n\n{markdown(one)}\n")


if __name__ == "__main__":
    main()
