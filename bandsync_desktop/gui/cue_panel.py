"""Stage cues: the leader's short calls ("2× CHORUS", "BREAK"), full width on every phone on
the next bar with a bar countdown before it (issue 15, item 4). The stage message stays for
free text; a cue is a few words, timed to the bar.

What the panel says the phones show is read from the session and its timeline (pending,
on the phones, over), not from what was typed or pressed: it is what the band sees, after the
server accepted it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.session import Session, cue_phase
from ..core.validation import (
    CUE_HOLD_BARS_DEFAULT,
    CUE_HOLD_BARS_MAX,
    CUE_HOLD_BARS_MIN,
    CUE_IN_BARS_MAX,
    CUE_TEXT_MAX,
)
from .bridge import Bridge
from .plaintext import plain_label

#: The presets, each on its own key (F1-F6; never typed, so they work in any field too).
PRESETS: Final = ("2× CHORUS", "BREAK", "LAST TIME", "EYES ON ME", "BRIDGE", "OUTRO")
PRESET_KEYS: Final = (
    Qt.Key.Key_F1,
    Qt.Key.Key_F2,
    Qt.Key.Key_F3,
    Qt.Key.Key_F4,
    Qt.Key.Key_F5,
    Qt.Key.Key_F6,
)
TYPE_KEY: Final = Qt.Key.Key_F7  # to the typed cue's box (Enter sends it)
CLEAR_KEY: Final = Qt.Key.Key_F8
REFRESH_MS: Final = 100  # the countdown is in bars: ten looks a second are plenty
NO_CUE: Final = "no cue on the phones"
TITLE: Final = "STAGE CUE · keys F1–F6, F7 to type one, F8 to clear"
#: The presets sit in one row of a laptop's middle column: a little smaller than the
#: transport's buttons (the keys are what a leader uses mid-song).
PRESET_STYLE: Final = "padding: 4px 6px; font-size: 13px;"


def key_name(key: Qt.Key) -> str:
    """``F1`` for ``Qt.Key.Key_F1``."""
    return key.name.removeprefix("Key_")


def when_text(bars: int) -> str:
    """ "next bar", "+1 bar", "+2 bars": when a cue lands, counted from the next bar."""
    if bars == 0:
        return "next bar"
    return f"+{bars} bar" if bars == 1 else f"+{bars} bars"


def hold_text(bars: int) -> str:
    """ "hold 1 bar", "hold 2 bars"."""
    return f"hold {bars} bar" if bars == 1 else f"hold {bars} bars"


def bars_text(bars: int) -> str:
    return "1 bar" if bars == 1 else f"{bars} bars"


def cue_status(session: Session, now_ms: float) -> str:
    """What the phones show of the session's cue at ``now_ms``, in words for the leader."""
    cue = session.cue
    if cue is None:
        return NO_CUE
    phase, bars = cue_phase(cue, session.timeline, now_ms)
    if phase == "pending":
        return f"Next: {cue.text} on bar {cue.bar} · in {bars_text(bars)}"
    if phase == "showing":
        return f"On the phones: {cue.text} · until bar {cue.until_bar}"
    return NO_CUE


