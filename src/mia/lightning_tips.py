"""Lightning's advertisements ("💡 Tip: ... try installing litlogger"), left out of every
command's output.

Lightning logs them at INFO through its ``rank_zero`` logger, which reaches both its own
stderr handler and Hydra's stdout handler and log file. A filter on that logger drops the
record where it is made, so no handler sees it; every other Lightning message stays.
"""

from __future__ import annotations

import logging

# The logger Lightning's rank_zero_info writes through.
LIGHTNING_RANK_ZERO = "lightning.pytorch.utilities.rank_zero"
TIP_PREFIX = "💡 Tip:"


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


_FILTER = _NoTips()


def silence_lightning_tips() -> None:
    """Drop Lightning's tips from its log (idempotent)."""
    logger = logging.getLogger(LIGHTNING_RANK_ZERO)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
