"""Hugging Face `datasets` as a source of documents (``data=hf``).

``data.name`` is what `datasets.load_dataset` takes: a Hub dataset
(``roneneldan/TinyStories``), a local folder of data files (split names come from the file
names, as `datasets` infers them: ``train.jsonl``, ``validation.jsonl``), or one local
JSON Lines / JSON / Parquet / text / CSV file (its records are the ``train`` split).

- Local files stream straight from disk (``streaming=True``): nothing is copied into the
  `datasets` cache, and the digest of the files keys the prepared data.
- A Hub dataset is downloaded and kept by `datasets`' own cache (Arrow files, memory-mapped,
  so never held in memory), and its fingerprint keys the prepared data. With
  ``data.streaming=true`` it is read over the network instead; the name, config and
  ``data.revision`` then key the prepared data, so pin ``data.revision`` if it may change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mia.data import sources
from mia.errors import UserError

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".txt": "text"}
_BUILDERS[".csv"] = "csv"
_BATCH = 1000


class HubSource:
    """A dataset `load_dataset` can open, its digest, and its splits as document streams."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        name = data.get("name")
        if not name:
            raise UserError(
                "data.name is not set; give a Hugging Face dataset (data.name=roneneldan/"
                "TinyStories) or a local folder or file of documents (data.name=/path/to/docs)"
            )
        self.name = str(name)
        self.config = data.get("config")
        self.revision = data.get("revision")
        self.text_field = str(data.get("text_field") or "text")
        self.streaming = bool(data.get("streaming", False))
        path = Path(self.name).expanduser()
        self.local = path if path.exists() else None
        self.files: list[Path] = []
        self._datasets: Any = None
        if self.local is not None:
            if self.local.is_dir():
                self.files = sorted(
                    p
                    for p in self.local.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.parts)
                )
            else:
                self.files = [self.local]
            if not self.files:
                raise UserError(f"data.name={self.name} is an empty folder; put data files in it")

    @property
    def origin(self) -> str:
        return str(self.local.absolute()) if self.local else f"huggingface.co/datasets/{self.name}"

    def digest(self, splits: list[str]) -> str:
        """What identifies the data: the local files' bytes, the cached dataset's fingerprint,
        or (streaming from the Hub) its name, config and revision."""
        if self.local is not None:
            return sources.file_digest(self.files)
        if self.streaming:
            ident = {"name": self.name, "config": self.config, "revision": self.revision}
            return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        loaded = self._load()
        prints = {split: self._split(loaded, split)._fingerprint for split in splits}
        return hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()

    def documents(self, split: str) -> Iterator[str]:
        """The text of each record of `split`, read in batches."""
        dataset = self._split(self._load(), split)
        try:
            columns = dataset.column_names  # a stream may read its first record for them
        except (StopIteration, RuntimeError):  # no records at all
            return
        if columns is not None and self.text_field not in columns:
            raise self._missing_field(columns)
        count = 0
        try:
            for batch in dataset.select_columns([self.text_field]).iter(batch_size=_BATCH):
                for value in batch[self.text_field]:
                    count += 1
                    if not isinstance(value, str):
                        raise UserError(
                            f"record {count} of split {split!r} of data.name={self.name}: field "
                            f"{self.text_field!r} is {type(value).__name__}, not text; set "
                            "data.text_field to a field that holds strings"
                        )
                    yield value
        except UserError:
            raise
        except Exception as err:  # datasets wraps parser errors in its own types
            if self.text_field in str(err) and "not" in str(err).lower():
                raise self._missing_field(None) from None
            self._pinpoint_bad_file()
            raise UserError(
                f"data.name={self.name}: split {split!r} cannot be read ({_first_line(err)}); "
                "fix the data files"
            ) from None

    def _load(self) -> Any:
        if self._datasets is not None:
            return self._datasets
        import datasets

        kwargs: dict[str, Any] = {"revision": self.revision}
        if self.local is not None and self.local.is_file():
            builder = _BUILDERS.get(sources.base_suffix(self.local))
            if builder is None:
                known = ", ".join(_BUILDERS)
                raise UserError(
                    f"data.name={self.name}: cannot tell the format from its suffix; "
                    f"use one of {known} (optionally .gz), or a folder"
                )
            args: tuple[Any, ...] = (builder,)
            kwargs["data_files"] = str(self.local)
            streaming = True
        else:
            args = (str(self.local) if self.local else self.name, self.config)
            streaming = self.local is not None or self.streaming
        # Retries and warnings would bury the one line we print if loading fails.
        datasets.logging.set_verbosity_error()
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
        try:
            self._datasets = datasets.load_dataset(*args, streaming=streaming, **kwargs)
        except StopIteration:  # `datasets` peeks at the first record of each file
            raise UserError(
                f"data.name={self.name} has no documents (its data files are empty); "
                "give it some text"
            ) from None
        except ConnectionError:
            raise UserError(
                f"data.name={self.name} cannot be loaded: the Hugging Face Hub is out of reach "
                "(offline?); load it once with network access (datasets keeps it in "
                "~/.cache/huggingface/datasets, and HF_DATASETS_OFFLINE=1 then reads that copy), "
                "or save its files to a folder and pass data.name=/path/to/folder"
            ) from None
        except (FileNotFoundError, ValueError) as err:
            raise UserError(
                f"data.name={self.name} cannot be loaded ({_first_line(err)}); give a dataset "
                "on the Hugging Face Hub, or a local folder or file of data files"
            ) from None
        return self._datasets

    def _split(self, loaded: Any, split: str) -> Any:
        if split not in loaded:
            have = ", ".join(loaded)
            raise UserError(
                f"data.name={self.name} has no split {split!r} (it has: {have}); set "
                "data.split, data.val_split and data.test_split to splits it has"
            )
        return loaded[split]

    def _missing_field(self, columns: list[str] | None) -> UserError:
        have = f" (it has: {', '.join(columns)})" if columns else ""
        return UserError(
            f"data.name={self.name} has no field {self.text_field!r}{have}; set data.text_field "
            "to the field that holds the text"
        )

    def _pinpoint_bad_file(self) -> None:
        """Read local JSON / Parquet files ourselves, to name the bad file and line."""
        for path in self.files:
            if sources.holds_documents(path):
                for _ in sources.documents(path, self.text_field, "data.name"):
                    pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
