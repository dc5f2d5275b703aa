"""The stage message: a line the leader types, shown on every phone ("Next: Waltz, capo 2")."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ..core.session import Session
from ..core.validation import MESSAGE_MAX
from .bridge import Bridge
from .sizing import ElidedLabel

NOTHING_SHOWN = "nothing on the phones"


class MessagePanel(QGroupBox):
    """A line edit with Send (or Enter) and Clear, and what the phones show now.

    What the phones show is read from the session (``show_session``), not from the line
    edit: it says what the band actually sees, after the server accepted it.
    """

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__("STAGE MESSAGE", parent)
        self._bridge = bridge
        self.edit = QLineEdit()
        self.edit.setMaxLength(MESSAGE_MAX)  # the server's own limit, from the core
        self.edit.setPlaceholderText("A line for every phone, e.g. “Next: Waltz, capo 2”")
        self.edit.setClearButtonEnabled(True)
        self.edit.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Show the line on every phone (Enter)")
        self.send_button.clicked.connect(self.send)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Take the message off the phones")
        self.clear_button.clicked.connect(self.clear)
        for button in (self.send_button, self.clear_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # The message may have been set by a phone that leads, up to 500 characters: one
        # line, cut to the panel's width (the whole of it in the tooltip), so it never takes
        # the room of the panels under it.
        self.shown_label = ElidedLabel(NOTHING_SHOWN)
        self.shown_label.setObjectName("muted")

        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.send_button)
        row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.shown_label)

    def send(self) -> None:
        """Send the typed line to the band (it stays in the box for another send)."""
        self._bridge.set_message(self.edit.text().strip())

    def clear(self) -> None:
        """Take the message off the phones and empty the box."""
        self.edit.clear()
        self._bridge.set_message("")

    def show_session(self, session: Session) -> None:
        text = f"On the phones: {session.message}" if session.message else NOTHING_SHOWN
        self.shown_label.set_full_text(text)

    def show_stopped(self) -> None:
        """The server stopped: no phone shows anything now."""
        self.shown_label.set_full_text(NOTHING_SHOWN)
