"""The console plays a song's form and calls on it (issue 15, item 3): a chart's sections go
to the phones with the song, Jump / Vamp / End by button and by key (whatever has the
keyboard; in a text box the letters type), and the row says where the form is."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.actors.console import SongSpec
from bandsync_desktop.core.conductor import song_bar_at
from bandsync_desktop.gui.form_panel import NO_FORM, form_status
from bandsync_desktop.gui.main_window import MainWindow

from ..helpers.clients import Recorder
from .conftest import Run
from .test_keyboard import focus

Followers = Callable[..., Recorder]

CHART = """{title: Short form}
{tempo: 240}
[Intro]
| A | A |
[Verse]
| D | D | D | D |
[Bridge]
{time: 3/4}
| E | E |
[Outro]
{time: 4/4}
| A |
"""


def load(console: MainWindow, run: Run, chart: str = CHART) -> None:
    if not console.play_form_action.isChecked():
        console.play_form_action.setChecked(True)  # off until the leader asks
    assert console.user_settings.get("play_form") is True
    run(console.bridge.set_song(SongSpec("Short form", chart, tempo_bpm=240.0)))


def test_a_charts_sections_reach_the_phones_and_the_row_lists_them(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana")
    panel = console.form_panel
    assert panel.status_label.full_text() == NO_FORM and not panel.jump_button.isEnabled()
    assert not console.play_form_action.isChecked()  # off until the leader asks
    run(console.bridge.set_song(SongSpec("Short form", CHART, tempo_bpm=240.0)))
    qtbot.waitUntil(lambda: (ana.last("snapshot")["song"] or {}).get("title") == "Short form")
    assert "sections" not in ana.last("snapshot")["song"]
    load(console, run)
    qtbot.waitUntil(lambda: bool((ana.last("snapshot")["song"] or {}).get("sections")))
    sections = ana.last("snapshot")["song"]["sections"]
    assert [(s["name"], s["bars"], s["beatsPerBar"]) for s in sections] == [
        ("Intro", 2, 4),
        ("Verse", 4, 4),
        ("Bridge", 2, 3),
        ("Outro", 1, 4),
    ]
    qtbot.waitUntil(lambda: panel.section_box.count() == 4, timeout=3000)
    assert [panel.section_box.itemText(i) for i in range(4)] == [
        "1. Intro",
        "2. Verse",
        "3. Bridge",
        "4. Outro",
    ]
    assert panel.jump_button.isEnabled() and panel.vamp_button.isEnabled()
    assert panel.status_label.full_text() == "Intro · bar 1 of 2 · 9 bars in all"

    # without the form: the chart goes on the stands, its sections do not
    console.play_form_action.setChecked(False)
    assert console.user_settings.get("play_form") is False
    run(console.bridge.set_song(SongSpec("Short form", CHART, tempo_bpm=240.0)))
    qtbot.waitUntil(lambda: "sections" not in (ana.last("snapshot")["song"] or {"sections": 1}))
    qtbot.waitUntil(lambda: panel.status_label.full_text() == NO_FORM, timeout=3000)
    assert not panel.jump_button.isEnabled()


def test_jump_vamp_and_end_by_key_whatever_has_the_keyboard(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana")
    panel = console.form_panel
    load(console, run)
    qtbot.waitUntil(lambda: panel.section_box.count() == 4, timeout=3000)
    run(console.bridge.play())
    bridge = console.bridge

    # V in the message box types; elsewhere it vamps on the section playing
    box = console.message_panel.edit
    focus(console, qtbot, box)
    qtbot.keyClick(box, Qt.Key.Key_V)
    assert box.text() == "v"
    assert bridge.session is not None and bridge.session.show.vamp is None
    focus(console, qtbot, console.members_panel.table)
    qtbot.keyClick(console.members_panel.table, Qt.Key.Key_V)
    qtbot.waitUntil(lambda: bridge.session.show.vamp == 0, timeout=3000)
    qtbot.waitUntil(lambda: ana.last("snapshot")["show"]["vampName"] == "Intro", timeout=3000)
    assert panel.vamp_button.isChecked()
    qtbot.waitUntil(lambda: "vamp on Intro" in panel.status_label.full_text(), timeout=3000)
    # the button releases it
    qtbot.mouseClick(panel.vamp_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bridge.session.show.vamp is None, timeout=3000)
    assert not panel.vamp_button.isChecked()

    # J: to the chosen section on the next bar; the phones see it coming
    panel.section_box.setCurrentIndex(2)
    qtbot.keyClick(console.members_panel.table, Qt.Key.Key_J)
    qtbot.waitUntil(
        lambda: (ana.last("snapshot")["show"]["call"] or {}).get("sectionName") == "Bridge",
        timeout=3000,
    )
    call = ana.last("snapshot")["show"]["call"]
    assert any("Call: Bridge on bar" in text for text in console.log_panel.texts())
    qtbot.waitUntil(
        lambda: song_bar_at(bridge.session.timeline, bridge.now_ms() or 0.0) >= 7, timeout=5000
    )
    assert call["bar"] <= 3  # it came on the next bar, not after the verse
    qtbot.waitUntil(lambda: panel.status_label.full_text().startswith("Bridge"), timeout=3000)

    # Shift+E: end after this section (the bridge: 2 bars of 3/4 at 240 BPM)
    qtbot.keyClick(console.members_panel.table, Qt.Key.Key_E, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(
        lambda: (ana.last("snapshot")["show"]["call"] or {}).get("kind") == "end", timeout=3000
    )
    assert ana.last("snapshot")["show"]["call"]["bar"] == 9  # the outro would have begun
    qtbot.waitUntil(lambda: not bridge.session.timeline.latest.playing, timeout=5000)
    session = bridge.session
    now = bridge.now_ms() or 0.0
    qtbot.waitUntil(
        lambda: not session.timeline.is_playing_at(bridge.now_ms() or 0.0), timeout=5000
    )
    assert "end" not in form_status(bridge.session, now + 5_000)
