"""Download one file into the cache, with a progress bar and a checksum."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from mia.errors import UserError


def download(url: str, target: Path, sha256: str, hint: str) -> None:
    """Fetch `url` to `target`, which appears only complete and with the expected digest.

    The bytes go to a temporary file beside `target` and are renamed into place once the
    sha256 matches, so an interrupted or concurrent download never leaves a bad file.
    Failures are `UserError`s ending with `hint` (where to put the file by hand).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with Progress(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
            ) as progress:
                task = progress.add_task(f"downloading {target.name}", total=total)
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(task, advance=len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as err:
        partial.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise UserError(f"could not download {url} ({reason}); {hint}") from None
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"the file downloaded from {url} has sha256 {digest.hexdigest()}, expected {sha256}; "
            f"{hint}"
        )
    os.replace(partial, target)
