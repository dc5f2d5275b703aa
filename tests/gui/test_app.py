"""The console's entry point: screenshot mode renders the window offscreen and exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from tests.helpers.redis import free_port, wait_for_port

from ..helpers.clients import Recorder
from .conftest import Run


def run_console(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m bandsync_desktop *args`` offscreen, to the end; its result."""
    return subprocess.run(
        [sys.executable, "-m", "bandsync_desktop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        check=False,
    )


def screenshot(out: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Screenshot mode on loopback with a profile of the test's own."""
    return run_console(
        "--screenshot",
        str(out),
        *extra,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--profile-dir",
        str(profile),
    )


def test_screenshot_mode_with_demo_members(tmp_path: Path, qapp: object) -> None:
    out = tmp_path / "shot.png"
    result = screenshot(out, tmp_path / "profile", "--demo")
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    # The size a real start gives the window on the default 1920x1080 screen.
    assert not image.isNull() and (image.width(), image.height()) == (1600, 980)
    assert "Task was destroyed but it is pending" not in result.stderr
    assert " ERROR " not in result.stderr and "Traceback" not in result.stderr
    # The demo set list went to the given profile, never to the user's own directories.
    assert list((tmp_path / "profile" / "data" / "sets").glob("*.json"))


def test_screenshot_on_a_laptop_screen_is_what_a_laptop_start_shows(tmp_path: Path) -> None:
    """--screen: the window is sized as a real start sizes it there (a 1366x768 laptop's
    start fills its screen, it never opens bigger than the screen)."""
    out = tmp_path / "laptop.png"
    result = screenshot(out, tmp_path / "profile", "--screen", "1366x768")
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1366, 768)
    bad = run_console("--screenshot", str(out), "--screen", "big", timeout=30)
    assert bad.returncode == 2 and "not a screen size such as 1366x768" in bad.stderr


def test_no_display_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    result = subprocess.run(
        [sys.executable, "-m", "bandsync_desktop", "--profile-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "no display" in result.stderr and "--headless" in result.stderr


def test_console_process_stops_cleanly_on_sigterm(tmp_path: Path, run: Run, qtbot: QtBot) -> None:
    """The real main loop: serve, a follower joins, SIGTERM closes the window, the server
    tells the follower and stops, the process exits 0."""
    port = free_port()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bandsync_desktop",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--profile-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for_port(port, timeout=20)
        ana = Recorder(f"http://127.0.0.1:{port}", "Ana", reconnection=False)
        run(ana.connect())
        assert run(ana.call("join_session", {"sessionId": "band", "displayName": "Ana"}))["ok"]
        process.send_signal(signal.SIGTERM)
        qtbot.waitUntil(lambda: process.poll() is not None, timeout=20000)  # loop keeps running
        qtbot.waitUntil(lambda: not ana.sio.connected, timeout=5000)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert ana.payloads("server_shutdown") and not ana.sio.connected
    assert "server stopped" in stderr
    assert "Traceback" not in stderr and "Task was destroyed" not in stderr
    assert (tmp_path / "config" / "settings.json").exists()  # geometry saved on the way out
