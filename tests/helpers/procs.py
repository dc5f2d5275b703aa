"""Our own server as a separate process, the way tests and benchmarks start it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bandsync_desktop.server.net import wait_for_health

ROOT = Path(__file__).resolve().parent.parent.parent


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


def start_headless(
    port: int,
    *extra: str,
    env: Mapping[str, str] | None = None,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start ``headless_command(port, *extra)`` with ``env`` added to this environment and
    wait until it answers ``/health`` (killed, and the error raised, if it does not)."""
    proc = subprocess.Popen(
        headless_command(port, *extra),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", timeout=20, process=proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc
