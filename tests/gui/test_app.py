"""The console's entry point: screenshot mode renders the window offscreen and exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage


def test_screenshot_mode_with_demo_members(tmp_path: Path, qapp: object) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandsync_desktop",
            "--screenshot",
            str(out),
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--profile-dir",
            str(tmp_path / "profile"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert not image.isNull() and image.width() >= 1400 and image.height() >= 900
    assert "Task was destroyed but it is pending" not in result.stderr
    assert " ERROR " not in result.stderr and "Traceback" not in result.stderr
    # The demo set list went to the given profile, never to the user's own directories.
    assert list((tmp_path / "profile" / "data" / "sets").glob("*.json"))


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
