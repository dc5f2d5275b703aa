"""Text shown literally: the one way the console puts a string on screen.

Qt renders any string that looks like HTML as rich text wherever a widget's text format is
``AutoText`` (the default of ``QLabel``, ``QMessageBox`` and every tooltip). A phone chooses
its display name, its User-Agent, song titles, charts and messages, so a name such as
``<img src="file:///dev/zero">`` would make Qt read /dev/zero until the process (and the
server in it) died, and a title could paint "SERVER HACKED" in red. Every widget of the
console therefore makes its labels, tooltips and message boxes here:

- labels and message boxes are set to ``Qt.TextFormat.PlainText`` (use ``plain_label`` to
  make a label, ``plain_row`` for a form's row label, ``message_box`` for a message box);
- a tooltip has no format setter (Qt decides by ``Qt::mightBeRichText``), so it is escaped
  and wrapped in rich text that shows it as typed (``plain_tooltip``, ``set_plain_tooltip``;
  an item model returns ``plain_tooltip(text)`` for its ``ToolTipRole``);
- item views (tables, lists, combo boxes), buttons, group-box titles, line and plain-text
  edits (``setPlainText``), window titles and the status bar draw plain text already: give
  them the string as it is, never as HTML.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QLayout, QMessageBox, QSizePolicy, QWidget

# Rich text that shows its content as typed: spaces and line breaks kept, long lines
# wrapped (Qt wraps a rich tooltip at a quarter of the screen's width).
_LITERAL = '<p style="white-space:pre-wrap">{}</p>'


def plain_label(text: str = "", parent: QWidget | None = None, *, outside: bool = False) -> QLabel:
    """A label that shows ``text`` (and whatever it is given later) literally.

    Args:
        text: the first text.
        parent: the owning widget.
        outside: the label shows text from outside (a name, a title): it wraps, anywhere
            if it must, to the width the layout gives it and never asks for more, so a
            long title cannot push the window off the screen.
    """
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    if outside:
        label.setWordWrap(True)
        policy = label.sizePolicy()
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        label.setSizePolicy(policy)
    return label


def plain_row(form: QFormLayout, text: str, field: QWidget | QLayout) -> QLabel:
    """``form.addRow(text, field)`` with a plain-text row label (Qt's own is AutoText)."""
    label = plain_label(text)
    form.addRow(label, field)
    return label


def plain_tooltip(text: str) -> str:
    """A tooltip string that Qt displays as ``text`` exactly, whatever ``text`` holds.

    An empty text stays empty (no tooltip).
    """
    if not text:
        return ""
    return _LITERAL.format(html.escape(text, quote=False))


def set_plain_tooltip(widget: QWidget, text: str) -> None:
    """Give ``widget`` a tooltip that shows ``text`` literally."""
    widget.setToolTip(plain_tooltip(text))


def message_box(
    parent: QWidget | None,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok,
    default: QMessageBox.StandardButton = QMessageBox.StandardButton.NoButton,
) -> QMessageBox:
    """A message box that shows ``title`` and ``text`` literally (not yet shown: ``exec`` it).

    ``QMessageBox.critical()`` and its siblings render their text as AutoText and cannot be
    told otherwise, so the console builds its boxes here.
    """
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(text)
    box.setStandardButtons(buttons)
    if default != QMessageBox.StandardButton.NoButton:
        box.setDefaultButton(default)
    return box


__all__ = ["message_box", "plain_label", "plain_row", "plain_tooltip", "set_plain_tooltip"]
