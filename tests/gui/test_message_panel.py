"""The console sends a stage message, and shows what the phones show (issue 12, item 4)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.validation import MESSAGE_MAX
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.message_panel import NOTHING_SHOWN

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]


def messages(client: Recorder) -> list[str]:
    return [p["message"] for p in client.payloads("message_updated")]


def test_enter_sends_the_message_to_every_phone(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    ben = followers("Ben")
    panel = console.message_panel
    assert panel.shown_label.text() == NOTHING_SHOWN
    panel.edit.setFocus()
    qtbot.keyClicks(panel.edit, "Next: Waltz, capo 2")  # Space and T type in the box
    qtbot.keyClick(panel.edit, Qt.Key.Key_Return)
    for phone in (ana, ben):
        qtbot.waitUntil(lambda p=phone: messages(p) == ["Next: Waltz, capo 2"], timeout=5000)
    # the notice comes first, then the fresh snapshot that carries it
    qtbot.waitUntil(lambda: ana.last("snapshot")["message"] == "Next: Waltz, capo 2", timeout=3000)
    qtbot.waitUntil(
        lambda: panel.shown_label.text() == "On the phones: Next: Waltz, capo 2", timeout=3000
    )
    session = console.bridge.session
    assert session is not None and not session.timeline.latest.playing  # Space did not play

    panel.edit.setText("Coda twice")
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: messages(ana)[-1:] == ["Coda twice"], timeout=5000)

    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: messages(ana)[-1:] == [""], timeout=5000)
    assert panel.edit.text() == ""
    qtbot.waitUntil(lambda: panel.shown_label.text() == NOTHING_SHOWN, timeout=3000)


def test_the_console_shows_a_message_a_phone_leader_sent(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana")
    members = console.members_panel
    qtbot.waitUntil(lambda: len(members.model.rows) == 1, timeout=3000)
    run(console.bridge.hand_over(members.model.rows[0].client_id))
    answer = run(ana.call("update_message", {"sessionId": "band", "message": "From Ana"}))
    assert answer["ok"] is True, answer
    panel = console.message_panel
    qtbot.waitUntil(lambda: panel.shown_label.text() == "On the phones: From Ana", timeout=3000)
    # The console hosts the band: its own message still reaches the phones (the core's
    # rule), and the console shows the new one.
    panel.edit.setText("From the console")
    panel.send()
    qtbot.waitUntil(lambda: messages(ana) == ["From Ana", "From the console"], timeout=5000)
    qtbot.waitUntil(
        lambda: panel.shown_label.text() == "On the phones: From the console", timeout=3000
    )


def test_the_box_takes_no_more_than_the_server_accepts(console: MainWindow) -> None:
    edit = console.message_panel.edit
    edit.setText("x" * (MESSAGE_MAX + 100))
    assert len(edit.text()) == MESSAGE_MAX


def test_a_long_message_from_a_phone_leader_takes_one_line_and_the_whole_is_its_tooltip(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    ana = followers("Ana")
    members = console.members_panel
    qtbot.waitUntil(lambda: len(members.model.rows) == 1, timeout=3000)
    panel = console.message_panel
    label = panel.shown_label
    height = panel.minimumSizeHint().height()
    window_height = console.minimumSizeHint().height()
    run(console.bridge.hand_over(members.model.rows[0].client_id))
    text = ("Next: the long medley, " * 30)[: MESSAGE_MAX - 1] + "Z"
    answer = run(ana.call("update_message", {"sessionId": "band", "message": text}))
    assert answer["ok"] is True, answer
    qtbot.waitUntil(lambda: label.full_text() == f"On the phones: {text}", timeout=3000)
    shown = label.text()
    assert shown.endswith("…") and shown.startswith("On the phones: Next: the long medley")
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.height() <= label.fontMetrics().height() * 1.5  # one line
    assert "Z" in label.toolTip() and "medley" in label.toolTip()
    # the panel and the window ask for no more room than before
    assert panel.minimumSizeHint().height() == height
    assert console.minimumSizeHint().height() <= window_height
    # a short one again: shown whole, no tooltip
    answer = run(ana.call("update_message", {"sessionId": "band", "message": "Waltz"}))
    qtbot.waitUntil(lambda: label.text() == "On the phones: Waltz", timeout=3000)
    assert label.toolTip() == ""
