"""The console's stage cues reach real phones, on a key each, whatever has the keyboard
(issue 15, item 4): presets, a typed cue, when it lands and how long it holds, Clear cue, and
the panel saying what the phones show (pending, on the phones) from the session itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.session import cue_phase
from bandsync_desktop.core.validation import CUE_TEXT_MAX
from bandsync_desktop.gui.cue_panel import (
    CLEAR_KEY,
    NO_CUE,
    PRESET_KEYS,
    PRESETS,
    TYPE_KEY,
    cue_status,
    hold_text,
    when_text,
)
from bandsync_desktop.gui.main_window import MainWindow

from ..helpers.clients import Recorder
from .conftest import Run
from .test_keyboard import focus, inputs

Followers = Callable[..., Recorder]


def phone(followers: Followers, name: str = "Ana") -> Recorder:
    """A joined follower that records ``cue`` notices."""
    client = followers(name)
    client.sio.on("cue", client._recorder("cue"))
    return client


def cue_texts(client: Recorder) -> list[str | None]:
    return [p["cue"]["text"] if p["cue"] else None for p in client.payloads("cue")]


def test_each_preset_has_its_key_and_reaches_the_phone_whatever_has_the_keyboard(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = phone(followers)
    panel = console.cue_panel
    assert panel.shown_label.text() == NO_CUE
    assert [b.text() for b in panel.preset_buttons] == list(PRESETS)
    # each says its key where a leader looks for it: the panel's title and the tooltip
    assert "F1–F6" in panel.title() and "F7" in panel.title() and "F8" in panel.title()
    for number, button in enumerate(panel.preset_buttons, 1):
        assert f"(F{number})" in button.toolTip()
    places = inputs(console)
    assert panel.edit in places and console.message_panel.edit in places
    for index, (text, key) in enumerate(zip(PRESETS, PRESET_KEYS, strict=True)):
        widget = places[(index * 3) % len(places)]  # the keyboard somewhere else each time
        focus(console, qtbot, widget)
        qtbot.keyClick(widget, key)
        qtbot.waitUntil(lambda t=text: cue_texts(ana)[-1:] == [t], timeout=5000)
    assert cue_texts(ana) == list(PRESETS)
    # the notice, then the snapshot that carries it, and the console says what they show
    qtbot.waitUntil(lambda: (ana.last("snapshot")["cue"] or {}).get("text") == "OUTRO")
    wire = ana.last("snapshot")["cue"]
    session = console.bridge.session
    assert session is not None and session.cue is not None
    assert wire == session.cue.to_wire() and wire["holdBars"] == 2
    # stopped: on the phones at once, on the bar the band stands in
    qtbot.waitUntil(
        lambda: panel.shown_label.text() == f"On the phones: OUTRO · until bar {wire['atBar'] + 2}",
        timeout=3000,
    )
    # a preset button is the same as its key
    qtbot.mouseClick(panel.preset_buttons[1], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == ["BREAK"], timeout=5000)
    # Clear cue, by its key with the keyboard in the message box, and by its button
    focus(console, qtbot, console.message_panel.edit)
    qtbot.keyClick(console.message_panel.edit, CLEAR_KEY)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == [None], timeout=5000)
    assert ana.last("cue")["reason"] == "cleared"
    assert console.message_panel.edit.text() == ""  # the key typed nothing
    qtbot.waitUntil(lambda: panel.shown_label.text() == NO_CUE, timeout=3000)
    qtbot.mouseClick(panel.preset_buttons[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == ["2× CHORUS"], timeout=5000)
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == [None], timeout=5000)


def test_a_typed_cue_goes_on_enter_and_gives_the_keyboard_back(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = phone(followers)
    panel = console.cue_panel
    focus(console, qtbot, console.members_panel.table)
    qtbot.keyClick(console.members_panel.table, TYPE_KEY)  # F7: to the cue's box
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.edit, timeout=2000)
    qtbot.keyClicks(panel.edit, "Vamp till I nod")  # Space and T type in the box
    qtbot.keyClick(panel.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: cue_texts(ana) == ["Vamp till I nod"], timeout=5000)
    assert QApplication.focusWidget() is console.centralWidget()
    session = console.bridge.session
    assert session is not None and not session.timeline.latest.playing  # Space did not play
    # the box takes no more than the server accepts; a blank one sends nothing
    panel.edit.setText("x" * (CUE_TEXT_MAX + 10))
    assert len(panel.edit.text()) == CUE_TEXT_MAX
    panel.edit.setText("   ")
    panel.send_typed()
    qtbot.wait(200)
    assert cue_texts(ana) == ["Vamp till I nod"]


def test_when_and_hold_while_playing_and_the_countdown_the_console_shows(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = phone(followers)
    panel = console.cue_panel
    bridge = console.bridge
    assert [panel.when.itemText(i) for i in (0, 1, 2)] == [when_text(0), "+1 bar", "+2 bars"]
    assert panel.hold.currentText() == hold_text(2) == "hold 2 bars"
    run(bridge.set_tempo(240.0))  # a bar a second
    run(bridge.set_count_in(0))
    run(bridge.play())
    panel.when.setCurrentIndex(panel.when.findData(2))
    panel.hold.setCurrentIndex(panel.hold.findData(3))
    before = bridge.now_ms()
    assert before is not None
    panel.send_preset(3)  # EYES ON ME, two bars after the next one, held three
    qtbot.waitUntil(lambda: cue_texts(ana) == ["EYES ON ME"], timeout=5000)
    wire: dict[str, Any] = ana.last("cue")["cue"]
    assert wire["holdBars"] == 3
    session = bridge.session
    assert session is not None and session.cue is not None
    timeline = session.timeline
    # the next downbeat a lead away, then two bars more (a bar is 1 s at 240 BPM in 4/4)
    assert wire["atServerTime"] >= before + 200.0 + 2000.0 - 1.0
    assert wire["atServerTime"] < before + 200.0 + 3000.0 + 200.0
    assert timeline.bar_beat_at(wire["atServerTime"] + 0.01).beat == 1
    # the console counts down as the phones do, then shows it on the phones
    label = panel.shown_label
    qtbot.waitUntil(lambda: label.text().startswith("Next: EYES ON ME on bar "), timeout=3000)
    assert "· in " in label.text()
    qtbot.waitUntil(lambda: label.text().startswith("On the phones: EYES ON ME"), timeout=5000)
    assert label.text().endswith(f"until bar {wire['atBar'] + 3}")
    now = bridge.now_ms()
    assert now is not None and now >= wire["atServerTime"] - 1.0
    assert cue_phase(session.cue, timeline, now)[0] == "showing"
    assert cue_status(session, now) == label.text()
    qtbot.waitUntil(lambda: label.text() == NO_CUE, timeout=5000)  # over after three bars
    # a stop takes a pending cue off every phone, and the phones are told why
    panel.when.setCurrentIndex(panel.when.findData(8))
    panel.send_preset(5)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == ["OUTRO"], timeout=5000)
    qtbot.keyClick(console.centralWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: cue_texts(ana)[-1:] == [None], timeout=5000)
    assert ana.last("cue")["reason"] == "stop"
    qtbot.waitUntil(lambda: label.text() == NO_CUE, timeout=3000)


def test_a_cue_from_a_phone_that_leads_is_shown_as_plain_text(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = phone(followers)
    members = console.members_panel
    qtbot.waitUntil(lambda: len(members.model.rows) == 1, timeout=3000)
    run(console.bridge.hand_over(members.model.rows[0].client_id))
    hostile = "<img src=file:///dev/zero>"
    answer = run(ana.call("cue", {"sessionId": "band", "text": hostile}))
    assert answer["ok"] is True, answer
    label = console.cue_panel.shown_label
    assert isinstance(label, QLabel) and label.textFormat() == Qt.TextFormat.PlainText
    qtbot.waitUntil(lambda: hostile in label.text(), timeout=3000)
    # the console hosts the band: its cue still goes out, with the owner's authority
    console.cue_panel.send_preset(2)
    qtbot.waitUntil(lambda: cue_texts(ana) == [hostile, "LAST TIME"], timeout=5000)
    # a server that stops: no phone shows a cue
    run(console.bridge.stop())
    assert label.text() == NO_CUE
