"""Server lifetime through the bridge: port in use, invalid Redis URL, settings, facts."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from bandsync_desktop.config import Settings
from bandsync_desktop.gui.bridge import Bridge, PortInUse, StartupError, format_position
from bandsync_desktop.gui.connection_panel import qr_pixmap
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.members_panel import short_device
from bandsync_desktop.gui.setlist import SetLibrary
from bandsync_desktop.gui.user_settings import Profile, UserSettings

from .conftest import Run


@pytest.fixture
def busy_port() -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder
    holder.close()


def test_port_in_use_names_the_next_free_port(run: Run, busy_port: socket.socket) -> None:
    port = busy_port.getsockname()[1]
    bridge = Bridge(Settings(host="127.0.0.1", port=port))
    with pytest.raises(PortInUse) as info:
        run(bridge.start())
    assert info.value.port == port
    assert info.value.suggestion is not None and info.value.suggestion > port
    assert f"port {port}" in str(info.value)
    assert not bridge.running


def test_window_falls_back_to_the_free_port_when_nobody_can_answer(
    run: Run, busy_port: socket.socket, tmp_path: Path, qtbot: QtBot
) -> None:
    port = busy_port.getsockname()[1]
    bridge = Bridge(Settings(host="127.0.0.1", port=port))
    window = MainWindow(
        bridge, UserSettings(tmp_path / "s.json"), SetLibrary(tmp_path), interactive=False
    )
    try:
        assert run(window.start_server())
        assert bridge.runner is not None and bridge.runner.port > port
        status = bridge.status()
        assert status.running and status.urls[0].endswith(f":{bridge.runner.port}/s/band")
        assert status.leader_key and status.leader_name == "Console"
        assert status.store == "in memory"
    finally:
        run(bridge.stop())
        window.close()
        window.deleteLater()


@pytest.mark.expect_log("Cannot start the server: unsupported store URL")
def test_invalid_redis_url_is_a_fatal_error_and_nothing_starts(
    run: Run, tmp_path: Path, qtbot: QtBot
) -> None:
    bridge = Bridge(Settings(host="127.0.0.1", port=0, redis_url="http://nope"))
    with pytest.raises(StartupError, match="unsupported store URL"):
        run(bridge.start())
    window = MainWindow(
        bridge, UserSettings(tmp_path / "s.json"), SetLibrary(tmp_path), interactive=False
    )
    try:
        assert run(window.start_server()) is False
        assert not bridge.running and bridge.state == "failed"
    finally:
        window.close()
        window.deleteLater()


def test_settings_and_geometry_are_saved_per_user(run: Run, tmp_path: Path, qtbot: QtBot) -> None:
    profile = Profile.under(tmp_path)
    user = UserSettings(profile.settings_file)
    bridge = Bridge(Settings(host="127.0.0.1", port=0))
    window = MainWindow(bridge, user, SetLibrary(profile.sets_dir), interactive=False)
    window.apply_settings(
        {
            "host": "127.0.0.1",
            "port": 4123,
            "redis_url": None,
            "default_tempo": 90.0,
            "default_beats_per_bar": 3,
            "default_beat_unit": 4,
        }
    )
    window.resize(1500, 900)
    window.close()
    window.deleteLater()
    saved = UserSettings(profile.settings_file).load()
    assert saved.get("port") == 4123 and saved.get("default_tempo") == 90.0
    assert isinstance(saved.get("window_geometry"), str)
    assert bridge.settings.port == 4123 and bridge.settings.default_beats_per_bar == 3
    # The server reads the same file: a new session starts at the saved defaults.
    from bandsync_desktop import config

    settings = config.load({"port": 0, "host": "127.0.0.1"}, settings_file=profile.settings_file)
    assert (settings.default_tempo, settings.default_beats_per_bar) == (90.0, 3)
    bridge2 = Bridge(settings)
    run(bridge2.start())
    try:
        session = bridge2.session
        assert session is not None and session.timeline.latest.tempo_bpm == 90.0
    finally:
        run(bridge2.stop())


def test_qr_code_and_small_formatters(qapp: object) -> None:
    pixmap = qr_pixmap("http://192.168.1.20:3001/s/band")
    assert not pixmap.isNull() and pixmap.width() >= 150
    assert format_position(83_450.0) == "01:23.4"
    assert (
        short_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1") == "iPhone · Safari"
    )
    assert short_device("Python/3.11 aiohttp/3.14") == "Python/3.11"
    assert short_device("") == "—"


def test_a_double_start_starts_one_server(run: Run) -> None:
    bridge = Bridge(Settings(host="127.0.0.1", port=0))

    async def start_twice() -> None:
        await asyncio.gather(bridge.start(), bridge.start())

    try:
        run(start_twice())
        assert bridge.running and bridge.state.startswith("running on port")
    finally:
        run(bridge.stop())
    assert not bridge.running and bridge.state == "stopped"
