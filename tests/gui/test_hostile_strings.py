"""No string from the network is ever rendered as rich text by the console (issue 11, #2).

Qt shows a string that looks like HTML as rich text wherever the text format is
``AutoText`` (labels, tooltips, message boxes): ``<img src="file:///dev/zero">`` in a name
made Qt read /dev/zero until the console (and the server in it) died. Here hostile phones
join over real sockets with display names, User-Agents, a song title, a chart and a message
that look like HTML, and the test walks *every* widget of the window (labels, buttons, item
views and their tooltips, text edits, window titles, actions, status bar), so a widget added
later is covered too, and checks that each string shows exactly as it was typed.

The payloads only probe: an ``<img>`` points at a file that does not exist, never at
/dev/zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractItemModel, QEvent, QModelIndex, Qt
from PySide6.QtGui import QAction, QHelpEvent, QTextDocument
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QStatusBar,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from bandsync_desktop.gui.dialogs import fatal_error_box, port_question_box
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.plaintext import plain_tooltip
from bandsync_desktop.gui.setlist import SetList, SetSong, write_set_file
from bandsync_desktop.gui.setlist_panel import SongDialog
from bandsync_desktop.gui.sizing import ElidedLabel

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]

# Every payload carries a token of its own ("HX" + two letters + two digits + "Z": no token
# is part of another), so a token seen anywhere tells which payload must be there in full.
PAYLOADS: dict[str, str] = {}


def _payload(token: str, make: Callable[[str], str]) -> str:
    text = make(token)
    PAYLOADS[token] = text
    return text


def img(t: str) -> str:
    return f'<img src="file:///nonexistent-{t}">'


def bold(t: str) -> str:
    return f"<b>{t}</b>"


def red(t: str) -> str:
    return f"<font color=red>{t} HACKED</font>"


def link(t: str) -> str:
    return f"<a href=x>{t}</a>"


def entity(t: str) -> str:
    return f"&amp;{t}&lt;"  # rich text would show "&HX..<"


def heading(t: str) -> str:
    return f"<h1 style='color:red'>{t}</h1>"


KINDS = (img, bold, red, link, entity, heading)


def token(area: str, number: int) -> str:
    return f"HX{area}{number:02d}Z"


def hostile(area: str, number: int, make: Callable[[str], str]) -> str:
    return _payload(token(area, number), make)


# Display names (at most 40 characters): one member per kind.
NAMES = [hostile("NM", n, make) for n, make in enumerate(KINDS)]
# User-Agents (at most 200 characters); the first word (what the Device column shows of an
# agent it does not recognise) is a whole payload.
AGENTS = [
    " ".join(
        (
            hostile("UA", 10 * n, bold),
            hostile("UA", 10 * n + 1, img),
            hostile("UA", 10 * n + 2, red),
            hostile("UA", 10 * n + 3, entity),
        )
    )
    for n in range(len(NAMES))
]
TITLE = " ".join(hostile("TI", n, make) for n, make in enumerate((red, img, bold)))
CHART = "\n".join(hostile("CH", n, make) for n, make in enumerate(KINDS)) + "\n  two  spaces"
MESSAGE = "\n".join(hostile("MS", n, make) for n, make in enumerate(KINDS))
SET_NAME = hostile("SN", 0, bold)
SET_TITLE = " ".join(hostile("ST", n, make) for n, make in enumerate((img, red)))
SET_CHART = "\n".join(hostile("SC", n, make) for n, make in enumerate(KINDS))
ERROR_TITLE = hostile("ET", 0, red)
ERROR_TEXT = "\n".join(hostile("EX", n, make) for n, make in enumerate(KINDS))


# -- what Qt displays ----------------------------------------------------------------------


def _html_as_shown(text: str) -> str:
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def tooltip_as_shown(text: str) -> str:
    """A tooltip (no format setter) is rich text exactly when ``Qt::mightBeRichText``."""
    return _html_as_shown(text) if QtGuiNamespace.mightBeRichText(text) else text


def label_as_shown(label: QLabel) -> str:
    text = label.text()
    form = label.textFormat()
    if form == Qt.TextFormat.RichText or (
        form == Qt.TextFormat.AutoText and QtGuiNamespace.mightBeRichText(text)
    ):
        return _html_as_shown(text)
    if form == Qt.TextFormat.MarkdownText:
        document = QTextDocument()
        document.setMarkdown(text)
        return document.toPlainText()
    return text


@dataclass(frozen=True, slots=True)
class Shown:
    """One string a widget holds (``raw``) and what Qt displays of it (``shown``); ``shown``
    is None when the test cannot tell (an item view with a delegate of its own)."""

    where: str
    raw: str
    shown: str | None


def _name(widget: QWidget) -> str:
    return f"{type(widget).__name__}({widget.objectName() or hex(id(widget))})"


def _columns(model: QAbstractItemModel, parent: QModelIndex) -> int:
    try:
        return model.columnCount(parent)
    except TypeError:  # Qt's list models make it private: a list has one column
        return 1 if not parent.isValid() else 0


def _rows(model: QAbstractItemModel, parent: QModelIndex) -> int:
    try:
        return model.rowCount(parent)
    except TypeError:
        return 0


def _model_texts(where: str, view: QAbstractItemView) -> Iterator[Shown]:
    model: QAbstractItemModel | None = view.model()
    if model is None:
        return
    if isinstance(view, QHeaderView):
        # A header shows the header data of its model (often the table's own model).
        orientation = view.orientation()
        top = QModelIndex()
        horizontal = orientation == Qt.Orientation.Horizontal
        for section in range(_columns(model, top) if horizontal else _rows(model, top)):
            label = model.headerData(section, orientation, Qt.ItemDataRole.DisplayRole)
            if isinstance(label, str):
                yield Shown(f"{where} section {section}", label, label)
            tip = model.headerData(section, orientation, Qt.ItemDataRole.ToolTipRole)
            if isinstance(tip, str):
                yield Shown(f"{where} section {section} tooltip", tip, tooltip_as_shown(tip))
        return

    def walk(parent: QModelIndex) -> Iterator[Shown]:
        for row in range(_rows(model, parent)):
            for column in range(_columns(model, parent)):
                index = model.index(row, column, parent)
                at = f"{where}[{row},{column}]"
                delegate = view.itemDelegateForIndex(index)
                # Qt's own delegates (the stock ones, a combo box's) draw DisplayRole as
                # plain text; a delegate written in Python may not, so it is not vouched for.
                plain = type(delegate).__module__.startswith("PySide6.")
                text = model.data(index, Qt.ItemDataRole.DisplayRole)
                if isinstance(text, str):
                    yield Shown(at, text, text if plain else None)
                for role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.WhatsThisRole):
                    tip = model.data(index, role)
                    if isinstance(tip, str):
                        yield Shown(f"{at} {role.name}", tip, tooltip_as_shown(tip))
                tip = model.data(index, Qt.ItemDataRole.StatusTipRole)
                if isinstance(tip, str):
                    yield Shown(f"{at} status tip", tip, tip)
                if column == 0 and _rows(model, index) > 0:
                    yield from walk(index)

    yield from walk(QModelIndex())


def shown_texts(root: QWidget) -> Iterator[Shown]:
    """Every string ``root`` and its descendants show, with what Qt displays of it."""
    for widget in (root, *root.findChildren(QWidget)):
        where = _name(widget)
        if widget.isWindow():
            yield Shown(f"{where} window title", widget.windowTitle(), widget.windowTitle())
        for tip_kind, tip in (("tooltip", widget.toolTip()), ("what's this", widget.whatsThis())):
            if tip:
                yield Shown(f"{where} {tip_kind}", tip, tooltip_as_shown(tip))
        if widget.statusTip():
            yield Shown(f"{where} status tip", widget.statusTip(), widget.statusTip())
        if isinstance(widget, ElidedLabel):
            # One line cut to its width: what it draws must be its own text, literally, and
            # that a prefix of the whole (which its tooltip, walked above, holds).
            shown = label_as_shown(widget)
            whole = widget.full_text()
            literal = shown == widget.text() and whole.startswith(shown.removesuffix("…"))
            yield Shown(where, whole, whole if literal else shown)
        elif isinstance(widget, QLabel):
            yield Shown(where, widget.text(), label_as_shown(widget))
        elif isinstance(widget, QAbstractButton):
            yield Shown(where, widget.text(), widget.text())  # buttons draw plain text
        elif isinstance(widget, QGroupBox):
            yield Shown(where, widget.title(), widget.title())
        elif isinstance(widget, QLineEdit):
            yield Shown(where, widget.text(), widget.text())
            yield Shown(f"{where} placeholder", widget.placeholderText(), widget.placeholderText())
        elif isinstance(widget, QTextEdit | QPlainTextEdit):
            # What the document holds is what shows: text inserted as HTML lost its tags.
            text = widget.toPlainText()
            yield Shown(where, text, text)
        elif isinstance(widget, QComboBox):
            for index in range(widget.count()):
                yield Shown(f"{where} item {index}", widget.itemText(index), widget.itemText(index))
        elif isinstance(widget, QStatusBar):
            yield Shown(where, widget.currentMessage(), widget.currentMessage())
        if isinstance(widget, QAbstractItemView):
            yield from _model_texts(where, widget)
    for action in root.findChildren(QAction):
        yield Shown(f"action {action.text()!r}", action.text(), action.text())
        if action.toolTip():
            yield Shown(
                f"action {action.text()!r} tooltip",
                action.toolTip(),
                tooltip_as_shown(action.toolTip()),
            )


def literal_problems(root: QWidget) -> list[str]:
    """Where a hostile string is not displayed as typed, or a label could render it."""
    problems = []
    for item in shown_texts(root):
        held = [t for t in PAYLOADS if t in item.raw or (item.shown and t in item.shown)]
        for found in held:
            if item.shown is None:
                problems.append(f"{item.where}: a delegate of its own shows {item.raw!r}")
            elif PAYLOADS[found] not in item.shown:
                problems.append(f"{item.where}: {PAYLOADS[found]!r} is displayed as {item.shown!r}")
    for label in (root, *root.findChildren(QWidget)):
        # Every label, not only the ones fed hostile text today: a label shows plain text.
        plain = not isinstance(label, QLabel) or label.textFormat() == Qt.TextFormat.PlainText
        if not plain and label.text():
            problems.append(f"{_name(label)} {label.text()!r} has format {label.textFormat().name}")
    return problems


def assert_literal(root: QWidget) -> None:
    problems = literal_problems(root)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def tokens_shown(root: QWidget) -> set[str]:
    return {t for item in shown_texts(root) for t in PAYLOADS if item.shown and t in item.shown}


def tokens_of(text: str) -> set[str]:
    return {t for t in PAYLOADS if t in text}


# -- the console under attack --------------------------------------------------------------


def attack(console: MainWindow, followers: Followers, qtbot: QtBot, run: Run) -> list[Recorder]:
    """Hostile members join; the first is handed the lead and sets a song and a message."""
    phones = [followers(name, user_agent=agent) for name, agent in zip(NAMES, AGENTS, strict=True)]
    model = console.members_panel.model
    qtbot.waitUntil(lambda: [r.name for r in model.rows][-len(NAMES) :] == NAMES, timeout=5000)
    assert [r.device for r in model.rows][-len(AGENTS) :] == AGENTS
    console.bridge.hand_over(next(r.client_id for r in model.rows if r.name == NAMES[0]))
    qtbot.waitUntil(lambda: console.connection_panel.leader_label.text() == NAMES[0], timeout=5000)
    leader = phones[0]
    answer = run(
        leader.call("set_song", {"sessionId": "band", "song": {"title": TITLE, "chart": CHART}})
    )
    assert answer["ok"] is True, answer
    answer = run(leader.call("update_message", {"sessionId": "band", "message": MESSAGE}))
    assert answer["ok"] is True, answer
    panel = console.setlist_panel
    qtbot.waitUntil(lambda: panel.song_title.text() == TITLE, timeout=5000)
    qtbot.waitUntil(lambda: panel.chart_view.toPlainText() == CHART, timeout=5000)
    qtbot.waitUntil(
        lambda: any(f"Song: {TITLE}" in line for line in console.log_panel.texts()), timeout=3000
    )
    qtbot.waitUntil(
        lambda: any(f"Leader is now {NAMES[0]}" in line for line in console.log_panel.texts()),
        timeout=3000,
    )
    return phones


def import_hostile_set(console: MainWindow, tmp_path: Path) -> None:
    """A set file someone else made: its name, titles and charts are outside text too."""
    path = tmp_path / "from-a-friend.json"
    song = SetSong(title=SET_TITLE, chart=SET_CHART)
    write_set_file(SetList(SET_NAME, [song]), path)
    console.setlist_panel.import_file(path)
    assert console.setlist_panel.setlist.name == SET_NAME


def test_every_widget_shows_hostile_strings_literally(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run, tmp_path: Path
) -> None:
    attack(console, followers, qtbot, run)
    import_hostile_set(console, tmp_path)
    console.statusBar().showMessage(f"{NAMES[1]} left")  # as command_failed shows one
    qtbot.waitUntil(lambda: console.members_panel.model.rows[0].role == "leader", timeout=3000)

    assert_literal(console)
    # The walk did look at the strings of every source: names (table, leader label, log),
    # agents (Device column and its tooltip), the song (title label, chart, log) and the
    # imported set (set name, song list and its tooltips).
    shown = tokens_shown(console)
    for source in (*NAMES, AGENTS[0].split(" ")[0], TITLE, CHART, SET_NAME, SET_TITLE, SET_CHART):
        assert tokens_of(source) <= shown, source
    # The Device tooltip holds the whole agent, every payload of it literal.
    for agent in AGENTS:
        assert tokens_of(agent) <= shown


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # offscreen: no stacking
def test_a_shown_tooltip_is_literal(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    """Hover the Device cell: the tooltip Qt really pops up shows the agent as sent."""
    followers(NAMES[2], user_agent=AGENTS[2])
    table = console.members_panel.table
    model = console.members_panel.model
    qtbot.waitUntil(lambda: len(model.rows) == 1, timeout=5000)
    cell = table.visualRect(model.index(0, 3)).center()
    viewport = table.viewport()
    event = QHelpEvent(QEvent.Type.ToolTip, cell, viewport.mapToGlobal(cell))
    QApplication.sendEvent(viewport, event)

    def tip_label() -> QLabel | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QLabel) and widget.objectName() == "qtooltip_label":
                return widget
        return None

    qtbot.waitUntil(lambda: tip_label() is not None and tip_label().isVisible(), timeout=3000)
    label = tip_label()
    assert label is not None
    assert label_as_shown(label) == AGENTS[2]
    label.hide()


def test_dialogs_with_outside_text_show_it_literally(console: MainWindow, qtbot: QtBot) -> None:
    """The fatal-error box (a failing task's message), the port question, the song editor."""
    box = fatal_error_box(console, ERROR_TITLE, ERROR_TEXT)
    try:
        assert_literal(box)
        assert tokens_of(ERROR_TEXT) <= tokens_shown(box)
    finally:
        box.deleteLater()
    question = port_question_box(console, 3001, 3002)
    try:
        assert_literal(question)
    finally:
        question.deleteLater()
    dialog = SongDialog(SetSong(title=SET_TITLE, chart=SET_CHART), parent=console)
    try:
        assert_literal(dialog)
        assert tokens_of(SET_TITLE + SET_CHART) <= tokens_shown(dialog)
    finally:
        dialog.deleteLater()


def test_plain_tooltip_round_trips_what_qt_shows(qapp: object) -> None:
    for text in (*PAYLOADS.values(), CHART, "plain", "a  b\n\tc", "<p>", "&", ""):
        assert tooltip_as_shown(plain_tooltip(text)) == text


LAPTOP = (1366, 768)


def test_console_screenshot_with_hostile_names(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run, tmp_path: Path
) -> None:
    """The console at a laptop size with hostile names, saved for a person to look at; a
    phone's long name or title never makes the window ask for more room."""
    # First the same band with harmless strings (rows enough for the table's scroll bar).
    for number in range(len(NAMES)):
        followers(f"Member {number}", user_agent="Mozilla/5.0 (iPhone) Safari/604.1")
    qtbot.waitUntil(lambda: len(console.members_panel.model.rows) == len(NAMES), timeout=5000)
    qtbot.wait(1200)
    quiet = console.minimumSizeHint()
    attack(console, followers, qtbot, run)
    qtbot.wait(1200)  # a status refresh (leader label) and a repaint
    attacked = console.minimumSizeHint()
    assert attacked.width() <= quiet.width() and attacked.height() <= quiet.height()
    console.resize(*LAPTOP)
    qtbot.waitUntil(lambda: console.height() == LAPTOP[1], timeout=2000)
    image = console.grab()
    assert not image.isNull()
    assert image.save(str(tmp_path / "hostile_console.png"))
    assert_literal(console)
    # The hostile labels wrap inside their columns instead of running out of them.
    for label in (console.connection_panel.leader_label, console.setlist_panel.song_title):
        box = label.parentWidget()
        assert box is not None
        assert box.rect().contains(label.geometry()), label.text()
