"""The console's segue: N (or the set list's Segue button) calls the next song of the set
straight on; a real console (offscreen), its real server on loopback, a real follower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetSong

from ..helpers.clients import Recorder

SONGS = [
    SetSong("Opener", 240.0, 4, 4, 0, "C G"),  # a bar a second
    SetSong("Ballad", 120.0, 3, 4, 1, "Am"),
]


def test_n_segues_to_the_next_song_of_the_set_and_again_takes_it_back(
    console: MainWindow, followers: Callable[..., Recorder], qtbot: QtBot, run: Any
) -> None:
    ana = followers("Ana")
    panel = console.setlist_panel
    for song in SONGS:
        panel.add_song(song)
    panel.songs.setCurrentRow(0)
    panel.load_current()
    qtbot.waitUntil(
        lambda: (ana.last("snapshot")["song"] or {}).get("title") == "Opener", timeout=5000
    )
    console.activateWindow()
    console.centralWidget().setFocus()
    qtbot.keyClick(console, Qt.Key.Key_Space)  # play
    qtbot.waitUntil(lambda: ana.last("snapshot")["isPlaying"], timeout=5000)

    # N, then N again: called and taken back (the segue waits a bar at most: be quick)
    qtbot.keyClick(console, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: console.bridge.session.segue is not None, timeout=2000)
    qtbot.keyClick(console, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: console.bridge.session.segue is None, timeout=2000)
    assert console.bridge.session.song.title == "Opener"
    assert console.bridge.session.timeline.latest.playing  # only the segue went

    # Shift+N: at the next bar, straight on into the ballad with its count-in
    qtbot.keyClick(console, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: console.bridge.session.segue is not None, timeout=2000)
    status = console.form_panel.status_label.full_text()
    assert "Ballad" in status, status
    qtbot.waitUntil(lambda: ana.last("snapshot")["song"]["title"] == "Ballad", timeout=5000)
    snapshot = ana.last("snapshot")
    assert snapshot["isPlaying"] and snapshot["beatsPerBar"] == 3 and snapshot["tempoBpm"] == 120
    assert snapshot["show"]["segue"] is None
    # the set list and the phones' set follow: the ballad is on the stands
    qtbot.waitUntil(lambda: panel.stands_row() == 1, timeout=3000)
    qtbot.waitUntil(lambda: ana.last("snapshot")["setlist"]["current"] == 1, timeout=3000)
    # no song after the last: said, nothing sent
    with qtbot.waitSignal(panel.problem, timeout=1000) as problem:
        qtbot.keyClick(console, Qt.Key.Key_N)
    assert "No song after this one" in problem.args[0]
    assert console.bridge.session.segue is None
