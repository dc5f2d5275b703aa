"""Session events (joins, leaves, leader changes, errors), newest first."""

from __future__ import annotations

import time

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGroupBox, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from . import theme

MAX_LINES = 500
LEVEL_COLOURS = {"info": theme.TEXT, "warning": theme.FAIR, "error": theme.POOR}


class LogPanel(QGroupBox):
    """A bounded list of log lines, the newest at the top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("LOG", parent)
        self.lines = QListWidget()
        self.lines.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.lines)

    def add(self, level: str, text: str) -> None:
        """Add a line. ``text`` may hold names and titles a phone chose: a list item draws
        its text plain, so it is shown as sent (never give the item a tooltip unescaped)."""
        item = QListWidgetItem(f"{time.strftime('%H:%M:%S')}  {text}")
        item.setForeground(QColor(LEVEL_COLOURS.get(level, theme.TEXT)))
        self.lines.insertItem(0, item)
        while self.lines.count() > MAX_LINES:
            self.lines.takeItem(self.lines.count() - 1)

    def texts(self) -> list[str]:
        return [self.lines.item(i).text() for i in range(self.lines.count())]
