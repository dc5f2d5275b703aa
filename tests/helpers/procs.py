"""Our own server as a separate process, the way tests and benchmarks start it."""

from __future__ import annotations

import sys


def headless_command(port: int, *extra: str, host: str = "127.0.0.1") -> list[str]:
    """``python -m bandsync_desktop --headless`` on ``host:port`` with ``extra`` options."""
    return [
        sys.executable,
        "-m",
        "bandsync_desktop",
        "--headless",
        "--host",
        host,
        "--port",
        str(port),
        *extra,
    ]
