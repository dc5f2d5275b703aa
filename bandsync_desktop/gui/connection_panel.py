"""Where phones connect: LAN URLs, a QR code, the leader key, server and store state,
follower count and event-loop lag; start/stop of the server."""

from __future__ import annotations

import io

import segno
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .bridge import ServerStatus

QR_SIZE = 220


def qr_pixmap(text: str, size: int = QR_SIZE) -> QPixmap:
    """A QR code of ``text`` as a pixmap (segno writes PNG bytes; no Pillow needed)."""
    buffer = io.BytesIO()
    qr = segno.make(text, error="m")
    modules = qr.symbol_size(scale=1, border=2)[0]
    qr.save(
        buffer, kind="png", scale=max(1, size // modules), border=2, dark="#000000", light="#ffffff"
    )
    pixmap = QPixmap()
    pixmap.loadFromData(buffer.getvalue(), "PNG")
    return pixmap


class ConnectionPanel(QGroupBox):
    """The connection facts a leader reads out or shows to the band.

    Signals:
        start_requested(): the leader pressed Start.
        stop_requested(): the leader pressed Stop.
    """

    start_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("JOIN", parent)
        self._qr_for: str | None = None
        self.qr_label = QLabel()
        self.qr_label.setFixedSize(QR_SIZE, QR_SIZE)
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.qr_label.setToolTip("Scan with a phone's camera")
        self.url_label = QLabel("server stopped")
        self.url_label.setObjectName("url")
        self.url_label.setWordWrap(True)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_label = QLabel("—")
        self.key_label.setObjectName("key")
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_label.setToolTip("A phone that presents this key may take the lead")
        self.state_label = QLabel("stopped")
        self.store_label = QLabel("—")
        self.followers_label = QLabel("0")
        self.leader_label = QLabel("—")
        self.lag_label = QLabel("—")
        self.lag_label.setToolTip("How late the console's event loop runs (p50 / p99)")
        self.start_button = QPushButton("Start server")
        self.start_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.start_button.clicked.connect(self._on_start_clicked)

        facts = QFormLayout()
        facts.addRow("Leader key", self.key_label)
        facts.addRow("Leader", self.leader_label)
        facts.addRow("Server", self.state_label)
        facts.addRow("Sessions in", self.store_label)
        facts.addRow("Followers", self.followers_label)
        facts.addRow("Loop lag", self.lag_label)
        right = QVBoxLayout()
        right.addLayout(facts)
        right.addStretch(1)
        right.addWidget(self.start_button)
        row = QHBoxLayout()
        row.addWidget(self.qr_label)
        row.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.url_label)
        layout.addLayout(row)

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
            self.qr_label.clear()
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
            if first:
                self.qr_label.setPixmap(qr_pixmap(first))

    def _on_start_clicked(self) -> None:
        if self.start_button.text().startswith("Stop"):
            self.stop_requested.emit()
        else:
            self.start_requested.emit()
