"""The load and soak benchmarks' server: ``load_server.py`` in its own process, measured
apart from the clients (psutil), started and stopped the same way by both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import psutil

HERE = Path(__file__).resolve().parent


class LoadServerProcess:
    """Mixin for a benchmark that owns one ``load_server.py`` process.

    The class using it sets ``host`` and starts with ``server`` and ``proc`` at ``None``.
    """

    host: str
    port: int
    server: subprocess.Popen[str] | None
    proc: psutil.Process | None

    def launch_server(self, extra_args: list[str]) -> None:
        """Start the server and wait for its ``READY <port>`` line."""
        command = [sys.executable, str(HERE / "load_server.py"), *extra_args]
        self.server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.server.stdout is not None
        line = self.server.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.proc = psutil.Process(self.server.pid)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()

    async def health(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{self.host}:{self.port}/health") as response,
        ):
            data: dict[str, Any] = await response.json()
            return data