class CuePanel(QGroupBox):
    """Preset cues (one key each), a typed cue, when it lands and how long it holds, Clear
    cue, and the cue the phones count down to or show.

    Keyboard, whatever has the keyboard (``shortcut_bindings``; the window owns the
    shortcuts): F1-F6 the presets, F7 the typed cue's box, F8 Clear cue.

    Signals:
        entry_done(): Enter sent the typed cue; the keyboard goes back to the window.
    """

    entry_done = Signal()

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(TITLE, parent)
        self._bridge = bridge
        self.preset_buttons: list[QPushButton] = []
        presets = QHBoxLayout()
        presets.setSpacing(4)
        for index, (text, key) in enumerate(zip(PRESETS, PRESET_KEYS, strict=True)):
            button = QPushButton(text)
            button.setStyleSheet(PRESET_STYLE)
            button.setToolTip(f"{text} on every phone, on the next bar ({key_name(key)})")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the show's keys stay the window's
            button.clicked.connect(lambda _=False, i=index: self.send_preset(i))
            presets.addWidget(button, 1)
            self.preset_buttons.append(button)

        self.edit = QLineEdit()
        self.edit.setMaxLength(CUE_TEXT_MAX)  # the server's own limit, from the core
        self.edit.setPlaceholderText(f"Type a cue ({key_name(TYPE_KEY)}), Enter sends it")
        self.edit.setClearButtonEnabled(True)
        self.edit.returnPressed.connect(self.send_typed)
        self.send_button = QPushButton("Cue")
        self.send_button.setToolTip("Show the typed cue on every phone, on the next bar")
        self.send_button.clicked.connect(self.send_typed)
        self.clear_button = QPushButton("Clear cue")
        self.clear_button.setToolTip(f"Take the cue off every phone now ({key_name(CLEAR_KEY)})")
        self.clear_button.clicked.connect(self.clear)
        for button in (self.send_button, self.clear_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self.when = QComboBox()
        for bars in range(CUE_IN_BARS_MAX + 1):
            self.when.addItem(when_text(bars), bars)
        self.when.setToolTip("When a cue lands: on the next bar, or bars after it")
        self.hold = QComboBox()
        for bars in range(CUE_HOLD_BARS_MIN, CUE_HOLD_BARS_MAX + 1):
            self.hold.addItem(hold_text(bars), bars)
        self.hold.setCurrentIndex(self.hold.findData(CUE_HOLD_BARS_DEFAULT))
        self.hold.setToolTip("How many bars a cue stays on the phones")
        for combo in (self.when, self.hold):
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        # The cue may have been given by a phone that leads: plain text, wrapped.
        self.shown_label = plain_label(NO_CUE, outside=True)
        self.shown_label.setObjectName("muted")

        typed = QHBoxLayout()
        typed.addWidget(self.edit, 1)
        typed.addWidget(self.when)
        typed.addWidget(self.hold)
        typed.addWidget(self.send_button)
        typed.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addLayout(presets)
        layout.addLayout(typed)
        layout.addWidget(self.shown_label)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def shortcut_bindings(self) -> list[tuple[Qt.Key, Callable[[], object]]]:
        """The panel's keys and what each does, for the window's shortcuts."""
        bindings: list[tuple[Qt.Key, Callable[[], object]]] = [
            (key, lambda i=index: self.send_preset(i)) for index, key in enumerate(PRESET_KEYS)
        ]
        bindings.append((TYPE_KEY, self.start_typing))
        bindings.append((CLEAR_KEY, self.clear))
        return bindings

    # -- commands -----------------------------------------------------------------------

    def send_preset(self, index: int) -> None:
        self._send(PRESETS[index])

    def send_typed(self) -> None:
        """Send the typed cue (it stays in the box for another go) and give the keyboard
        back to the show's keys."""
        text = self.edit.text().strip()
        if text:
            self._send(text)
        self.entry_done.emit()

    def start_typing(self) -> None:
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()

    def clear(self) -> None:
        self._bridge.clear_cue()

    def _send(self, text: str) -> None:
        self._bridge.cue(text, int(self.when.currentData()), int(self.hold.currentData()))

    # -- what the phones show -------------------------------------------------------------

    def show_session(self, session: Session) -> None:
        self.refresh()
        if session.cue is not None and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """The cue's state at the server's now (pending, on the phones, over)."""
        session = self._bridge.session
        now = self._bridge.now_ms()
        if session is None or now is None:
            self.show_stopped()
            return
        text = cue_status(session, now)
        if self.shown_label.text() != text:
            self.shown_label.setText(text)
        if text == NO_CUE:
            self._timer.stop()

    def show_stopped(self) -> None:
        """The server stopped: no phone shows a cue now."""
        self._timer.stop()
        self.shown_label.setText(NO_CUE)
