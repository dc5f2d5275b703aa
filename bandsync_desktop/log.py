"""Named loggers, one per subsystem. Library code never prints."""

from __future__ import annotations

import logging

CORE = logging.getLogger("bandsync.core")
SERVER = logging.getLogger("bandsync.server")
STORAGE = logging.getLogger("bandsync.storage")
GUI = logging.getLogger("bandsync.gui")


def configure(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps; called once by the composition roots."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
