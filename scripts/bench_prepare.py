"""Measure `mia-prepare` on generated corpora: wall time, MB/s and peak memory.

For each size, makes a corpus from the plays with `scripts/make_corpus.py` (blocks of lines
in shuffled order) unless it exists, prepares it into a fresh cache under
``/usr/bin/time -v``, and prints a Markdown table. Peak memory is given two ways: the
largest single process (what ``time -v`` reports) and the largest sum over mia-prepare and
its encoding workers (sampled from /proc every 0.1 s).

    python scripts/bench_prepare.py --sizes 100M 300M 1G --dir /tmp/mia-bench
    python scripts/bench_prepare.py --sizes 100M --workers 1 --dir /tmp/mia-bench
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mia.results import add_results_argument, make_result, save

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
from make_corpus import parse_size  # noqa: E402


def tree_rss_kb(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in stat.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        p = int(stat.parent.name)
        children.setdefault(int(fields["PPid"]), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def run(corpus: Path, cache: Path, workers: int | None) -> dict[str, float]:
    shutil.rmtree(cache, ignore_errors=True)
    command = [
        "/usr/bin/time",
        "-v",
        str(Path(sys.executable).parent / "mia-prepare"),
        "data=text",
        f"data.files=[{corpus}]",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={cache}/run",
    ]
    if workers:
        command.append(f"data.prepare_workers={workers}")
    print("$", " ".join(command[2:]), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sum = 0
    while process.poll() is None:
        peak_sum = max(peak_sum, tree_rss_kb(process.pid))
        time.sleep(0.1)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"mia-prepare failed:\n{out}\n{err}")

    def field(name: str) -> str:
        return re.search(rf"{name}: (.+)", err)[1]

    cpu = float(field("User time \\(seconds\\)")) + float(field("System time \\(seconds\\)"))
    return {
        "wall": wall,
        "mb": corpus.stat().st_size / 1e6,
        "peak_process_mb": int(field("Maximum resident set size \\(kbytes\\)")) / 1024,
        "peak_sum_mb": peak_sum / 1024,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["100M", "300M", "1G"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mia-bench"))
    parser.add_argument("--workers", type=int, default=None, help="data.prepare_workers")
    add_results_argument(parser, "bench_prepare")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        corpus = args.dir / f"corpus-{size}.txt"
        if not corpus.is_file() or corpus.stat().st_size < parse_size(size):
            subprocess.run(
                [sys.executable, str(SCRIPTS / "make_corpus.py"), "--size", size, "--out", corpus],
                check=True,
            )
        figures = run(corpus, args.dir / "cache", args.workers)
        rows.append((size, figures))
        print(figures, flush=True)
    columns = [
        "corpus",
        "wall s",
        "MB/s",
        "peak RSS MB, largest process",
        "peak RSS MB, all processes",
        "CPU s",
    ]
    table = [
        [
            f"{size} ({f['mb']:,.0f} MB)",
            round(f["wall"], 1),
            round(f["mb"] / f["wall"], 1),
            round(f["peak_process_mb"]),
            round(f["peak_sum_mb"]),
            round(f["cpu"], 1),
        ]
        for size, f in rows
    ]
    notes = (
        f"mia-prepare data=text on each corpus; data.prepare_workers={args.workers or 'default'}."
    )
    result = make_result("bench_prepare", "Preparing corpora past memory", columns, table, notes)
    save(result, args.results)


if __name__ == "__main__":
    main()
