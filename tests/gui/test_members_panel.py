"""The member table (issue 14 item 4): each phone's audio output and latency, on a laptop.

Real phones (socket.io clients) report their output in ``sync_report``; the console's table
shows it as a short cell ("BT +220") with a tooltip in words. With the Output column the
console still fits a 1366x768 laptop: every column of the table shows whole, with the widest
texts it can hold, and nothing in the window is cut off (``geometry.layout_problems``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.validation import OUTPUT_DELAY_MAX_MS, OUTPUT_DELAY_MIN_MS, OUTPUTS
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.members_panel import (
    CELL_PADDING_PX,
    COLUMNS,
    NAME_COLUMN,
    OUTPUT_COLUMN,
    WIDEST,
    MembersModel,
    _output,
)

from ..helpers.clients import Recorder
from .conftest import Run
from .geometry import layout_problems

Followers = Callable[..., Recorder]
DEVICE_COLUMN = COLUMNS.index("Device")


def cell(model: MembersModel, name: str, column: int, role: int = 0) -> Any:
    row = next(i for i, r in enumerate(model.rows) if r.name == name)
    return model.data(model.index(row, column), role or Qt.ItemDataRole.DisplayRole)


def test_a_reported_output_shows_on_the_members_row(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    model = console.members_panel.model
    ana = followers("Ana", timeline=True)
    qtbot.waitUntil(lambda: len(model.rows) == 1, timeout=3000)
    assert cell(model, "Ana", OUTPUT_COLUMN) == "—"  # nothing reported yet
    assert cell(model, "Ana", OUTPUT_COLUMN, Qt.ItemDataRole.ToolTipRole) is None
    report = {"sessionId": "band", "rttMs": 9.0, "outputDelayMs": 220, "output": "bluetooth"}
    assert run(ana.call("sync_report", report))["ok"] is True
    qtbot.waitUntil(lambda: model.rows[0].output_delay_ms == 220, timeout=3000)
    assert model.rows[0].output == "bluetooth"
    assert cell(model, "Ana", OUTPUT_COLUMN) == "BT +220"
    tip = cell(model, "Ana", OUTPUT_COLUMN, Qt.ItemDataRole.ToolTipRole)
    assert "Bluetooth, latency +220 ms (its click is sent 220 ms early)" in tip
    header_tip = model.headerData(
        OUTPUT_COLUMN, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole
    )
    assert "BT: Bluetooth" in header_tip and "-50 to +400 ms" in header_tip

    # refused reports change nothing on the row (their good clock figure neither)
    for bad in ({"outputDelayMs": 401}, {"outputDelayMs": 100, "output": "hdmi"}):
        answer = run(ana.call("sync_report", {"sessionId": "band", "rttMs": 500.0, **bad}))
        assert answer["ok"] is False and answer["error"]["code"] == "INVALID_PAYLOAD"
    report = {"sessionId": "band", "outputDelayMs": -20, "output": "speaker"}
    assert run(ana.call("sync_report", report))["ok"] is True
    qtbot.waitUntil(lambda: model.rows[0].output_delay_ms == -20, timeout=3000)
    assert model.rows[0].rtt_ms == 9.0
    assert cell(model, "Ana", OUTPUT_COLUMN) == "Spkr −20"
    tip = cell(model, "Ana", OUTPUT_COLUMN, Qt.ItemDataRole.ToolTipRole)
    assert "The phone's speaker, latency −20 ms (its click is sent 20 ms late)" in tip


def test_the_leader_is_starred_in_the_name_column(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run
) -> None:
    model = console.members_panel.model
    followers("Ana")
    followers("Ben")
    qtbot.waitUntil(lambda: len(model.rows) == 2, timeout=3000)
    assert [cell(model, n, NAME_COLUMN) for n in ("Ana", "Ben")] == ["Ana", "Ben"]
    ana = next(r for r in model.rows if r.name == "Ana")
    run(console.bridge.hand_over(ana.client_id))
    qtbot.waitUntil(lambda: cell(model, "Ana", NAME_COLUMN) == "★ Ana", timeout=3000)
    assert cell(model, "Ben", NAME_COLUMN) == "Ben"
    assert "leads" in cell(model, "Ana", NAME_COLUMN, Qt.ItemDataRole.ToolTipRole)
    assert cell(model, "Ana", NAME_COLUMN, Qt.ItemDataRole.ForegroundRole) is not None
    assert cell(model, "Ben", NAME_COLUMN, Qt.ItemDataRole.ForegroundRole) is None


def test_every_output_text_fits_its_column(console: MainWindow) -> None:
    """Whatever a page may report (every whole ms of the range, each output or none), the
    Output cell fits its fixed column: the WIDEST samples are the widest there are."""
    panel = console.members_panel
    metrics = panel.table.fontMetrics()
    room = panel.column_widths[OUTPUT_COLUMN] - CELL_PADDING_PX
    widest = max(metrics.horizontalAdvance(t) for t in WIDEST[OUTPUT_COLUMN])
    lo, hi = int(OUTPUT_DELAY_MIN_MS), int(OUTPUT_DELAY_MAX_MS)
    for output in (*OUTPUTS, None):
        for delay in [*range(lo, hi + 1), lo + 0.4, hi - 0.4]:
            text = _output(output, delay)
            assert metrics.horizontalAdvance(text) <= widest <= room, (text, widest, room)


BAND = (
    # name, user agent, output, latency: the widest cells each column can hold
    ("Ana (drums)", "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0", "wired", 400),
    ("Ben (bass)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1", "speaker", 400),
    ("Cleo (keys)", "Mozilla/5.0 (Linux; Android 13) Firefox/125.0", "wired", -50),
    ("Maximiliane Grünewald-Okonkwo (guitar)", "Mozilla/5.0 (iPad) Safari/604.1", "bluetooth", 400),
)


@pytest.mark.parametrize("size", [QSize(1366, 768), QSize(1366, 728)], ids=["768", "728"])
def test_the_console_fits_a_laptop_with_every_column_filled(
    console: MainWindow, followers: Followers, qtbot: QtBot, run: Run, size: QSize
) -> None:
    model = console.members_panel.model
    for number, (name, agent, output, delay) in enumerate(BAND):
        phone = followers(name, timeline=True, user_agent=agent)
        report = {
            "sessionId": "band",
            "rttMs": 999.0 - number,
            "uncertaintyMs": 99.0,
            "outputDelayMs": delay,
            "output": output,
        }
        assert run(phone.call("sync_report", report))["ok"] is True
    qtbot.waitUntil(lambda: len(model.rows) == len(BAND), timeout=5000)
    qtbot.waitUntil(lambda: all(r.output_delay_ms is not None for r in model.rows), timeout=5000)
    run(console.bridge.hand_over(model.rows[-1].client_id))  # the long name leads
    qtbot.waitUntil(lambda: model.rows[-1].role == "leader", timeout=3000)
    assert console.minimumSizeHint().width() <= size.width(), console.minimumSizeHint()
    console.resize(size)
    QApplication.processEvents()
    qtbot.wait(50)
    QApplication.processEvents()
    assert console.size() == size
    table = console.members_panel.table
    header = table.horizontalHeader()
    # every column inside the table's viewport: no scrolling sideways, none cut at the edge
    assert header.length() <= table.viewport().width(), (header.length(), table.viewport())
    assert not table.horizontalScrollBar().isVisible()
    metrics = table.fontMetrics()
    for row in range(model.rowCount()):
        for column in range(len(COLUMNS)):
            if column in (NAME_COLUMN, DEVICE_COLUMN):
                continue  # these elide (their tooltips have them whole)
            text = str(model.data(model.index(row, column)))
            needed = metrics.horizontalAdvance(text) + CELL_PADDING_PX
            assert needed <= header.sectionSize(column), (COLUMNS[column], text)
    # one line a cell: a long name is elided at its end, its start shown ("★ Maximili…"), not
    # wrapped to its first word (the leader's star alone)
    assert not table.wordWrap()
    shown = [str(model.data(model.index(r, OUTPUT_COLUMN))) for r in range(model.rowCount())]
    assert shown == ["Wired +400", "Spkr +400", "Wired −50", "BT +400"]
    problems = layout_problems(console)
    if size.height() < 768:
        # 728 px high: what the left and middle columns' heights do is not this table's
        # business (the width is, above); the members panel itself must be whole
        problems = [p for p in problems if "MembersPanel" in p]
    assert problems == []
