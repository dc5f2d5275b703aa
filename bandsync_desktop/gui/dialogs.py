"""Dialogs: the one function for fatal errors, the port-in-use offer, About, Settings.

Their text is shown as plain text (``plaintext.message_box``): an error message can carry
what a phone sent. About alone is rich text, and it is all ours.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core.validation import BEATS_PER_BAR_MAX, BEATS_PER_BAR_MIN, TEMPO_MAX, TEMPO_MIN
from ..log import GUI
from .plaintext import message_box, plain_label, plain_row

ICON_RESOURCE = "icon.svg"


def app_icon() -> QIcon | None:
    """The window icon from ``bandsync_desktop/resources/icon.svg``, if it is installed."""
    try:
        ref = resources.files("bandsync_desktop").joinpath("resources", ICON_RESOURCE)
        if not ref.is_file():
            return None
        data = ref.read_bytes()
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return None
    pixmap = QPixmap()
    if not pixmap.loadFromData(data, "SVG"):
        return None
    return QIcon(pixmap)


def show_fatal_error(
    parent: QWidget | None, title: str, message: str, *, interactive: bool = True
) -> None:
    """Tell the leader about an error that stops the server (port in use, bad Redis URL).

    Always logged; shown in a modal dialog when someone is there to read it.
    """
    GUI.error("%s: %s", title, message)
    if interactive:
        box = fatal_error_box(parent, title, message)
        box.exec()
        box.deleteLater()


def fatal_error_box(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    """The dialog ``show_fatal_error`` shows (not yet shown): its text as plain text."""
    return message_box(parent, QMessageBox.Icon.Critical, title, message)


def offer_port(parent: QWidget | None, port: int, suggestion: int | None) -> bool:
    """Port taken: ask whether to use the next free one. True means yes."""
    if suggestion is None:
        show_fatal_error(
            parent,
            "Port in use",
            f"Port {port} is in use and no free port "
            "was found near it. Close the other program or pick another port.",
        )
        return False
    box = port_question_box(parent, port, suggestion)
    answer = box.exec()
    box.deleteLater()
    return answer == QMessageBox.StandardButton.Yes


def port_question_box(parent: QWidget | None, port: int, suggestion: int) -> QMessageBox:
    """The question ``offer_port`` asks (not yet shown)."""
    return message_box(
        parent,
        QMessageBox.Icon.Question,
        "Port in use",
        f"Port {port} is already in use (another BandSync, or another program).\n\n"
        f"Start on port {suggestion} instead? Phones then use the new address.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )


def about_text() -> str:
    return (
        f"<h2>BandSync Desktop {__version__}</h2>"
        "<p>Keep a band on the same beat: the leader console hosts the sync server; "
        "band members follow on their phones over the local network.</p>"
        "<p>Released under the MIT license (see the LICENSE file).</p>"
    )


def show_about(parent: QWidget | None) -> None:
    box = QMessageBox(parent)
    box.setWindowTitle("About BandSync Desktop")
    # Rich text on purpose: about_text() is our own markup, with nothing from outside in it.
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text())
    icon = app_icon()
    if icon is not None:
        box.setIconPixmap(icon.pixmap(96, 96))
    box.exec()
    box.deleteLater()


class SettingsDialog(QDialog):
    """Host, port, Redis URL and defaults; applied when the server next starts."""

    def __init__(self, values: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.host = QLineEdit(str(values.get("host", "0.0.0.0")))
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(int(values.get("port", 3001)))
        self.redis_url = QLineEdit(values.get("redis_url") or "")
        self.redis_url.setPlaceholderText("empty: sessions in memory; or redis://host:6379/0")
        self.tempo = QSpinBox()
        self.tempo.setRange(int(TEMPO_MIN), int(TEMPO_MAX))
        self.tempo.setValue(round(float(values.get("default_tempo", 120))))
        self.beats = QSpinBox()
        self.beats.setRange(BEATS_PER_BAR_MIN, BEATS_PER_BAR_MAX)
        self.beats.setValue(int(values.get("default_beats_per_bar", 4)))
        self.unit = QComboBox()
        for unit in (2, 4, 8, 16):
            self.unit.addItem(str(unit), unit)
        self.unit.setCurrentIndex(max(0, self.unit.findData(values.get("default_beat_unit", 4))))
        meter = QHBoxLayout()
        meter.addWidget(self.beats)
        meter.addWidget(plain_label("/"))
        meter.addWidget(self.unit)
        form = QFormLayout()
        plain_row(form, "Host (0.0.0.0 = every interface)", self.host)
        plain_row(form, "Port", self.port)
        plain_row(form, "Redis URL", self.redis_url)
        plain_row(form, "Default tempo", self.tempo)
        plain_row(form, "Default meter", meter)
        note = plain_label("Changes apply when the server next starts (Stop, then Start).")
        note.setObjectName("muted")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        return {
            "host": self.host.text().strip() or "0.0.0.0",
            "port": self.port.value(),
            "redis_url": self.redis_url.text().strip() or None,
            "default_tempo": float(self.tempo.value()),
            "default_beats_per_bar": self.beats.value(),
            "default_beat_unit": int(self.unit.currentData()),
        }
