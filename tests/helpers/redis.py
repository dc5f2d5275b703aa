"""A real ``redis-server`` for tests: own process, free loopback port, no persistence.

``RedisServer`` can be killed and started again on the same port (outage tests); the
``redis_server`` fixture starts one per test and stops it after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from bandsync_desktop.server.net import free_port

from .procs import headless_command


def wait_for_port(port: int, timeout: float = 5.0, *, up: bool = True) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (``up``) or refuses them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.01)
    raise TimeoutError(f"port {port} did not {'open' if up else 'close'} in {timeout} s")


class RedisServer:
    """One ``redis-server`` process: ``--save '' --appendonly no --bind 127.0.0.1``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run scripts/bootstrap dev")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """Pull the plug: SIGKILL, every key is gone with it (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def cli(self, *args: str) -> str:
        """Run ``redis-cli`` against this server and return its output."""
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return result.stdout.strip()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free port, stopped after the test."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


class ServerProcess:
    """``python -m bandsync_desktop --headless`` on a fixed port with a Redis URL."""

    def __init__(self, port: int, redis_url: str, *extra: str) -> None:
        self.port = port
        self.redis_url = redis_url
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self.started_at = 0.0
        self.stderr = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Launch (not waiting: ``started_at`` is the instant of the launch)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("BANDSYNC_REDIS_URL", None)
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [
                *headless_command(self.port, "--redis-url", self.redis_url),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        return self

    async def ready(self, timeout: float = 15.0) -> None:
        """Wait until the port accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.finish()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.005)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def signal(self, sig: int) -> str:
        """Send ``sig`` and wait for the process to end; returns its stderr."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        return self.finish()

    def finish(self) -> str:
        if self.process is None:
            return self.stderr
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        self.stderr += err or ""
        self.process = None
        return self.stderr
