"""Seeks land on a bar line; tempo edits stay with the song; the set list shows the phones'
song (issue 12, items 9 and 10).

A seek from the console landed mid-bar (the band came in on beat 3), a tempo found in
rehearsal was lost the next time the song loaded, and the set list kept highlighting a song
the phones no longer had. Real phones (socket.io clients) check what reaches the band.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.timeline import MS_PER_MINUTE
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetSong
from bandsync_desktop.gui.setlist_panel import ON_STANDS

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]
GROOVE = SetSong("Opening groove", 96.0, 4, 4, 0, "| Am | F | C | G |")
WALTZ = SetSong("Waltz for the road", 138.0, 3, 4, 0, "| D | G | A | D |\n" * 3)  # 12 bars
WALTZ_BAR_MS = 3 * MS_PER_MINUTE / 138.0  # 1304.3 ms


@pytest.fixture
def band(console: MainWindow, followers: Followers, qtbot: QtBot) -> Recorder:
    """Ana's phone, connected (``joined`` joins her, with a client id of her own); the set
    has the groove and the waltz."""
    panel = console.setlist_panel
    panel.add_song(GROOVE)
    panel.add_song(WALTZ)
    return followers("Ana", join=False)


def joined(run: Run, ana: Recorder) -> Recorder:
    payload = {"sessionId": "band", "displayName": "Ana", "clientId": "ana-phone-1"}
    assert run(ana.call("join_session", payload))["ok"] is True
    return ana


def load(console: MainWindow, qtbot: QtBot, row: int, title: str) -> None:
    panel = console.setlist_panel
    panel.songs.setCurrentRow(row)
    panel.load_current()

    def on_stands() -> bool:
        session = console.bridge.session
        return bool(session and session.song and session.song.title == title)

    qtbot.waitUntil(on_stands, timeout=5000)


def last_seek(client: Recorder) -> float | None:
    seek = client.last("seek")
    return seek["positionMs"] if seek else None


def test_a_console_seek_lands_on_the_nearest_bar_line(
    console: MainWindow, band: Recorder, qtbot: QtBot, run: Run
) -> None:
    ana = joined(run, band)
    load(console, qtbot, 1, WALTZ.title)  # 3/4 at 138 BPM
    run(console.bridge.seek(10_000.0))  # 7.67 bars in: bar 9's downbeat is nearer
    qtbot.waitUntil(lambda: last_seek(ana) is not None, timeout=5000)
    position = last_seek(ana)
    assert position == pytest.approx(8 * WALTZ_BAR_MS, abs=1e-6)
    session = console.bridge.session
    assert session is not None
    assert session.timeline.latest.beat == 24.0  # beat 1 of bar 9, for every phone
    assert console.transport_panel.bar_beat_label.text() == "9 : 1"


def test_the_position_slider_shows_and_sends_a_bar_line(
    console: MainWindow, band: Recorder, qtbot: QtBot, run: Run
) -> None:
    ana = joined(run, band)
    load(console, qtbot, 1, WALTZ.title)
    panel = console.transport_panel
    slider = panel.seek_slider
    slider.setSliderDown(True)
    slider.setSliderPosition(100)  # dragged to 10.0 s
    # While dragging, the labels say where the band will land: bar 9's downbeat at 10.4 s.
    assert panel.bar_beat_label.text() == "9 : 1"
    assert panel.clock_label.text() == "00:10.4"
    slider.setSliderDown(False)
    qtbot.waitUntil(lambda: last_seek(ana) is not None, timeout=5000)
    assert last_seek(ana) == pytest.approx(8 * WALTZ_BAR_MS, abs=1e-6)


def test_a_tempo_found_in_rehearsal_is_saved_to_the_song(
    console: MainWindow, band: Recorder, qtbot: QtBot, run: Run
) -> None:
    ana = joined(run, band)
    panel = console.setlist_panel
    load(console, qtbot, 0, GROOVE.title)  # 96 BPM
    console.activateWindow()
    console.take_keyboard()
    for _ in range(3):
        qtbot.keyClick(console, Qt.Key.Key_Up)  # settles into one change: 99 BPM
    qtbot.waitUntil(lambda: panel.setlist.songs[0].tempo_bpm == 99.0, timeout=5000)
    assert "Tempo 99 BPM saved to Opening groove" in " | ".join(console.log_panel.texts())
    assert (
        panel.songs.item(0).text() == f"{ON_STANDS}1. Opening groove   99 BPM · 4/4 · no count-in"
    )
    saved = json.loads(panel.library.path_of(panel.setlist.name).read_text(encoding="utf-8"))
    assert saved["songs"][0]["tempo"] == 99.0
    assert panel.setlist.songs[1].tempo_bpm == 138.0  # the other song is left alone
    # The next time the song loads, the band gets the saved tempo.
    load(console, qtbot, 1, WALTZ.title)
    load(console, qtbot, 0, GROOVE.title)
    session = console.bridge.session
    assert session is not None and session.timeline.latest.tempo_bpm == 99.0

    def phone_has_it() -> bool:
        snapshot = ana.last("snapshot")
        return bool(snapshot and snapshot["song"]["title"] == GROOVE.title)

    qtbot.waitUntil(phone_has_it, timeout=5000)
    qtbot.waitUntil(lambda: ana.last("snapshot")["tempoBpm"] == 99.0, timeout=5000)


def test_the_set_list_highlights_the_song_the_phones_have(
    console: MainWindow, band: Recorder, qtbot: QtBot, run: Run
) -> None:
    ana = joined(run, band)
    panel = console.setlist_panel
    songs = panel.songs
    load(console, qtbot, 0, GROOVE.title)
    assert songs.currentRow() == 0 and songs.item(0).text().startswith(ON_STANDS)
    run(console.bridge.hand_over("ana-phone-1"))
    qtbot.waitUntil(lambda: console.bridge.session.leader_id == "ana-phone-1", timeout=5000)
    # Ana, leading from her phone, puts the waltz on the stands at her own tempo.
    song = {"title": WALTZ.title, "chart": WALTZ.chart, "tempo": 150}
    assert run(ana.call("set_song", {"sessionId": "band", "song": song}))["ok"] is True
    qtbot.waitUntil(lambda: songs.currentRow() == 1, timeout=5000)
    assert songs.item(1).text().startswith(ON_STANDS)
    assert not songs.item(0).text().startswith(ON_STANDS)
    assert panel.setlist.songs[1].tempo_bpm == 138.0  # her song, not an edit of the entry
    # She clears the stands: the list highlights nothing.
    assert run(ana.call("set_song", {"sessionId": "band", "song": None}))["ok"] is True
    qtbot.waitUntil(lambda: songs.currentRow() == -1, timeout=5000)
    texts = [songs.item(row).text() for row in range(songs.count())]
    assert not any(text.startswith(ON_STANDS) for text in texts)
