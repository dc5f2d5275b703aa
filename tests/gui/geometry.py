"""Looking at the console as a person does: what is off-screen, cut off or elided.

``layout_problems(window)`` walks every visible widget of the window (so a widget added later
is covered too) and returns, in words, each thing a person would see wrong:

- a widget that sticks out of the window or out of the widget that holds it (its edge is
  cut off);
- a label whose text does not fit: wider or taller than the label where it does not wrap,
  or, where it wraps, a word wider than the label or lines taller than it;
- a button, spin box or combo box narrower than its text needs;
- a table header whose title does not fit its column.

Widgets inside a scroll area's viewport are left out: scrolling is how they are reached.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QRect, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QWidget,
)


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _in_scrolled_viewport(widget: QWidget, window: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        grand = parent.parentWidget()
        if isinstance(grand, QAbstractScrollArea) and grand.viewport() is parent:
            return True
        parent = grand
    return False


def _name(widget: QWidget) -> str:
    """``QLabel#url 'http://…' in ConnectionPanel``: enough to find the widget."""
    text = ""
    if isinstance(widget, (QLabel, QAbstractButton, QAbstractSpinBox)):
        text = widget.text()
    elif isinstance(widget, QComboBox):
        text = widget.currentText()
    owner = widget.parentWidget()
    while owner is not None and not type(owner).__module__.startswith("bandsync_desktop"):
        owner = owner.parentWidget()
    name = type(widget).__name__ + (f"#{widget.objectName()}" if widget.objectName() else "")
    if text:
        name += f" {text!r}"
    return f"{name} in {type(owner).__name__ if owner is not None else 'the window'}"


def _label_problem(label: QLabel) -> str | None:
    text = label.text()
    if not text or not label.pixmap().isNull():
        return None
    contents = label.contentsRect()
    metrics = label.fontMetrics()
    if not label.wordWrap():
        hint = label.sizeHint()
        needed = metrics.boundingRect(QRect(0, 0, 100_000, 100_000), 0, text)
        if needed.width() > contents.width() or hint.height() > label.height():
            return (
                f"needs {needed.width()}x{hint.height()} px, has "
                f"{contents.width()}x{label.height()}"
            )
        return None
    flags = int(Qt.TextFlag.TextWordWrap)
    needed = metrics.boundingRect(QRect(0, 0, contents.width(), 100_000), flags, text)
    if needed.width() > contents.width():
        return f"a word needs {needed.width()} px, the label has {contents.width()}"
    if needed.height() > contents.height():
        return f"its lines need {needed.height()} px of height, it has {contents.height()}"
    return None


def _header_problems(header: QHeaderView) -> list[str]:
    model = header.model()
    if model is None or header.orientation() != Qt.Orientation.Horizontal:
        return []
    problems = []
    bold = header.font()
    bold.setBold(True)  # the theme draws the header bold
    metrics = QFontMetrics(bold)
    for section in range(header.count()):
        if header.isSectionHidden(section):
            continue
        title = str(model.headerData(section, Qt.Orientation.Horizontal))
        needed = metrics.horizontalAdvance(title) + 12  # the theme's 6 px padding each side
        if needed > header.sectionSize(section):
            problems.append(
                f"header {title!r} needs {needed} px, its column has {header.sectionSize(section)}"
            )
    return problems


def layout_problems(window: QMainWindow) -> list[str]:
    """Everything cut off, off-screen or elided in ``window`` as it is laid out now."""
    # Layouts run from posted events: lay out what changed before looking.
    for _ in range(3):
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        QApplication.processEvents()
    problems: list[str] = []
    bounds = window.rect()
    for widget in window.findChildren(QWidget):
        if widget.isWindow() or not widget.isVisibleTo(window) or widget.width() == 0:
            continue
        if _in_scrolled_viewport(widget, window):
            continue
        rect = _rect_in(widget, window)
        if not bounds.contains(rect):
            problems.append(f"{_name(widget)} at {rect.getRect()} is outside the window")
            continue
        parent = widget.parentWidget()
        if parent is not None and not parent.rect().contains(widget.geometry()):
            problems.append(
                f"{_name(widget)} at {widget.geometry().getRect()} is cut off by its parent "
                f"({parent.width()}x{parent.height()})"
            )
        if isinstance(widget, QLabel):
            problem = _label_problem(widget)
            if problem:
                problems.append(f"{_name(widget)}: {problem}")
        elif isinstance(widget, QAbstractButton) and not widget.text():
            continue  # an icon button (a line edit's clear button): Qt sizes it to its icon
        elif isinstance(widget, (QAbstractButton, QAbstractSpinBox, QComboBox)):
            hint = widget.sizeHint()
            if hint.width() > widget.width() or hint.height() > widget.height():
                problems.append(
                    f"{_name(widget)} needs {hint.width()}x{hint.height()} px, has "
                    f"{widget.width()}x{widget.height()}"
                )
        elif isinstance(widget, QHeaderView):
            problems.extend(_header_problems(widget))
    return problems
