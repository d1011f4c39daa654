"""Deterministic play-shaped text for tests (a module, not a conftest, so that any test
folder can import it: several folders have a conftest.py of their own)."""

from __future__ import annotations

import random

_NAMES = ["HAMLET", "OPHELIA", "First Citizen", "KING EDWARD", "All"]
_WORDS = [
    *("the", "of", "and", "to", "my", "lord", "thou", "thee", "thy", "is", "not", "be"),
    *("what", "a", "good", "sir", "heaven", "love", "night", "death", "crown", "sword"),
    *("fair", "sweet", "noble", "speak", "hear", "come", "go", "say", "will", "king"),
]


def make_play_text(speeches: int, seed: int = 0) -> str:
    """Deterministic play-shaped text: ``NAME:`` lines, speeches, blank lines between."""
    rng = random.Random(seed)
    out = []
    for _ in range(speeches):
        lines = []
        for _ in range(rng.randint(1, 4)):
            words = rng.choices(_WORDS, k=rng.randint(3, 9))
            lines.append(" ".join(words).capitalize() + rng.choice([",", ".", "!", "?", ";", ""]))
        out.append(f"{rng.choice(_NAMES)}:\n" + "\n".join(lines) + "\n")
    return "\n".join(out)
