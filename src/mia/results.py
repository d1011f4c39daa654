"""Measured figures as files: ``docs/results/<name>.json``, stamped with the machine and date.

A benchmark script builds one result (its columns, rows, the command that made it and the
machine it ran on) and writes it with `write_result`; the set it replaces moves into the
file's ``history``, so nothing measured is lost. `markdown` turns a result into the table the
docs show (``python scripts/results_table.py docs/results/<name>.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "results"


def processor_name() -> str:
    """The processor's model name as the OS reports it (Linux's /proc/cpuinfo), else Python's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Processor, usable cores, torch version and OS of this machine."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "processor": processor_name(),
        "cores": cores,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "os": platform.platform(terse=True),
    }


def command_line() -> str:
    """How this script was run, as a user would type it from the repository root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(RESULTS_DIR.parents[1])
    return shlex.join(["python", str(script), *sys.argv[1:]])


def make_result(
    name: str,
    title: str,
    columns: list[str],
    rows: list[list[Any]],
    notes: str = "",
    command: str | None = None,
) -> dict[str, Any]:
    """One measured set: ``rows`` line up with ``columns``; ``notes`` says what the rows are."""
    return {
        "name": name,
        "title": title,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "command": command or command_line(),
        "columns": columns,
        "rows": rows,
        "notes": notes,
    }


def write_result(result: dict[str, Any], path: Path) -> Path:
    """Write ``result`` to ``path``; a set already there moves into the file's history."""
    history: list[dict[str, Any]] = []
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        history = previous.pop("history", [])
        history.insert(0, previous)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "history": history}, indent=1) + "\n", encoding="utf-8")
    return path


def machine_line(result: dict[str, Any]) -> str:
    """The machine and date of a result, in one line."""
    m = result["machine"]
    where = f"{m['processor']}, {m['cores']} cores"
    if m.get("gpu"):
        where += f", {m['gpu']}"
    return f"{where}, torch {m['torch']}, {result['date']}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown(result: dict[str, Any]) -> str:
    """The result's table, then its machine and the command that made it."""
    lines = [
        "| " + " | ".join(result["columns"]) + " |",
        "|" + "|".join("---" for _ in result["columns"]) + "|",
    ]
    width = len(result["columns"])
    lines += [
        "| " + " | ".join(_cell(v) for v in [*row, *[None] * (width - len(row))]) + " |"
        for row in result["rows"]
    ]
    lines += ["", f"Machine: {machine_line(result)}.", "", f"    {result['command']}"]
    if result.get("notes"):
        lines += ["", result["notes"]]
    return "\n".join(lines)


def add_results_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--results PATH`` (default ``docs/results/<name>.json``; ``--results ''`` writes none)."""
    parser.add_argument(
        "--results",
        default=str(RESULTS_DIR / f"{name}.json"),
        help="JSON file the measured set is written to ('' for none); the set it replaces "
        "moves into the file's history",
    )


def save(result: dict[str, Any], results: str) -> None:
    """Write ``result`` where ``--results`` says and print its Markdown table."""
    print("\n" + markdown(result))
    if results:
        print(f"\nwritten to {write_result(result, Path(results))}")
