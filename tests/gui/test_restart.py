"""Stop server / Start server keeps what the band had (issue 12, item 9, the console side).

A console restart used to start a fresh band session: song gone, tempo back to 120, a new
leader key (a phone given the key could no longer claim the lead), while the set list still
highlighted the song. Here a real server is stopped and started again from the console, and
real socket.io phones check what the new server tells them. Stopping while phones follow asks
the leader first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.session import CONSOLE
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetSong
from bandsync_desktop.gui.setlist_panel import ON_STANDS

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]
SONGS = (
    SetSong("Opening groove", 96.0, 4, 4, 1, "| Am | F | C | G |"),
    SetSong("Waltz for the road", 138.0, 3, 4, 0, "| D | G | A |"),
)


def url(console: MainWindow) -> str:
    runner = console.bridge.runner
    assert runner is not None
    return f"http://127.0.0.1:{runner.port}"


def join(run: Run, console: MainWindow, name: str, **extra: Any) -> Recorder:
    """A phone on the console's current server (``followers`` is bound to the first one)."""
    phone = Recorder(url(console), name, reconnection=False)
    run(phone.connect())
    answer = run(phone.call("join_session", {"sessionId": "band", "displayName": name, **extra}))
    assert answer["ok"] is True, answer
    return phone


def restart(console: MainWindow, run: Run) -> None:
    """What the leader does with Stop server and Start server."""
    run(console.bridge.stop())
    assert not console.bridge.running
    assert run(console.start_server())


