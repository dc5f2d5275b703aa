"""The dark stage theme: high contrast, big type, readable from two metres."""

from __future__ import annotations

from typing import Final

from PySide6.QtGui import QColor

BACKGROUND: Final = "#111318"
PANEL: Final = "#1b1f27"
TEXT: Final = "#eceff4"
MUTED: Final = "#9aa3b2"
ACCENT: Final = "#ffb020"  # the downbeat, the big tempo
BEAT: Final = "#38bdf8"  # other beats
GOOD: Final = "#3ddc84"
FAIR: Final = "#ffc53d"
POOR: Final = "#ff5c5c"
UNKNOWN: Final = "#7a8391"

HEALTH_COLOURS: Final = {"good": GOOD, "fair": FAIR, "poor": POOR, "unknown": UNKNOWN}


def health_colour(status: str) -> QColor:
    return QColor(HEALTH_COLOURS.get(status, UNKNOWN))


STYLESHEET: Final = f"""
QWidget {{ background: {BACKGROUND}; color: {TEXT}; font-size: 15px; }}
QGroupBox {{
    background: {PANEL}; border: 1px solid #2a303b; border-radius: 10px;
    margin-top: 22px; padding: 4px; font-weight: bold;
}}
QGroupBox::title {{
    subcontrol-origin: margin; left: 12px; padding: 0 4px; color: {MUTED};
    font-size: 13px; letter-spacing: 1px;
}}
QGroupBox QWidget {{ background: {PANEL}; }}
QPushButton, QToolButton {{
    background: #2b3240; border: 1px solid #3a4352; border-radius: 8px;
    padding: 8px 14px; font-weight: bold;
}}
QPushButton:hover, QToolButton:hover {{ background: #354056; }}
QPushButton:pressed, QToolButton:pressed {{ background: #46536b; }}
QPushButton:disabled, QToolButton:disabled {{ color: #5d6573; }}
QToolButton::menu-button {{ border-left: 1px solid #3a4352; width: 18px; }}
QToolButton:checked, QPushButton#vamp:checked {{ background: #8a5a00; border-color: {ACCENT}; }}
QPushButton#play {{ background: #1f7a4d; border-color: #2c9c64; font-size: 22px; }}
QPushButton#play:checked {{ background: #8a5a00; border-color: {ACCENT}; }}
QPushButton#stop {{ background: #7a2424; border-color: #a33a3a; font-size: 22px; }}
QPushButton#tap {{ background: #2f3f66; border-color: #4c66a8; font-size: 20px; }}
QPushButton#nudge {{ font-size: 22px; min-width: 28px; padding: 6px 10px; }}
QLabel#tempo {{ color: {ACCENT}; font-size: 96px; font-weight: bold; }}
QLabel#bpm {{ color: {MUTED}; font-size: 18px; }}
QLabel#barbeat {{ font-size: 50px; font-weight: bold; }}
QLabel#clock {{ color: {MUTED}; font-size: 30px; }}
QLabel#url {{ color: {BEAT}; font-size: 18px; font-weight: bold; }}
QLabel#key {{ font-family: monospace; font-size: 15px; }}
QLabel#muted {{ color: {MUTED}; }}
QLabel#songtitle {{ color: {ACCENT}; font-size: 20px; font-weight: bold; }}
QTableView, QListWidget, QPlainTextEdit, QLineEdit, QSpinBox, QComboBox {{
    background: #151920; border: 1px solid #2a303b; border-radius: 6px;
    selection-background-color: #2f3f66;
}}
QTableView {{ font-size: 14px; }}
QHeaderView::section {{
    background: #232834; color: {MUTED}; border: none; padding: 6px; font-weight: bold;
}}
QSpinBox, QComboBox, QLineEdit {{ padding: 4px 6px; min-height: 28px; }}
QSlider::groove:horizontal {{ height: 8px; background: #2a303b; border-radius: 4px; }}
QSlider::handle:horizontal {{
    background: {ACCENT}; width: 22px; margin: -8px 0; border-radius: 11px;
}}
QStatusBar {{ color: {MUTED}; }}
QMenuBar, QMenu {{ background: {PANEL}; }}
QMenu::item:selected, QMenuBar::item:selected {{ background: #2f3f66; }}
"""
