"""Headless mode as a real process: no Qt, serves /health, stops cleanly on signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(port: int, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                return json.load(r)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_importing_core_and_server_never_imports_qt():
    code = (
        "import sys\n"
        "import bandsync_desktop.server.app, bandsync_desktop.server.cli, "
        "bandsync_desktop.core.session\n"
        "import bandsync_desktop.__main__\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'qasync', 'shiboken')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_headless_serves_and_stops_cleanly(sig):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bandsync_desktop",
            "--headless",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        health = wait_for_health(port)
        assert health["status"] == "ok" and health["store"]["kind"] == "memory"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port}" in out
    assert "shutting down" in err and "server stopped" in err
    assert "Traceback" not in err


def test_headless_reports_a_taken_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bandsync_desktop",
                "--headless",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2
    assert "cannot listen" in proc.stderr
