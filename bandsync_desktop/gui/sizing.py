"""Widgets whose size does not follow what they show, so the window never shifts.

A label that reads "1 : 1" one moment and "count-in 4" the next would widen its column as it
changes (every layout asks its labels for their size hints), and a fixed-size QR code keeps
a laptop's window too wide. These widgets size themselves for the widest thing they will
ever show, or scale what they show to the room the layout gives them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from .plaintext import plain_tooltip

SLACK_PX = 4  # room for a font's overhang (italics, a bold glyph's side bearing)


class SteadyLabel(QLabel):
    """A plain-text label as wide as the widest of ``widest``, whatever it shows now.

    Args:
        text: the first text.
        widest: the longest texts the label will show (measured in its own font, so a
            style sheet's font size counts).
        parent: the owning widget.
    """

    def __init__(self, text: str, widest: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Plain text like every label of the console (see plaintext.py).
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)
        self._widest = tuple(widest) or (text,)

    def _steady_width(self) -> int:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        text = max(metrics.horizontalAdvance(sample) for sample in self._widest)
        return text + margins.left() + margins.right() + 2 * self.margin() + SLACK_PX

    def sizeHint(self) -> QSize:
        return QSize(self._steady_width(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self._steady_width(), super().minimumSizeHint().height())


class QrView(QWidget):
    """A QR code drawn at the largest whole number of pixels per module that fits.

    Whole pixels keep the modules crisp (a camera reads a blurred code badly); the view
    takes the room its layout gives it, between ``minimum`` and ``preferred`` pixels.
    """

    def __init__(self, minimum: int, preferred: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._minimum = minimum
        self._preferred = preferred
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMinimumSize(minimum, minimum)

    def set_image(self, image: QImage | None) -> None:
        """The code at one pixel per module (quiet zone included); ``None`` shows nothing."""
        self._image = image
        self.update()

    def has_code(self) -> bool:
        return self._image is not None

    def code_rect(self) -> QRect:
        """Where the code is drawn (an empty rectangle when there is none)."""
        image = self._image
        if image is None or image.width() == 0:
            return QRect()
        side = min(self.width(), self.height())
        scale = max(1, side // image.width())
        size = scale * image.width()
        return QRect((self.width() - size) // 2, (self.height() - size) // 2, size, size)

    def sizeHint(self) -> QSize:
        return QSize(self._preferred, self._preferred)

    def minimumSizeHint(self) -> QSize:
        return QSize(self._minimum, self._minimum)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return max(self._minimum, min(width, self._preferred))

    def paintEvent(self, event: QPaintEvent) -> None:
        image = self._image
        if image is None:
            return
        painter = QPainter(self)
        rect = self.code_rect()
        painter.fillRect(rect, QColor("#ffffff"))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, image)
        painter.end()


class ElidedLabel(QLabel):
    """One line of plain text, cut with "…" to the width the layout gives it; the whole text
    is its tooltip. For text from outside (a phone leader's 500-character message) that
    must never make the window taller or wider, however long it is.

    ``text()`` is what is shown; ``full_text()`` what was set.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._full = ""
        self.set_full_text(text)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        # One line: line breaks (a multi-line message) read as spaces.
        self._full = " ".join(text.split())
        self._elide()

    def _elide(self) -> None:
        room = max(0, self.contentsRect().width() - SLACK_PX)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        if shown != self._full and not shown:
            shown = "…"
        if shown != super().text():
            super().setText(shown)
        tip = plain_tooltip(self._full) if shown != self._full else ""
        if self.toolTip() != tip:
            self.setToolTip(tip)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(0, super().sizeHint().height())
