"""The show's keys work whatever has the keyboard (issue 12, item 5).

After typing a tempo and Enter, Space, T, Up/Down and Esc went to the tempo box (which then
showed blank). Here the keyboard is put in every input of the window in turn (found by
walking the window, so an input added later is covered too) and the show's keys are pressed
there, as a person presses them: each must do the show's thing and leave the input as it
was, except that a text field keeps its typing keys (Space in the message box types a space).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetSong

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]


def inputs(window: MainWindow) -> list[QWidget]:
    """Every widget of the window that can take the keyboard."""
    found = []
    for widget in window.findChildren(QWidget):
        if widget.isWindow() or not widget.isVisibleTo(window) or not widget.isEnabled():
            continue
        if widget.focusPolicy() == Qt.FocusPolicy.NoFocus or widget.focusProxy() is not None:
            continue
        if isinstance(widget.parentWidget(), QAbstractSpinBox):
            continue  # a spin box's own line edit: the spin box takes the focus
        found.append(widget)
    return found


def state(widget: QWidget) -> object:
    """What a key press in ``widget`` would change, if the widget took the key."""
    if isinstance(widget, QAbstractSpinBox):
        return widget.text()
    if isinstance(widget, QComboBox):
        return widget.currentIndex()
    if isinstance(widget, QLineEdit):
        return widget.text()
    if isinstance(widget, QAbstractItemView):
        # The current item (the log adds lines above it: its row moves, the item does not).
        current = widget.currentIndex()
        return current.data() if current.isValid() else None
    return None


def on_the_stands(client: Recorder) -> str | None:
    change = client.last("song_changed")
    return change["song"]["title"] if change and change.get("song") else None


def last_seek(client: Recorder) -> float | None:
    seek = client.last("seek")
    return seek["positionMs"] if seek else None


def focus(window: MainWindow, qtbot: QtBot, widget: QWidget) -> None:
    window.activateWindow()
    model = widget.model() if isinstance(widget, QAbstractItemView) else None
    if isinstance(widget, QAbstractItemView) and model is not None and model.rowCount() > 1:
        widget.setCurrentIndex(model.index(1, 0))  # where an arrow key would move it
    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=2000)


def name(widget: QWidget) -> str:
    return f"{type(widget).__name__} of {type(widget.parentWidget()).__name__}"


@pytest.fixture
def band(console: MainWindow, followers: Followers, qtbot: QtBot) -> Recorder:
    panel = console.setlist_panel
    panel.add_song(SetSong("One", 100.0, 4, 4, 0, "| C |"))
    panel.add_song(SetSong("Two", 130.0, 3, 4, 0, "| G |"))
    ana = followers("Ana")
    qtbot.waitUntil(lambda: len(console.members_panel.model.rows) == 1, timeout=3000)
    return ana


def test_every_input_of_the_window_is_covered(console: MainWindow, band: Recorder) -> None:
    kinds = {type(widget).__name__ for widget in inputs(console)}
    # The tempo box, count-in and beats, the beat unit and the sets, the song list and the
    # member table and the log, the message box, and the window itself.
    assert {"QSpinBox", "CountInBox", "QComboBox", "QListWidget", "QTableView", "QLineEdit"} <= (
        kinds
    )


def test_show_keys_work_with_the_keyboard_in_any_input(
    console: MainWindow, band: Recorder, qtbot: QtBot
) -> None:
    bridge = console.bridge
    tempo = console.tempo_panel

    def playing() -> bool:
        session = bridge.session
        return bool(session and session.timeline.latest.playing)

    checked = []
    for widget in inputs(console):
        focus(console, qtbot, widget)
        before = state(widget)
        shown = tempo.value_label.text()

        qtbot.keyClick(widget, Qt.Key.Key_Up)
        assert tempo.pending == float(shown) + 1, name(widget)  # shown at once, sent later
        assert tempo.value_label.text() == f"{float(shown) + 1:g}", name(widget)
        qtbot.keyClick(widget, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
        assert tempo.pending == float(shown) - 4, name(widget)
        qtbot.keyClick(widget, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
        qtbot.keyClick(widget, Qt.Key.Key_Down)
        assert tempo.pending == float(shown), name(widget)  # back where it was: nothing to send

        if isinstance(widget, QLineEdit):
            # A text field: Space and letters are text.
            qtbot.keyClick(widget, Qt.Key.Key_Space)
            qtbot.keyClick(widget, Qt.Key.Key_T)
            assert widget.text() == f"{before} t", name(widget)
            assert not playing() and tempo.tap_tempo.count == 0
            widget.clear()
        else:
            taps = tempo.tap_tempo.count
            qtbot.keyClick(widget, Qt.Key.Key_T)
            assert tempo.tap_tempo.count == taps + 1, name(widget)
            tempo.tap_tempo.reset()
            qtbot.keyClick(widget, Qt.Key.Key_Space)
            qtbot.waitUntil(playing, timeout=3000)
            qtbot.keyClick(widget, Qt.Key.Key_Space)
            qtbot.waitUntil(lambda: not playing(), timeout=3000)
            assert state(widget) == before, name(widget)
        checked.append(name(widget))
    assert len(checked) >= 9, checked


def test_escape_and_song_keys_work_in_any_input(
    console: MainWindow, band: Recorder, qtbot: QtBot, run: Run
) -> None:
    bridge = console.bridge
    songs = console.setlist_panel.songs
    for widget in inputs(console):
        # A bar line at 120 BPM and at song One's 100 BPM (4/4): a console seek snaps to one.
        run(bridge.seek(24_000.0))
        qtbot.waitUntil(lambda: last_seek(band) == 24_000.0, timeout=3000)
        focus(console, qtbot, widget)
        before = state(widget)
        qtbot.keyClick(widget, Qt.Key.Key_Escape)  # stop: back to the top for everyone
        qtbot.waitUntil(lambda: last_seek(band) == 0.0, timeout=3000)
        songs.setCurrentRow(0)
        qtbot.keyClick(widget, Qt.Key.Key_PageDown)
        qtbot.waitUntil(lambda: on_the_stands(band) == "Two", timeout=3000)
        qtbot.keyClick(widget, Qt.Key.Key_PageUp)
        qtbot.waitUntil(lambda: on_the_stands(band) == "One", timeout=3000)
        if widget is not songs:
            assert state(widget) == before, name(widget)


def test_enter_commits_the_tempo_and_gives_the_keyboard_back(
    console: MainWindow, band: Recorder, qtbot: QtBot
) -> None:
    entry = console.tempo_panel.entry
    focus(console, qtbot, entry)
    entry.selectAll()
    qtbot.keyClicks(entry, "133")
    qtbot.keyClick(entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(band.payloads("tempo_changed")), timeout=3000)
    assert band.payloads("tempo_changed")[-1]["tempoBpm"] == 133.0
    assert not entry.hasFocus()
    assert QApplication.focusWidget() is console.centralWidget()
    # The show's keys now go to the window, and the box keeps showing the tempo.
    target = QApplication.focusWidget()
    qtbot.keyClick(target, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(band.payloads("play")), timeout=3000)
    qtbot.keyClick(target, Qt.Key.Key_T)
    assert console.tempo_panel.tap_tempo.count == 1
    qtbot.keyClick(target, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: bool(band.payloads("pause")), timeout=3000)
    assert entry.text() == "133 BPM"
