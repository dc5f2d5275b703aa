"""The console's set list on the phones: a real console (offscreen), its real server on
loopback and real socket.io followers. The set reaches every phone with the song on the
stands marked; edits, another song and the form setting show at once; a restart keeps it;
a set a phone leader sent stays until the console's own set changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytestqt.qtbot import QtBot

from bandsync_desktop.core.song import SongMap
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetSong

from ..helpers.clients import Recorder, expect_ok

FORM_CHART = """{title: Short}
[Intro]
| A | A |
[Verse]
| D | D | D | D |
"""
SONGS = [
    SetSong("Opener", 96.0, 4, 4, 1, "C G Am F"),
    SetSong("Short", 120.0, 4, 4, 1, FORM_CHART),
    SetSong("Seven", 152.0, 7, 8, 2, ""),
]


def shown(ana: Recorder) -> Any:
    snapshot = ana.last("snapshot")
    return snapshot["setlist"] if snapshot else None


def test_the_set_and_the_song_on_the_stands_reach_every_phone(
    console: MainWindow, followers: Callable[..., Recorder], qtbot: QtBot, run: Any
) -> None:
    ana = followers("Ana")
    panel = console.setlist_panel
    for song in SONGS:
        panel.add_song(song)
    qtbot.waitUntil(lambda: shown(ana) is not None and len(shown(ana)["songs"]) == 3, timeout=5000)
    setlist = shown(ana)
    assert setlist["name"] == panel.setlist.name and setlist["current"] is None
    assert setlist["songs"][2] == {
        "title": "Seven",
        "tempo": 152.0,
        "beatsPerBar": 7,
        "beatUnit": 8,
        "lengthMs": None,  # the form is not played (File › Play the chart's form is off)
    }
    panel.songs.setCurrentRow(1)
    panel.load_current()
    qtbot.waitUntil(lambda: shown(ana)["current"] == 1, timeout=5000)
    assert ana.last("snapshot")["song"]["title"] == "Short"

    # the form played: the timed song's length is its bars at its tempo
    console.play_form_action.setChecked(True)
    length = SongMap.from_dict({"sections": _sections(FORM_CHART)}).length_ms
    assert length == 6 * 2000.0  # six bars of 4/4 at 120 BPM, as the conductor plays them
    qtbot.waitUntil(lambda: shown(ana)["songs"][1]["lengthMs"] == length, timeout=5000)
    # (a chord line without bar lines reads as one bar: 2.5 s at 96 BPM, what the form plays)
    assert shown(ana)["songs"][0]["lengthMs"] == 2500.0
    assert shown(ana)["songs"][2]["lengthMs"] is None  # no chart, no form: not known

    # a restart keeps it, the song on the stands still marked
    run(console.bridge.stop())
    assert run(console.start_server())
    runner = console.bridge.runner
    assert runner is not None
    again = Recorder(f"http://127.0.0.1:{runner.port}", "Ben", reconnection=False)
    run(again.connect())
    try:
        run(expect_ok(again, "join_session", {"sessionId": "band", "displayName": "Ben"}))
        qtbot.waitUntil(lambda: shown(again) is not None, timeout=5000)
        assert shown(again)["current"] == 1 and len(shown(again)["songs"]) == 3
    finally:
        run(again.close())


def test_a_phone_leaders_set_stays_until_the_consoles_set_changes(
    console: MainWindow, followers: Callable[..., Recorder], qtbot: QtBot, run: Any
) -> None:
    ana = followers("Ana")
    panel = console.setlist_panel
    panel.add_song(SONGS[0])
    qtbot.waitUntil(lambda: shown(ana) is not None, timeout=5000)
    member = next(c for c in console.bridge.session.members if c != "~console")
    run(console.bridge.hand_over(member))
    qtbot.waitUntil(lambda: ana.last("snapshot")["leaderName"] == "Ana", timeout=5000)
    phone_set = {"name": "Ana's", "songs": [{"title": "Jam"}], "current": 0}
    run(expect_ok(ana, "set_setlist", {"sessionId": "band", "setlist": phone_set}))
    qtbot.waitUntil(lambda: shown(ana)["name"] == "Ana's", timeout=5000)
    run(expect_ok(ana, "set_tempo", {"sessionId": "band", "tempo": 101}))  # more snapshots
    qtbot.waitUntil(lambda: ana.last("snapshot")["tempoBpm"] == 101, timeout=5000)
    qtbot.wait(300)
    assert shown(ana)["name"] == "Ana's"
    panel.add_song(SONGS[2])
    qtbot.waitUntil(lambda: shown(ana)["name"] == panel.setlist.name, timeout=5000)
    assert [s["title"] for s in shown(ana)["songs"]] == ["Opener", "Seven"]


def _sections(chart: str) -> list[dict[str, Any]]:
    from bandsync_desktop.actors.console import SongSpec, chart_sections

    sections = chart_sections(SongSpec("Short", chart, 120.0, 4, 4))
    assert sections is not None
    return sections
