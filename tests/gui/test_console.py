"""The console window against a real server and real socket.io followers (offscreen)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.clock import ManualClock
from bandsync_desktop.core.session import CONSOLE
from bandsync_desktop.gui.main_window import MainWindow

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]


def tempos(client: Recorder) -> list[float]:
    return [p["tempoBpm"] for p in client.payloads("tempo_changed")]


def wait_tempo(qtbot: QtBot, client: Recorder, bpm: float) -> None:
    qtbot.waitUntil(lambda: bool(tempos(client)) and tempos(client)[-1] == bpm, timeout=5000)


def test_play_button_sends_play_and_ticks(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    qtbot.mouseClick(console.transport_panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("play")), timeout=5000)
    assert ana.payloads("play")[-1]["isPlaying"] is True

    # Play takes effect a short lead ahead; ticks after that instant say playing and move on.
    def playing_ticks() -> list[float]:
        return [t["positionMs"] for t in ana.payloads("scroll_tick") if t["isPlaying"]]

    qtbot.waitUntil(lambda: len(playing_ticks()) >= 3, timeout=5000)
    assert playing_ticks() == sorted(playing_ticks()) and playing_ticks()[-1] > 0
    # The window shows the session's state, from the same timeline.
    qtbot.waitUntil(lambda: console.transport_panel.play_button.isChecked(), timeout=2000)
    session = console.bridge.session
    assert session is not None and session.timeline.latest.playing
    # The metronome lights a beat while playing.
    qtbot.waitUntil(lambda: console.transport_panel.metronome.current is not None, timeout=3000)

    qtbot.mouseClick(console.transport_panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("pause")), timeout=5000)
    qtbot.mouseClick(console.transport_panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("seek")), timeout=5000)
    assert ana.payloads("seek")[-1]["positionMs"] == 0.0


def test_typed_tempo_reaches_followers(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    entry = console.tempo_panel.entry
    entry.setFocus()
    entry.selectAll()
    qtbot.keyClicks(entry, "133")
    qtbot.keyClick(entry, Qt.Key.Key_Return)
    wait_tempo(qtbot, ana, 133.0)
    qtbot.waitUntil(lambda: console.tempo_panel.value_label.text() == "133", timeout=2000)


def test_tap_tempo_reaches_followers(
    console: MainWindow, followers: Followers, qtbot: QtBot, tap_clock: ManualClock
) -> None:
    ana = followers("Ana")
    for _ in range(4):
        qtbot.mouseClick(console.tempo_panel.tap_button, Qt.MouseButton.LeftButton)
        tap_clock.advance(400.0)  # 400 ms apart: 150 BPM
    wait_tempo(qtbot, ana, 150.0)
    tap_clock.advance(5000.0)  # a pause starts a new count
    for _ in range(3):
        qtbot.mouseClick(console.tempo_panel.tap_button, Qt.MouseButton.LeftButton)
        tap_clock.advance(600.0)
    wait_tempo(qtbot, ana, 100.0)


def test_plus_minus_buttons_and_shift(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    panel = console.tempo_panel
    qtbot.mouseClick(panel.plus_button, Qt.MouseButton.LeftButton)
    wait_tempo(qtbot, ana, 121.0)
    qtbot.mouseClick(panel.minus_button, Qt.MouseButton.LeftButton)
    wait_tempo(qtbot, ana, 120.0)
    qtbot.mouseClick(
        panel.plus_button, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier
    )
    wait_tempo(qtbot, ana, 125.0)


def test_keyboard_shortcuts(
    console: MainWindow, followers: Followers, qtbot: QtBot, tap_clock: ManualClock
) -> None:
    ana = followers("Ana")
    console.activateWindow()
    console.centralWidget().setFocus()
    qtbot.keyClick(console, Qt.Key.Key_Up)
    wait_tempo(qtbot, ana, 121.0)
    qtbot.keyClick(console, Qt.Key.Key_Down)
    wait_tempo(qtbot, ana, 120.0)
    qtbot.keyClick(console, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    wait_tempo(qtbot, ana, 125.0)
    for _ in range(3):
        qtbot.keyClick(console, Qt.Key.Key_T)
        tap_clock.advance(500.0)
    wait_tempo(qtbot, ana, 120.0)
    qtbot.keyClick(console, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(ana.payloads("play")), timeout=5000)
    qtbot.waitUntil(lambda: console.transport_panel.play_button.isChecked(), timeout=2000)
    qtbot.keyClick(console, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(ana.payloads("pause")), timeout=5000)
    qtbot.keyClick(console, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: bool(ana.payloads("seek")), timeout=5000)


def test_member_table_follows_joins_and_leaves(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    model = console.members_panel.model
    ana = followers("Ana")
    followers("Ben")
    qtbot.waitUntil(lambda: [r.name for r in model.rows] == ["Ana", "Ben"], timeout=3000)
    assert all(r.role == "follower" for r in model.rows)
    assert model.rowCount() == 2
    run(ana.close())
    qtbot.waitUntil(lambda: [r.name for r in model.rows] == ["Ben"], timeout=3000)
    qtbot.waitUntil(
        lambda: any("Ana left" in line for line in console.log_panel.texts()), timeout=2000
    )
    assert any("Ben joined" in line for line in console.log_panel.texts())


def test_health_reports_show_in_the_table(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana", timeline=True)
    run(ana.emit("sync_report", {"sessionId": "band", "rttMs": 80.0, "uncertaintyMs": 4.0}))
    model = console.members_panel.model
    qtbot.waitUntil(lambda: bool(model.rows) and model.rows[0].rtt_ms == 80.0, timeout=3000)
    assert model.rows[0].status == "fair"
    assert model.data(model.index(0, 0)) == "● fair"
    assert "good: RTT <" in model.headerData(
        0, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole
    )


def test_make_leader_and_take_back(console: MainWindow, followers: Followers, qtbot: QtBot) -> None:
    ana = followers("Ana")
    panel = console.members_panel
    qtbot.waitUntil(lambda: len(panel.model.rows) == 1, timeout=3000)
    assert panel.select_member(panel.model.rows[0].client_id)
    qtbot.mouseClick(panel.leader_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("role_changed")), timeout=5000)
    change = ana.payloads("role_changed")[-1]
    assert change["leaderSocketId"] == ana.sid
    assert change["reason"] == "handed_over"
    qtbot.waitUntil(lambda: panel.model.rows[0].role == "leader", timeout=3000)
    qtbot.mouseClick(panel.take_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(ana.payloads("role_changed")) == 2, timeout=5000)
    session = console.bridge.session
    assert session is not None and session.leader_id == CONSOLE


def test_remove_member(console: MainWindow, followers: Followers, qtbot: QtBot) -> None:
    ana = followers("Ana")
    panel = console.members_panel
    qtbot.waitUntil(lambda: len(panel.model.rows) == 1, timeout=3000)
    panel.select_member(panel.model.rows[0].client_id)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("removed")), timeout=5000)
    qtbot.waitUntil(lambda: not panel.model.rows, timeout=3000)


def test_closing_the_window_disconnects_followers_cleanly(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    ben = followers("Ben")
    console.close()
    qtbot.waitUntil(lambda: not console.bridge.running, timeout=5000)
    qtbot.waitUntil(lambda: not ana.sio.connected and not ben.sio.connected, timeout=5000)
    assert ana.payloads("server_shutdown") and ben.payloads("server_shutdown")
    qtbot.waitUntil(lambda: not console.isVisible(), timeout=2000)
    assert any("Server stopped" in line for line in console.log_panel.texts())


def test_refused_command_is_reported_and_changes_nothing(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    with qtbot.waitSignal(console.bridge.command_failed, timeout=3000) as failed:
        console.bridge.set_tempo(300.0)
    assert "tempo must be between 20 and 280" in failed.args[0]
    session = console.bridge.session
    assert session is not None and session.timeline.latest.tempo_bpm == 120.0
    assert not ana.payloads("tempo_changed")


def test_thousands_of_signals_do_not_abort(console: MainWindow, qtbot: QtBot) -> None:
    """PySide6 6.12.0 aborted Python 3.11 after about a hundred emits; keep this green."""
    seen: list[bool] = []
    console.bridge.server_state_changed.connect(seen.append)
    for index in range(5000):
        console.bridge.server_state_changed.emit(index % 2 == 0)
    assert len(seen) == 5000 and seen[:2] == [True, False]
