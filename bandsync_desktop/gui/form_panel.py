"""The song's form and the leader's calls on it (issue 15, item 3): which section plays,
jump to a section (at the next bar or the end of this one), vamp, end. A row under the
transport's buttons: the calls are transport, and the window keeps a laptop's height.

Like every panel, what it says the band plays is read from the session and its timeline
(the section the transport is in, the call the band waits for), not from what was pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.conductor import CallAt, song_bar_at
from ..core.session import Session
from ..core.song import SongMap
from .bridge import Bridge
from .cue_panel import bars_text
from .sizing import ElidedLabel

JUMP_KEY: Final = Qt.Key.Key_J
VAMP_KEY: Final = Qt.Key.Key_V
END_KEY: Final = Qt.Key.Key_E
NO_FORM: Final = "no form (File › Play the chart's form, then load a chart with bars)"
REFRESH_MS: Final = 100
#: The row fits the transport's column: its buttons a little tighter than the transport's.
CALL_STYLE: Final = "padding: 6px 8px;"
MENU_CALL_STYLE: Final = "padding: 6px 22px 6px 8px;"


def form_status(session: Session, now_ms: float) -> str:
    """ "Verse · bar 2 of 8 · → Bridge in 3 bars": where the form is, and what is coming."""
    form = session.form
    segue = session.segue
    timeline = session.timeline
    if segue is None:
        next_song = ""
    elif segue.at_ms is not None and segue.at_ms <= now_ms:
        next_song = f"→ {segue.song.title} now"
    elif segue.bar is not None and timeline.is_playing_at(now_ms):
        to_go = max(segue.bar - song_bar_at(timeline, now_ms), 1)
        next_song = f"→ next song {segue.song.title} in {bars_text(to_go)}"
    else:
        next_song = f"→ next song {segue.song.title} at the end"
    if form is None:
        return next_song or NO_FORM
    bar = max(song_bar_at(timeline, now_ms), 1)
    index = form.section_of_bar(bar)
    section = form.sections[index]
    in_section = min(bar - form.section_start_bar(index) + 1, section.bars)
    parts = [f"{section.name} · bar {in_section} of {section.bars}"]
    show = session.show
    if show.vamp is not None:
        parts.append(f"vamp on {form.sections[show.vamp].name}")
    coming = show.coming
    if coming is not None and (show.placed_at is None or show.placed_at > now_ms):
        what = (
            form.sections[coming.section].name
            if coming.kind == "jump" and coming.section is not None
            else "end"
        )
        to_go = coming.bar - bar if timeline.is_playing_at(now_ms) else 0
        parts.append(f"→ {what} in {bars_text(max(to_go, 1))}")
    if next_song:
        parts.append(next_song)
    if not timeline.is_playing_at(now_ms) and not timeline.latest.playing:
        parts.append(f"{form.total_bars} bars in all")
    return " · ".join(parts)


class FormPanel(QWidget):
    """The sections to jump to, Jump, Vamp and End, and where the form is.

    Jump and End land on the next bar; their menus (the arrow, or Shift with the key) at
    the end of the section playing. Keyboard, whatever has the keyboard
    (``shortcut_bindings``, owned by the window): J jump to the chosen section, V vamp on
    and off, E end; Shift+J and Shift+E at the section's end; in a text box they type.
    """

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._sections: tuple[str, ...] = ()
        self.section_box = QComboBox()
        self.section_box.setMinimumContentsLength(3)
        self.section_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.section_box.setToolTip("The section a jump goes to")
        self.jump_button = self._call_button(
            "Jump",
            "Go to the chosen section on the next bar (J)",
            "Jump at the end of this section (Shift+J)",
            lambda at: self.jump(at),
        )
        self.vamp_button = QPushButton("Vamp")
        self.vamp_button.setObjectName("vamp")
        self.vamp_button.setCheckable(True)
        self.vamp_button.setStyleSheet(CALL_STYLE)
        self.vamp_button.setToolTip("Repeat the section playing until released (V)")
        self.vamp_button.clicked.connect(self.toggle_vamp)
        self.end_button = self._call_button(
            "End",
            "End the song after this bar (E)",
            "End after this section (Shift+E)",
            lambda at: self.end(at),
        )
        for widget in (self.section_box, self.vamp_button):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the show's keys stay the window's
        self.status_label = ElidedLabel(NO_FORM)
        self.status_label.setObjectName("muted")

        calls = QHBoxLayout()
        calls.setContentsMargins(0, 0, 0, 0)
        calls.addWidget(self.section_box, 1)
        calls.addWidget(self.jump_button)
        calls.addWidget(self.vamp_button)
        calls.addWidget(self.end_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(calls)
        layout.addWidget(self.status_label)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._enable(None)

    def _call_button(
        self, text: str, tip: str, later: str, call: Callable[[CallAt], None]
    ) -> QToolButton:
        """A button that calls on the next bar, its menu at the section's end."""
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setStyleSheet(MENU_CALL_STYLE)
        button.clicked.connect(lambda: call("bar"))
        menu = QMenu(button)
        action = QAction(later, menu)
        action.triggered.connect(lambda: call("section"))
        menu.addAction(action)
        button.setMenu(menu)
        return button

    def shortcut_bindings(self) -> list[tuple[QKeySequence, Callable[[], object]]]:
        """The panel's keys and what each does, for the window's shortcuts."""
        shift = Qt.KeyboardModifier.ShiftModifier
        return [
            (QKeySequence(JUMP_KEY), lambda: self.jump("bar")),
            (QKeySequence(shift | JUMP_KEY), lambda: self.jump("section")),
            (QKeySequence(VAMP_KEY), self.toggle_vamp),
            (QKeySequence(END_KEY), lambda: self.end("bar")),
            (QKeySequence(shift | END_KEY), lambda: self.end("section")),
        ]

    # -- commands -----------------------------------------------------------------------

    def jump(self, at: CallAt = "bar") -> None:
        index = self.section_box.currentIndex()
        if self._sections and index >= 0:
            self._bridge.jump(index, at)

    def toggle_vamp(self) -> None:
        session = self._bridge.session
        if session is None or session.form is None:
            self.vamp_button.setChecked(False)
            return
        self._bridge.vamp(session.show.vamp is None)

    def end(self, at: CallAt = "bar") -> None:
        if self._sections:
            self._bridge.end_song(at)

    # -- what the band plays ------------------------------------------------------------

    def show_session(self, session: Session) -> None:
        form = session.form
        names = tuple(s.name for s in form.sections) if form is not None else ()
        if names != self._sections:
            self._sections = names
            self.section_box.clear()
            for number, name in enumerate(names, 1):
                self.section_box.addItem(f"{number}. {name}", number - 1)
        self._enable(form)
        self.vamp_button.setChecked(session.show.vamp is not None)
        self.refresh()
        counting = form is not None or session.segue is not None  # bars to go tick on
        if counting and not self._timer.isActive():
            self._timer.start()
        elif not counting:
            self._timer.stop()

    def _enable(self, form: SongMap | None) -> None:
        for widget in (self.section_box, self.jump_button, self.vamp_button, self.end_button):
            widget.setEnabled(form is not None)

    def refresh(self) -> None:
        session = self._bridge.session
        now = self._bridge.now_ms()
        if session is None or now is None:
            self.show_stopped()
            return
        self.status_label.set_full_text(form_status(session, now))

    def show_stopped(self) -> None:
        self._timer.stop()
        self._sections = ()
        self.section_box.clear()
        self._enable(None)
        self.vamp_button.setChecked(False)
        self.status_label.set_full_text(NO_FORM)
