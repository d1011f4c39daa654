"""``mia-prepare``: tokenize a corpus into the cache and show its figures.

    mia-prepare                                   # the complete plays, SentencePiece BPE
    mia-prepare data=tiny_shakespeare tokenizer=char
    mia-prepare data=text 'data.files=[my/*.txt]' tokenizer.vocab_size=4096
    mia-prepare force=true                        # prepare again over the cached folder

Training prepares on first use too; this command shows the figures, or fills the cache
before a sweep.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mia.cli.command import hydra_command
from mia.data.prepare import SPLITS, prepare_dataset
from mia.errors import Interrupted
from mia.settings import check_settings


def prepare(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Prepare ``cfg.data`` with ``cfg.tokenizer`` (or reuse the cache), print a table of
    the splits and return their figures: characters, bytes, tokens, chars_per_token."""
    check_settings(cfg, "prepare")  # issue 9: every setting checked before preparing
    try:
        prepared = prepare_dataset(
            cfg.data, cfg.tokenizer, cfg.paths.cache_dir, force=bool(cfg.get("force", False))
        )
    except KeyboardInterrupt:
        raise Interrupted("interrupted; nothing was written to the cache") from None
    figures = {split: dict(prepared.meta["splits"][split]) for split in SPLITS}

    how = "reused" if prepared.reused else f"prepared in {prepared.meta['seconds']:.1f} s"
    table = Table(
        title=f"{prepared.meta['source']['corpus']}, vocabulary {prepared.meta['vocab_size']}"
    )
    for column in ("split", "characters", "tokens", "chars/token"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in figures.items():
        ratio = "-" if row["chars_per_token"] is None else f"{row['chars_per_token']:.3f}"
        table.add_row(split, f"{row['characters']:,}", f"{row['tokens']:,}", ratio)
    console = Console()
    console.print(table)
    console.print(f"{how}: {prepared.directory}", soft_wrap=True)
    return figures


@hydra_command("prepare")
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