def test_a_restart_keeps_song_tempo_meter_count_in_message_and_key(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    bridge = console.bridge
    ana = followers("Ana")
    panel = console.setlist_panel
    for song in SONGS:
        panel.add_song(song)
    panel.songs.setCurrentRow(1)
    panel.load_current()  # 138 BPM, 3/4, no count-in
    qtbot.waitUntil(lambda: ana.last("song_changed") is not None, timeout=5000)
    run(bridge.set_tempo(141.0))
    run(bridge.set_count_in(2))
    run(bridge.set_message("Capo 2, watch me for the ending"))
    before = bridge.session
    assert before is not None
    key = before.leader_key
    assert key

    restart(console, run)
    run(ana.close())

    after = bridge.session
    assert after is not None
    latest = after.timeline.latest
    assert (latest.tempo_bpm, latest.beats_per_bar, latest.beat_unit) == (141.0, 3, 4)
    assert after.count_in_bars == 2
    assert after.song is not None and after.song.title == "Waltz for the road"
    assert after.song.chart == "| D | G | A |"
    assert after.message == "Capo 2, watch me for the ending"
    assert after.leader_key == key
    assert after.leader_id == CONSOLE
    assert not latest.playing and after.timeline.position_at(latest.start_ms) == 0.0
    # What a phone joining the new server is told: the band's state, not a fresh session.
    ben = join(run, console, "Ben")
    qtbot.waitUntil(lambda: ben.last("snapshot") is not None, timeout=5000)
    snapshot = ben.last("snapshot")
    assert snapshot["tempoBpm"] == 141.0 and snapshot["beatsPerBar"] == 3
    assert snapshot["countInBars"] == 2
    assert snapshot["song"]["title"] == "Waltz for the road"
    assert snapshot["message"] == "Capo 2, watch me for the ending"
    # The key a phone was given still claims the lead on the new server.
    answer = run(ben.call("set_role", {"sessionId": "band", "role": "leader", "leaderKey": key}))
    assert answer["ok"] is True, answer
    qtbot.waitUntil(lambda: bridge.session is not None and bridge.session.leader is not None)
    leader = bridge.session.leader if bridge.session else None
    assert leader is not None and leader.display_name == "Ben"
    # The console shows the same: the kept tempo and the key in the join details.
    assert console.tempo_panel.value_label.text() == "141"
    assert console.connection_panel.key_label.text() == key
    # The set list marks the song the phones have, and only it.
    songs = panel.songs
    assert songs.currentRow() == 1
    assert songs.item(1).text().startswith(ON_STANDS)
    assert not songs.item(0).text().startswith(ON_STANDS)
    run(ben.close())


def test_a_phone_that_led_gets_the_lead_back_after_a_restart(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    bridge = console.bridge
    ana = followers("Ana", join=False)
    answer = run(
        ana.call(
            "join_session", {"sessionId": "band", "displayName": "Ana", "clientId": "ana-phone-1"}
        )
    )
    assert answer["ok"] is True
    run(bridge.hand_over("ana-phone-1"))
    qtbot.waitUntil(
        lambda: bridge.session is not None and bridge.session.leader_id == "ana-phone-1"
    )

    restart(console, run)
    session = bridge.session
    assert session is not None
    # Her seat is held, as after any drop-out: the console does not lead in her place yet.
    assert session.leader_id is None and session.held_leader_id == "ana-phone-1"
    assert "ana-phone-1" in session.away
    back = join(run, console, "Ana", clientId="ana-phone-1")
    qtbot.waitUntil(
        lambda: bridge.session is not None and bridge.session.leader_id == "ana-phone-1",
        timeout=5000,
    )
    assert any(p.get("reason") == "returned" for p in back.payloads("role_changed"))
    run(back.close())


def answer_question(button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Answer the next modal question the console asks within 3 s with ``button``."""
    tries = iter(range(150))  # then stop looking: a later test's dialogs are not ours

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            if next(tries, None) is not None:
                QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        clicked = box.button(button)
        assert clicked is not None
        clicked.click()

    QTimer.singleShot(0, answer)


def test_stop_server_asks_first_while_phones_follow(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    console.interactive = True  # someone is at the window to answer
    ana = followers("Ana")
    qtbot.waitUntil(lambda: console.bridge.status().followers == 1, timeout=5000)
    stop = console.connection_panel.start_button
    seen: list[str] = []
    answer_question(QMessageBox.StandardButton.Cancel, seen)
    stop.click()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[0].startswith("1 phone is following the band")
    qtbot.wait(200)
    assert console.bridge.running and ana.sio.connected  # cancelled: nothing stopped
    answer_question(QMessageBox.StandardButton.Yes, seen)
    stop.click()
    qtbot.waitUntil(lambda: not console.bridge.running, timeout=5000)
    assert len(seen) == 2
    qtbot.waitUntil(lambda: bool(ana.payloads("server_shutdown")), timeout=5000)


def test_stop_server_with_nobody_following_just_stops(console: MainWindow, qtbot: QtBot) -> None:
    console.interactive = True
    seen: list[str] = []
    answer_question(QMessageBox.StandardButton.Cancel, seen)  # would answer one, if asked
    console.connection_panel.start_button.click()
    qtbot.waitUntil(lambda: not console.bridge.running, timeout=5000)
    assert seen == []
    QApplication.processEvents()


def test_closing_the_window_asks_first_while_phones_follow(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    console.interactive = True
    ana = followers("Ana")
    qtbot.waitUntil(lambda: console.bridge.status().followers == 1, timeout=5000)
    seen: list[str] = []
    answer_question(QMessageBox.StandardButton.Cancel, seen)
    console.close()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    qtbot.wait(200)
    assert console.isVisible() and console.bridge.running and ana.sio.connected
    answer_question(QMessageBox.StandardButton.Yes, seen)
    console.close()
    qtbot.waitUntil(lambda: not console.isVisible(), timeout=5000)
    assert not console.bridge.running and len(seen) == 2
    assert ana.payloads("server_shutdown")


def test_a_signal_closes_without_asking(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    console.interactive = True
    followers("Ana")
    qtbot.waitUntil(lambda: console.bridge.status().followers == 1, timeout=5000)
    seen: list[str] = []
    answer_question(QMessageBox.StandardButton.Cancel, seen)  # would cancel, if asked
    console.quit_without_asking()  # what SIGTERM / Ctrl+C call
    qtbot.waitUntil(lambda: not console.isVisible(), timeout=5000)
    assert seen == [] and not console.bridge.running
