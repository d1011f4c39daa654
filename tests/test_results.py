"""Results files: a new set replaces the latest and moves it into the history; tables."""

from __future__ import annotations

import json
from pathlib import Path

from mia.results import RESULTS_DIR, make_result, markdown, write_result


def test_a_new_set_moves_the_old_one_into_history(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    first = make_result("bench", "A bench", ["run", "s"], [["a", 1.5]], command="python x.py")
    second = make_result("bench", "A bench", ["run", "s"], [["a", 1.2]], command="python x.py")
    write_result(first, path)
    write_result(second, path)
    saved = json.loads(path.read_text())
    assert saved["rows"] == [["a", 1.2]]
    assert [h["rows"] for h in saved["history"]] == [[["a", 1.5]]]
    assert {"processor", "cores", "torch"} <= saved["machine"].keys()
    assert saved["date"]


def test_markdown_has_the_rows_the_machine_and_the_command() -> None:
    result = make_result("b", "B", ["run", "tokens/s"], [["x", 12345]], command="python y.py")
    text = markdown(result)
    assert "| run | tokens/s |" in text
    assert "| x | 12,345 |" in text
    assert "python y.py" in text and result["machine"]["processor"] in text


def test_every_results_file_is_stamped_and_its_rows_fit_its_columns() -> None:
    files = sorted(RESULTS_DIR.glob("*.json"))
    assert files
    for path in files:
        result = json.loads(path.read_text(encoding="utf-8"))
        for one in [result, *result["history"]]:
            assert one["date"] and one["command"], path
            assert {"processor", "cores", "torch"} <= one["machine"].keys(), path
            assert all(len(row) <= len(one["columns"]) for row in one["rows"]), path
            markdown(one)
