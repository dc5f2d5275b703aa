"""Headless mode as a real process: no Qt, serves /health, stops cleanly on signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from bandsync_desktop.server.net import free_port, wait_for_health

from ..helpers.procs import headless_command


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
        headless_command(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}", process=proc)
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
