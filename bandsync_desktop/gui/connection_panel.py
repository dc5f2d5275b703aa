"""Where phones connect: LAN URLs, a QR code, the leader key, server and store state,
follower count, event-loop lag and the band's gear; start/stop of the server."""

from __future__ import annotations

import io

import segno
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .bridge import ServerStatus
from .plaintext import plain_label, set_plain_tooltip
from .sizing import QrView, SteadyLabel

QR_SIZE = 220  # the code's size where there is room
QR_MIN = 132  # a laptop's: four pixels per module of a LAN URL's 29-module code + border


def _qr_png(text: str, scale: int) -> bytes:
    buffer = io.BytesIO()
    qr = segno.make(text, error="m")
    qr.save(buffer, kind="png", scale=scale, border=2, dark="#000000", light="#ffffff")
    return buffer.getvalue()


def qr_pixmap(text: str, size: int = QR_SIZE) -> QPixmap:
    """A QR code of ``text`` as a pixmap (segno writes PNG bytes; no Pillow needed)."""
    modules = int(segno.make(text, error="m").symbol_size(scale=1, border=2)[0])
    pixmap = QPixmap()
    pixmap.loadFromData(_qr_png(text, max(1, size // modules)), "PNG")
    return pixmap


def qr_image(text: str) -> QImage:
    """A QR code of ``text`` at one pixel per module, for ``QrView`` to scale."""
    image = QImage()
    image.loadFromData(_qr_png(text, 1), "PNG")
    return image


class ConnectionPanel(QGroupBox):
    """The connection facts a leader reads out or shows to the band.

    Signals:
        start_requested(): the leader pressed Start.
        stop_requested(): the leader pressed Stop.
        gear_requested(): the leader pressed Gear (Link, MIDI clock, OSC).
    """

    start_requested = Signal()
    stop_requested = Signal()
    gear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("JOIN", parent)
        self._qr_for: str | None = None
        self.qr_view = QrView(QR_MIN, QR_SIZE)
        self.qr_view.setToolTip("Scan with a phone's camera")
        # The URL is the one line a band types: big, and wrapped anywhere if it must.
        self.url_label = plain_label("server stopped", outside=True)
        self.url_label.setObjectName("url")
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_label = SteadyLabel("—", ["M" * 16])  # the key's length, in a monospace font
        self.key_label.setObjectName("key")
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_label.setToolTip("A phone that presents this key may take the lead")
        # Texts that change (a state, a Redis outage, a leader's name) wrap in the room they
        # have instead of widening the column.
        self.state_label = plain_label("stopped", outside=True)
        self.store_label = plain_label("—", outside=True)
        self.followers_label = plain_label("0", outside=True)
        self.leader_label = plain_label("—", outside=True)
        self.lag_label = plain_label("—", outside=True)
        self.lag_label.setToolTip("How late the console's event loop runs (p50 / p99)")
        self.start_button = QPushButton("Start server")
        self.start_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.gear_label = plain_label("—", outside=True)
        self.gear_button = QPushButton("Gear…")
        self.gear_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gear_button.setToolTip("Ableton Link, MIDI clock out and OSC")
        self.gear_button.clicked.connect(self.gear_requested.emit)

        # A grid, not a QFormLayout: the form lays out wrapped values shorter than the
        # height it asks for (a long leader name lost its last line).
        facts = QGridLayout()
        facts.setColumnStretch(1, 1)
        rows = (
            ("Leader key", self.key_label),
            ("Leader", self.leader_label),  # a member's display name: plain text
            ("Server", self.state_label),
            ("Sessions in", self.store_label),
            ("Followers", self.followers_label),
            ("Loop lag", self.lag_label),
            ("Gear", self.gear_label),
        )
        for number, (title, field) in enumerate(rows):
            facts.addWidget(plain_label(title), number, 0, Qt.AlignmentFlag.AlignTop)
            facts.addWidget(field, number, 1)
        right = QVBoxLayout()
        right.addLayout(facts)
        right.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.gear_button)
        buttons.addWidget(self.start_button, 1)
        right.addLayout(buttons)
        row = QHBoxLayout()
        row.addWidget(self.qr_view, 2)
        row.addLayout(right, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.url_label)
        layout.addLayout(row, 1)

    def show_status(self, status: ServerStatus) -> None:
        self.state_label.setText(status.state)
        self.start_button.setText("Stop server" if status.running else "Start server")
        if not status.running:
            self.url_label.setText("server stopped — press Start")
            self.key_label.setText("—")
            self.store_label.setText("—")
            self.followers_label.setText("0")
            self.leader_label.setText("—")
            self.lag_label.setText("—")
            self.qr_view.set_image(None)
            self._qr_for = None
            return
        self.url_label.setText("\n".join(status.urls))
        self.key_label.setText(status.leader_key or "—")
        self.leader_label.setText(status.leader_name or "nobody")
        self.store_label.setText(status.store)
        self.followers_label.setText(f"{status.followers}  ({status.connections} connections)")
        if status.lag_p99_ms is None:
            self.lag_label.setText("measuring…")
        else:
            self.lag_label.setText(f"{status.lag_p50_ms:.1f} / {status.lag_p99_ms:.1f} ms")
        first = status.urls[0] if status.urls else None
        if first != self._qr_for:
            self._qr_for = first
            self.qr_view.set_image(qr_image(first) if first else None)
            set_plain_tooltip(self.qr_view, f"Scan with a phone's camera: {first or '—'}")

    def show_gear(self, text: str, details: str) -> None:
        """What the gear is doing, in a line (``details``: its tooltip, a line a bridge)."""
        if self.gear_label.text() != text:
            self.gear_label.setText(text)
        set_plain_tooltip(self.gear_label, details)

    def _on_start_clicked(self) -> None:
        if self.start_button.text().startswith("Stop"):
            self.stop_requested.emit()
        else:
            self.start_requested.emit()
