"""The live member table: health, name (the leader starred), audio output and its latency,
device, RTT and clock uncertainty, last seen."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.health import THRESHOLDS_TEXT
from ..core.validation import OUTPUT_DELAY_MAX_MS, OUTPUT_DELAY_MIN_MS, OUTPUTS
from . import theme
from .bridge import Bridge, MemberRow
from .plaintext import plain_label, plain_tooltip

COLUMNS = ("Health", "Name", "Output", "Device", "Link", "Seen")
NAME_COLUMN = 1
OUTPUT_COLUMN = 2
# The widest text each column shows (the header's own counts too): a column is that wide and
# never changes, whatever the rows say. The name takes the rest (at least NAME_SAMPLE); a
# longer name or device is elided (its tooltip has it whole). Every column has to fit a
# 1366 px laptop beside the tempo and join columns: the leader is a star before the name
# (no column of "follower"s), and the output is a short cell ("BT +220") whose tooltip says
# it in words.
WIDEST = (
    ("● good", "● fair", "● poor", "● —"),
    (),
    ("Spkr +400", "Wired +400", "Wired −50", "BT +400"),
    ("Android · Chrome", "iPhone · Safari"),
    ("999 ms ±99", "9.9 ms ±0.9"),
    ("now", "59 s", "59 min", "99 h"),
)
NAME_SAMPLE = "Ana (drums)"
LEADER_MARK = "★ "
CELL_PADDING_PX = 14  # the header's padding (theme: 6 px each side) and the grid line
HEALTH_TIP = "Link health\n" + THRESHOLDS_TEXT
HEADER_TIPS = {
    0: HEALTH_TIP,
    1: "The member's name; ★: the member who leads",
    2: (
        "The member's audio output (Spkr: the phone's speaker, Wired, BT: Bluetooth) and"
        " its latency in ms, as set on the phone by hand or by tapping along: its click is"
        f" sent that much early ({OUTPUT_DELAY_MIN_MS:+g} to {OUTPUT_DELAY_MAX_MS:+g} ms)"
    ),
    3: "The member's device and browser (from its user agent)",
    4: (
        "Round-trip time to the server (median of the recent samples) ± the uncertainty"
        " of the member's clock offset (from its clock-sync exchanges)"
    ),
    5: "How long ago the server last heard from the member",
}
#: How the Output column names each output the page reports (core.validation.OUTPUTS),
#: short in the cell and whole in its tooltip.
OUTPUT_NAMES = dict(zip(OUTPUTS, ("Spkr", "Wired", "BT"), strict=True))
OUTPUT_WORDS = dict(zip(OUTPUTS, ("the phone's speaker", "wired", "Bluetooth"), strict=True))
ModelIndex = QModelIndex | QPersistentModelIndex
NOBODY = "nobody yet — phones join with the URL or QR code"

_DEVICES = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Macintosh", "Mac"),
    ("CrOS", "Chromebook"),
    ("Linux", "Linux"),
)
_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)


def short_device(user_agent: str) -> str:
    """A readable device from a user agent: "iPhone · Safari", or the agent's start."""
    if not user_agent:
        return "—"
    device = next((name for key, name in _DEVICES if key in user_agent), "")
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    if device or browser:
        return " · ".join(part for part in (device, browser) if part)
    first = re.split(r"\s+", user_agent.strip())[0]
    return first[:32]


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _link(rtt_ms: float | None, uncertainty_ms: float | None) -> str:
    """ "38 ms ±4": round trip and clock uncertainty in one short cell."""
    if uncertainty_ms is None:
        return _ms(rtt_ms)
    spread = f"{uncertainty_ms:.0f}" if uncertainty_ms >= 1 else f"{uncertainty_ms:.1f}"
    return f"{_ms(rtt_ms)} ±{spread}"


def _signed_ms(delay_ms: float) -> str:
    rounded = round(delay_ms)
    return f"{'+' if rounded > 0 else '−' if rounded < 0 else ''}{abs(rounded)}"


def _output(output: str | None, delay_ms: float | None) -> str:
    """ "BT +220": the output and its latency in ms (a page that reports none: "—")."""
    if delay_ms is None:
        return "—"
    name = OUTPUT_NAMES.get(output or "")
    latency = _signed_ms(delay_ms)
    return f"{name} {latency}" if name else latency


def _output_tip(output: str | None, delay_ms: float | None) -> str | None:
    """The Output cell in words: "Bluetooth, latency +220 ms (its click is sent 220 ms early)"."""
    if delay_ms is None:
        return None
    words = OUTPUT_WORDS.get(output or "", "output not said")
    rounded = round(delay_ms)
    if rounded > 0:
        effect = f"its click is sent {rounded} ms early"
    elif rounded < 0:
        effect = f"its click is sent {-rounded} ms late"
    else:
        effect = "its click is sent on the beat"
    return f"{words[0].upper()}{words[1:]}, latency {_signed_ms(delay_ms)} ms ({effect})"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 2:
        return "now"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h"


