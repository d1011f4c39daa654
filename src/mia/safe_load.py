"""Reading torch pickles (checkpoints, pytorch_model.bin) without running code stored in them."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from mia.errors import UserError


def load_weights_only(path: Path, label: str) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU. A file that holds code, or that is
    no torch file at all, ends in a one-line `UserError` that begins with `label`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the forbidden object on a line of its own ("... GLOBAL posix.system ...").
        lines = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if not lines:
            raise UserError(f"{label}: not a torch weights file") from None
        raise UserError(
            f"{label}: refused to load, it holds code, not just weights ({lines[0].rstrip('.')})"
        ) from None
    except Exception as err:
        raise UserError(f"{label}: not a readable torch file ({type(err).__name__})") from None
