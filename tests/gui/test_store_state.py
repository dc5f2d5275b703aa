"""The connection panel tells where sessions live: Redis, or Redis unreachable (from memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from bandsync_desktop.config import Settings
from bandsync_desktop.gui.bridge import Bridge
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetLibrary
from bandsync_desktop.gui.user_settings import UserSettings
from tests.helpers.redis import RedisServer, redis_server  # noqa: F401

from ..helpers.clients import Recorder
from .conftest import Run


@pytest.fixture
def redis_console(
    redis_server: RedisServer,  # noqa: F811  (first: it must outlive the console)
    run: Run,
    tmp_path: Path,
    qtbot: QtBot,
) -> Iterator[MainWindow]:
    bridge = Bridge(Settings(host="127.0.0.1", port=0, redis_url=redis_server.url))
    window = MainWindow(
        bridge, UserSettings(tmp_path / "s.json"), SetLibrary(tmp_path), interactive=False
    )
    assert run(window.start_server())
    try:
        yield window
    finally:
        run(bridge.stop())
        window.close()
        window.deleteLater()


@pytest.mark.redis
@pytest.mark.expect_log("Redis at .* is unreachable")
def test_redis_outage_shows_and_commands_still_reach_followers(
    redis_console: MainWindow,
    redis_server: RedisServer,  # noqa: F811
    run: Run,
    qtbot: QtBot,
) -> None:
    bridge = redis_console.bridge
    panel = redis_console.connection_panel
    assert bridge.status().store == "Redis"
    qtbot.waitUntil(lambda: panel.store_label.text() == "Redis", timeout=3000)
    runner = bridge.runner
    assert runner is not None
    ana = Recorder(f"http://127.0.0.1:{runner.port}", "Ana", reconnection=False)
    run(ana.connect())
    try:
        assert run(ana.call("join_session", {"sessionId": "band", "displayName": "Ana"}))["ok"]
        redis_server.kill()
        run(bridge.set_tempo(97.0))  # accepted: served from memory, written back later
        qtbot.waitUntil(lambda: bool(ana.payloads("tempo_changed")), timeout=5000)
        assert ana.payloads("tempo_changed")[-1]["tempoBpm"] == 97.0
        qtbot.waitUntil(
            lambda: panel.store_label.text() == "Redis unreachable — serving from memory",
            timeout=3000,
        )
        qtbot.waitUntil(
            lambda: any("is unreachable" in t for t in redis_console.log_panel.texts()),
            timeout=3000,
        )
        redis_server.start()  # back: the accepted change is written back, the panel says so
        qtbot.waitUntil(lambda: panel.store_label.text() == "Redis", timeout=10000)
    finally:
        run(ana.close())