class MembersModel(QAbstractTableModel):
    """Rows of ``MemberRow``; updated in place when the same members are there."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[MemberRow] = []

    def set_rows(self, rows: list[MemberRow]) -> None:
        same = [r.client_id for r in rows] == [r.client_id for r in self.rows]
        if same:
            self.rows = rows
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            # The view's stock delegate draws these as plain text: names and agents as sent.
            return (
                f"● {'—' if row.status == 'unknown' else row.status}",
                f"{LEADER_MARK}{row.name}" if row.role == "leader" else row.name,
                _output(row.output, row.output_delay_ms),
                short_device(row.device),
                _link(row.rtt_ms, row.uncertainty_ms),
                _ago(row.seen_ago_s),
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == 0:
                return theme.health_colour(row.status)
            if column == NAME_COLUMN and row.role == "leader":
                return theme.health_colour("fair")
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 0:
                return HEALTH_TIP
            if column == NAME_COLUMN:
                # the whole name where the column elides it
                leads = " (leads the band)" if row.role == "leader" else ""
                return plain_tooltip(row.name + leads)
            if column == OUTPUT_COLUMN:
                tip = _output_tip(row.output, row.output_delay_ms)
                return None if tip is None else plain_tooltip(tip)
            if column == 3:
                # The user agent is whatever the phone sent: a tooltip would render it as
                # rich text (an <img src=file:...> in it is loaded), so it is escaped.
                return plain_tooltip(row.device) or None
        if role == Qt.ItemDataRole.UserRole:
            return row.client_id
        return None


class MembersPanel(QGroupBox):
    """The member table and its actions: make leader, remove, take the lead back."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__("MEMBERS", parent)
        self._bridge = bridge
        self.model = MembersModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        rows = self.table.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setAlternatingRowColors(False)
        # One line a cell, elided at its end: wrapped, a long name showed its first word only
        # (the leader's, "★ …", none of it).
        self.table.setWordWrap(False)
        # Fixed column widths: "resize to contents" would read every cell of every row on
        # each refresh (200 members: thousands of data() calls, a visible stall). They are
        # measured once from the widest text a column shows, so nothing is cut short and no
        # column moves when a label changes.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(False)
        self._fit_columns()
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("")
        self.count_label = plain_label(NOBODY, outside=True)
        self.count_label.setObjectName("muted")

        self.leader_button = QPushButton("★ Make leader")
        self.leader_button.setToolTip("Hand the lead to the selected member")
        self.leader_button.clicked.connect(self._on_make_leader_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected member from the session")
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.take_button = QPushButton("Take the lead back")
        self.take_button.setToolTip("The console leads again")
        self.take_button.clicked.connect(self._bridge.take_lead)
        for button in (self.leader_button, self.remove_button, self.take_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._console_leads = True
        self._running = False

        actions = QHBoxLayout()
        actions.addWidget(self.leader_button)
        actions.addWidget(self.remove_button)
        actions.addStretch(1)
        actions.addWidget(self.take_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)
        layout.addLayout(actions)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def _fit_columns(self) -> None:
        header = self.table.horizontalHeader()
        self.table.ensurePolished()
        header.ensurePolished()
        cells = self.table.fontMetrics()
        bold = header.font()
        bold.setBold(True)  # the theme draws the header bold
        titles = QFontMetrics(bold)
        widths = []
        for column, samples in enumerate(WIDEST):
            texts = [cells.horizontalAdvance(text) for text in samples]
            texts.append(titles.horizontalAdvance(COLUMNS[column]))
            widths.append(max(texts) + CELL_PADDING_PX)
        widths[NAME_COLUMN] = max(widths[NAME_COLUMN], cells.horizontalAdvance(NAME_SAMPLE))
        for column, width in enumerate(widths):
            header.resizeSection(column, width)
        header.setMinimumSectionSize(min(widths))
        self.column_widths = tuple(widths)
        frame = 2 * self.table.frameWidth() + self.table.verticalScrollBar().sizeHint().width()
        # Wide enough for every column and a readable name: it never scrolls sideways.
        self.table.setMinimumWidth(sum(widths) + frame)

    def set_rows(self, rows: list[MemberRow]) -> None:
        selected = self.selected_member()
        self.model.set_rows(rows)
        if selected is not None:
            self.select_member(selected)
        count = len(rows)
        self.count_label.setText(f"{count} member{'s' if count != 1 else ''}" if count else NOBODY)
        self._update_buttons()

    def show_leader(self, *, running: bool, console_leads: bool) -> None:
        """Whether the server runs and the console leads: "Take the lead" only when it can."""
        self._running = running
        self._console_leads = console_leads
        self._update_buttons()

    def selected_member(self) -> str | None:
        indexes = self.table.selectionModel().selectedRows()
        if not indexes:
            return None
        return self.model.rows[indexes[0].row()].client_id

    def select_member(self, client_id: str) -> bool:
        for number, row in enumerate(self.model.rows):
            if row.client_id == client_id:
                self.table.selectRow(number)
                return True
        self.table.clearSelection()
        return False

    def _update_buttons(self, *_: object) -> None:
        selected = self.selected_member()
        row = next((r for r in self.model.rows if r.client_id == selected), None)
        self.leader_button.setEnabled(row is not None and row.role != "leader")
        self.remove_button.setEnabled(row is not None)
        self.take_button.setEnabled(self._running and not self._console_leads)

    def _on_make_leader_clicked(self) -> None:
        member = self.selected_member()
        if member is not None:
            self._bridge.hand_over(member)

    def _on_remove_clicked(self) -> None:
        member = self.selected_member()
        if member is not None:
            self._bridge.remove_member(member)
