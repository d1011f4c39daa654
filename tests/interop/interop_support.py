"""Helpers shared by the interop tests and their fixtures (conftest.py)."""

from __future__ import annotations

import random
from pathlib import Path

from mia.conf import compose

WORDS = str.split(
    "thou art the lord of all my love and duty sweet prince good night the rest is silence "
    "to be or not to be what light through yonder window breaks now is the winter of our "
    "discontent all the world a stage friends romans countrymen lend me your ears "
    "café naïve façade Ångström"
)
SPEAKERS = ["ROMEO:", "JULIET:", "HAMLET:", "KING:", "First Citizen:"]
CONTEXT = 128  # data.block_size: prompt + 100 new tokens fit


def play_corpus(lines: int, seed: int = 0) -> str:
    """About 60 kB of play-like text for 700 speeches, with indentation, digits and a few
    accents (so the tokenizer has pieces beyond ASCII)."""
    rng = random.Random(seed)
    out = []
    for act in range(lines):
        out.append(rng.choice(SPEAKERS))
        for _ in range(rng.randint(1, 3)):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))
            indent = "    " if rng.random() < 0.1 else ""
            out.append(indent + words.capitalize() + rng.choice([",", ".", "!", "?", ""]))
        if act % 50 == 0:
            out.append(f"ACT {act // 50 + 1}. Scene {rng.randint(1, 12)}.")
        out.append("")
    return "\n".join(out)


UNICODE_SAMPLES = [
    "",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
    "  leading and trailing spaces  ",
    "runs     of      spaces\tand\ttabs",
    "\n\nblank lines\n\n\n",
    "windows\r\nline ends\r\n",
    "accents: café naïve Ångström façade, combining e\u0301",
    "emoji: 😀🎭👑 and ZWJ 👩‍👩‍👧, flags 🇬🇧",
    "CJK: 日本語のテキスト, 中文, 한국어",
    "digits 1234567890 3.14159 2026-11-22",
    "symbols ~`|\\{}<>§± \u2581 (a literal meta space), \ufeff BOM, \x00 NUL, \u200b",
    "special strings: <s> </s> <unk> <0x41> <pad>",
    "spaces before punctuation , . ! ? and quotes : Is 't so ? We 're here , do n't go .",
]


def random_unicode(rng: random.Random, length: int) -> str:
    """Mostly pieces of text a tokenizer meets, some characters from anywhere in Unicode."""
    pools = [
        "the lord ",
        "   ",
        "\n",
        "\t",
        "0123456789",
        "éàüñçÅ",
        "😀🎭👑\u200d",
        "日本語中文한국어",
        "\u2581",
        "\r\ufeff\u0301",
    ]
    out = []
    for _ in range(length):
        if rng.random() < 0.1:
            code = rng.randrange(1, 0x30000)
            out.append("x" if 0xD800 <= code < 0xE000 else chr(code))  # no lone surrogates
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(out)


def train_overrides(corpus: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        "debug=fast",
        "data=text",
        f"data.files=[{corpus}]",
        f"data.block_size={CONTEXT}",
        f"paths.cache_dir={cache}",
        f"paths.output_dir={out}",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "callbacks.text_samples.every_n_steps=0",
        "trainer.max_steps=150",
        "trainer.val_check_interval=50",
        *extra,
    ]


def export_to(ckpt: Path, out_dir: Path, *extra: str) -> Path:
    from mia.cli.export import export

    return export(compose("export", [f"ckpt_path={ckpt}", f"out_dir={out_dir}", *extra]))
