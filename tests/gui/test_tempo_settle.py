"""TAP and the arrow keys send the band one tempo change, at a beat (issue 12, item 6).

Six taps sent 112, 112, 113, 114, 114 to the band and four Up presses sent four changes. The
console now shows the tempo at once and sends it once the presses settle (``SETTLE_MS`` after
the last), to take effect at the next beat. A real socket.io follower counts what reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.clock import ManualClock
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.transport_panel import SETTLE_MS

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]
QUIET_MS = SETTLE_MS + 500  # longer than a settle: any second change would be here by then


def tempos(client: Recorder) -> list[float]:
    return [p["tempoBpm"] for p in client.payloads("tempo_changed")]


def one_change(qtbot: QtBot, client: Recorder) -> float:
    """Wait for the first tempo change, then make sure no second one follows."""
    qtbot.waitUntil(lambda: bool(tempos(client)), timeout=5000)
    qtbot.wait(QUIET_MS)
    assert len(tempos(client)) == 1, tempos(client)
    return tempos(client)[0]


def test_six_taps_send_one_change(
    console: MainWindow, followers: Followers, qtbot: QtBot, tap_clock: ManualClock
) -> None:
    ana = followers("Ana")
    panel = console.tempo_panel
    shown = []
    for interval in (540.0, 530.0, 530.0, 525.0, 520.0):  # a drummer settling in: 112 → 114
        qtbot.mouseClick(panel.tap_button, Qt.MouseButton.LeftButton)
        tap_clock.advance(interval)
        shown.append(panel.value_label.text())
    qtbot.mouseClick(panel.tap_button, Qt.MouseButton.LeftButton)
    final = panel.pending
    assert final == 113.0  # (6 taps over 2645 ms: 113.4 BPM, whole)
    assert panel.value_label.text() == "113"  # shown at once...
    assert shown[1:] == ["111", "112", "112", "113"]  # ... and after every tap
    assert one_change(qtbot, ana) == final  # ... but sent once
    qtbot.waitUntil(lambda: panel.value_label.text() == "113", timeout=2000)
    assert panel.pending is None


def test_four_up_presses_send_one_change(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    console.activateWindow()
    console.centralWidget().setFocus()
    for press in range(1, 5):
        qtbot.keyClick(console, Qt.Key.Key_Up)
        assert console.tempo_panel.value_label.text() == str(120 + press)
    assert one_change(qtbot, ana) == 124.0
    # The same for Shift (5 BPM) and Down, mixed: one change with the sum.
    ana.clear()
    qtbot.keyClick(console, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(console, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(console, Qt.Key.Key_Up)
    assert one_change(qtbot, ana) == 115.0


def test_up_then_down_sends_nothing(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    console.activateWindow()
    console.centralWidget().setFocus()
    qtbot.keyClick(console, Qt.Key.Key_Up)
    qtbot.keyClick(console, Qt.Key.Key_Down)
    qtbot.wait(QUIET_MS)
    assert tempos(ana) == []
    assert console.tempo_panel.value_label.text() == "120"


def test_a_settled_change_lands_on_a_beat_while_playing(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana")
    run(console.bridge.set_count_in(0))
    run(console.bridge.play())
    qtbot.waitUntil(lambda: bool(ana.payloads("play")), timeout=5000)
    qtbot.wait(700)  # well into the song: not at its first beat
    console.activateWindow()
    console.centralWidget().setFocus()
    for _ in range(3):
        qtbot.keyClick(console, Qt.Key.Key_Up)
    assert one_change(qtbot, ana) == 123.0
    change = ana.payloads("tempo_changed")[0]
    session = console.bridge.session
    assert session is not None
    at = change["effectiveAt"]
    assert at > change["serverTimestamp"]  # ahead, at a boundary, not "now"
    beat = session.timeline.segment_at(at).beat_at(at)
    assert abs(beat - round(beat)) < 1e-6, beat  # on a beat of the music
