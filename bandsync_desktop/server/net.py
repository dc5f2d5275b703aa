"""Ports and readiness: the few network facts the console, tests, benchmarks and the
packaging smoke test all need (standard library only)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """True if ``host:port`` can be bound now (checked by binding, then releasing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError:
            return False
    return True


def next_free_port(host: str, port: int, tries: int = 50) -> int | None:
    """The first free port after ``port`` (at most ``tries`` looked at)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if port_is_free(host, candidate):
            return candidate
    return None


def wait_for_health(
    url: str, timeout: float = 15.0, process: subprocess.Popen[Any] | None = None
) -> dict[str, Any]:
    """Poll ``url/health`` until a server answers it; returns the JSON body.

    Raises:
        RuntimeError: ``process`` exited first, or nothing answered within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                body: dict[str, Any] = json.loads(answer.read())
                return body
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"no answer from {url}/health within {timeout:g} s: {last}")
