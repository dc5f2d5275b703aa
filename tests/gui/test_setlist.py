"""Set lists saved per set as JSON; bad files refused whole; the panel drives the session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.errors import ValidationError
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import (
    SetLibrary,
    SetList,
    SetListError,
    SetSong,
    read_set_file,
    write_set_file,
)

from ..helpers.clients import Recorder

SONGS = [
    SetSong("Opener", 96.0, 4, 4, 1, "C G Am F"),
    SetSong("Waltz", 138.0, 3, 4, 0, "D G A"),
    SetSong("Seven", 152.0, 7, 8, 2, ""),
]


def test_library_saves_one_file_per_set_and_reads_it_back(tmp_path: Path) -> None:
    library = SetLibrary(tmp_path / "sets")
    library.save(SetList("Friday gig", list(SONGS)))
    library.save(SetList("Rehearsal", SONGS[:1]))
    assert library.names() == ["Friday gig", "Rehearsal"]
    assert library.path_of("Friday gig").name == "Friday-gig.json"
    loaded = library.load("Friday gig")
    assert loaded.songs == SONGS
    data = json.loads(library.path_of("Friday gig").read_text(encoding="utf-8"))
    assert data["songs"][1] == {
        "title": "Waltz",
        "tempo": 138.0,
        "beatsPerBar": 3,
        "beatUnit": 4,
        "countInBars": 0,
        "chart": "D G A",
    }
    library.delete("Rehearsal")
    assert library.names() == ["Friday gig"]


def test_a_missing_set_is_empty(tmp_path: Path) -> None:
    assert SetLibrary(tmp_path).load("New").songs == []


@pytest.mark.parametrize(
    ("song", "message"),
    [
        ({"title": "Fast", "tempo": 300}, "tempo must be between"),
        ({"title": "", "tempo": 120}, "title must not be empty"),
        ({"title": "Odd", "beatsPerBar": 5, "beatUnit": 3}, "beatUnit must be"),
        ({"title": "Long count", "countInBars": 9}, "countInBars must be between"),
    ],
)
def test_an_invalid_song_refuses_the_whole_file(
    tmp_path: Path, song: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "Bad", "songs": [{"title": "Fine"}, song]}))
    with pytest.raises(SetListError, match=message) as info:
        read_set_file(path)
    assert "song 2" in str(info.value)


def test_not_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "set.json"
    path.write_text("{ not json")
    with pytest.raises(SetListError, match="not valid JSON"):
        read_set_file(path)


def test_export_then_import_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out" / "set.json"
    write_set_file(SetList("Gig", list(SONGS)), path)
    assert read_set_file(path) == SetList("Gig", list(SONGS))


def test_move_and_replace() -> None:
    setlist = SetList("Gig", list(SONGS))
    assert setlist.move(0, +1) == 1
    assert [s.title for s in setlist.songs] == ["Waltz", "Opener", "Seven"]
    assert setlist.move(0, -1) == 0  # already at the top: nothing moves
    with pytest.raises(ValidationError):
        setlist.replace_song(0, SetSong("Too fast", 999.0))
    assert setlist.songs[0].title == "Waltz"


def test_choosing_songs_sets_tempo_meter_and_chart_for_everyone(
    console: MainWindow, followers: Callable[..., Recorder], qtbot: QtBot, tmp_path: Path
) -> None:
    ana = followers("Ana")
    panel = console.setlist_panel
    for song in SONGS:
        panel.add_song(song)
    assert panel.library.load(panel.setlist.name).songs == SONGS  # saved at once
    panel.songs.setCurrentRow(0)
    qtbot.mouseClick(panel.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ana.payloads("song_changed")), timeout=5000)
    assert ana.payloads("song_changed")[-1]["song"] == {"title": "Opener", "chart": "C G Am F"}
    qtbot.waitUntil(lambda: ana.last("snapshot")["tempoBpm"] == 96.0, timeout=5000)

    console.activateWindow()
    console.centralWidget().setFocus()
    qtbot.keyClick(console, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: len(ana.payloads("song_changed")) == 2, timeout=5000)
    qtbot.waitUntil(lambda: ana.last("snapshot")["tempoBpm"] == 138.0, timeout=5000)
    snapshot = ana.last("snapshot")
    assert (snapshot["beatsPerBar"], snapshot["beatUnit"]) == (3, 4)
    assert snapshot["song"]["title"] == "Waltz"
    qtbot.waitUntil(lambda: panel.chart_view.toPlainText() == "D G A", timeout=2000)
    qtbot.waitUntil(lambda: console.transport_panel.beats.value() == 3, timeout=2000)
    qtbot.keyClick(console, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: len(ana.payloads("song_changed")) == 3, timeout=5000)
    assert ana.payloads("song_changed")[-1]["song"]["title"] == "Opener"


def test_importing_a_bad_file_changes_nothing(
    console: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    panel = console.setlist_panel
    panel.add_song(SONGS[0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"songs": [{"title": "x", "tempo": "fast"}]}))
    with qtbot.waitSignal(panel.problem, timeout=1000) as problem:
        panel.import_file(bad)
    assert "Cannot import bad.json" in problem.args[0]
    assert panel.setlist.songs == [SONGS[0]]
    good = tmp_path / "Tour.json"
    write_set_file(SetList("Tour", SONGS[1:]), good)
    panel.import_file(good)
    assert panel.setlist.name == "Tour" and panel.songs.count() == 2
    assert "Tour" in panel.library.names()
