"""The console as a person sees it, on a laptop and on a desktop (issue 12, item 10).

A real server, real phones (socket.io clients with phones' user agents and link reports), a
song with a chart and a stage message: then the window is laid out at 1366x728 (a 1366x768
laptop's area under a task bar), 1366x768 and 1920x1080, and every visible widget is checked
as a person would look at it (``geometry.layout_problems``). The screenshots it takes are
``docs/screens/console-1366x768.png`` and ``console-1920x1080.png``: this test refreshes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.clock import ManualClock
from bandsync_desktop.core.session import CONSOLE
from bandsync_desktop.gui.main_window import MainWindow, initial_size
from bandsync_desktop.gui.setlist import SetSong
from bandsync_desktop.gui.transport_panel import SEEK_RANGE_MIN_S

from ..helpers.clients import Recorder
from .conftest import Run
from .geometry import layout_problems

Followers = Callable[..., Recorder]
ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "docs" / "screens"
LAPTOP = QSize(1366, 728)  # 1366x768 less a task bar

BAND = (
    ("Ana (drums)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1"),
    ("Ben (bass)", "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile Safari/537.36"),
    ("Cleo (keys)", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) Safari/604.1"),
    ("Dev (vocals)", "Mozilla/5.0 (Linux; Android 13; SM-S911B) Firefox/125.0"),
    ("Maximiliane Grünewald-Okonkwo (guitar)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)"),
)
CHART = """[Intro]
| Am | F | C | G |

[Verse]
Am        F
Lights are low, the room is ready
| Am | F | C | G |
"""


def _laid_out(window: MainWindow, qtbot: QtBot, width: int, height: int) -> None:
    window.resize(width, height)
    QApplication.processEvents()
    qtbot.wait(50)  # layouts run from posted events
    QApplication.processEvents()


@pytest.fixture
def rehearsal(console: MainWindow, followers: Followers, qtbot: QtBot, run: Run) -> MainWindow:
    """The console mid-rehearsal: five phones with link figures, a song, a stage message."""
    phones = [followers(name, timeline=True, user_agent=agent) for name, agent in BAND]
    for number, phone in enumerate(phones):
        report = {"sessionId": "band", "rttMs": 8.0 + 40 * number, "uncertaintyMs": 0.6 + number}
        run(phone.emit("sync_report", report))
    panel = console.setlist_panel
    panel.add_song(SetSong("Opening groove", 96.0, 4, 4, 1, CHART))
    panel.add_song(SetSong("Waltz for the road", 138.0, 3, 4, 0, "| D | G | A |"))
    panel.songs.setCurrentRow(0)
    panel.load_current()
    console.message_panel.edit.setText("Next: Waltz for the road, capo 2")
    console.message_panel.send()
    model = console.members_panel.model
    qtbot.waitUntil(lambda: len(model.rows) == len(BAND), timeout=5000)
    qtbot.waitUntil(lambda: all(row.rtt_ms is not None for row in model.rows), timeout=5000)

    def ready() -> bool:
        session = console.bridge.session
        return bool(session and session.song and session.message)

    qtbot.waitUntil(ready, timeout=5000)
    # The connection panel's figures refresh once a second.
    followers_label = console.connection_panel.followers_label
    qtbot.waitUntil(lambda: followers_label.text().startswith(f"{len(BAND)} "), timeout=5000)
    return console


def test_the_minimum_size_fits_a_laptop(console: MainWindow) -> None:
    hint = console.minimumSizeHint()
    assert hint.width() <= LAPTOP.width() and hint.height() <= LAPTOP.height(), hint


@pytest.mark.parametrize(
    ("width", "height", "shot"),
    [
        (1366, 728, None),
        (1366, 768, "console-1366x768.png"),
        (1920, 1080, "console-1920x1080.png"),
    ],
)
def test_nothing_is_cut_off_or_off_screen(
    rehearsal: MainWindow, qtbot: QtBot, width: int, height: int, shot: str | None
) -> None:
    _laid_out(rehearsal, qtbot, width, height)
    assert rehearsal.size() == QSize(width, height)  # the layout asks no more than the screen
    assert layout_problems(rehearsal) == []
    if shot is not None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        rehearsal.transport_panel.refresh_position()
        assert rehearsal.grab().save(str(SCREENS / shot))


def test_columns_keep_their_width_whatever_the_labels_say(
    rehearsal: MainWindow, qtbot: QtBot, run: Run
) -> None:
    window = rehearsal
    _laid_out(window, qtbot, 1366, 768)
    header = window.members_panel.table.horizontalHeader()

    def widths() -> tuple[list[int], list[int]]:
        QApplication.processEvents()
        return window.columns.sizes(), [header.sectionSize(c) for c in range(header.count())]

    before = widths()
    # Counting in ("count-in 4" in the big label), a long leader name, a long message.
    bridge = window.bridge
    run(bridge.set_count_in(4))
    members = window.members_panel
    longest = next(r for r in members.model.rows if r.name.startswith("Maximiliane"))
    run(bridge.hand_over(longest.client_id))
    window.message_panel.edit.setText("Everyone: after the bridge we go straight to the coda " * 4)
    window.message_panel.send()
    run(bridge.play())
    qtbot.waitUntil(lambda: window.transport_panel.bar_beat_label.text().startswith("count-in"))
    qtbot.waitUntil(lambda: window.connection_panel.leader_label.text() == longest.name)
    qtbot.wait(1100)  # the connection panel's figures refresh every second
    assert widths() == before
    assert layout_problems(window) == [], "\n".join(layout_problems(window))
    run(bridge.stop())  # the labels of a stopped server
    qtbot.waitUntil(lambda: window.connection_panel.url_label.text().startswith("server stopped"))
    assert widths() == before
    assert layout_problems(window) == [], "\n".join(layout_problems(window))


def test_count_ins_read_as_words(rehearsal: MainWindow, qtbot: QtBot) -> None:
    count_in = rehearsal.transport_panel.count_in
    assert count_in.value() == 1 and count_in.text() == "1-bar count-in"
    count_in.setValue(0)
    assert count_in.text() == "no count-in"
    count_in.setValue(3)
    assert count_in.text() == "3-bar count-in"
    count_in.setFocus()
    count_in.selectAll()
    qtbot.keyClicks(count_in, "2")  # typed: a digit is enough
    qtbot.keyClick(count_in, Qt.Key.Key_Return)
    assert count_in.value() == 2 and count_in.text() == "2-bar count-in"
    count_in.setValue(3)
    songs = rehearsal.setlist_panel.songs
    assert songs.item(0).text().endswith("· 4/4 · 1-bar count-in")
    assert songs.item(1).text().endswith("· 3/4 · no count-in")
    rehearsal.bridge.play()
    qtbot.waitUntil(
        lambda: any("Play after a 3-bar count-in" in t for t in rehearsal.log_panel.texts()),
        timeout=5000,
    )


def test_a_new_song_forgets_the_tapped_tempo(
    rehearsal: MainWindow, qtbot: QtBot, tap_clock: ManualClock
) -> None:
    tempo = rehearsal.tempo_panel
    for _ in range(4):
        tempo.tap()
        tap_clock.advance(500.0)  # 120 BPM
    assert tempo.tap_info.text() == "tapped 120 BPM (4 taps)"
    bridge = rehearsal.bridge
    qtbot.waitUntil(lambda: bridge.current_tempo() == 120.0, timeout=5000)
    assert tempo.tap_info.text() == "tapped 120 BPM (4 taps)"  # still true: it is the tempo
    panel = rehearsal.setlist_panel
    panel.songs.setCurrentRow(1)
    panel.load_current()
    qtbot.waitUntil(lambda: tempo.value_label.text() == "138", timeout=5000)
    assert tempo.tap_info.text() == ""
    assert tempo.tap_tempo.count == 0  # the next tap starts a new count


def test_take_the_lead_back_only_when_it_can(rehearsal: MainWindow, qtbot: QtBot, run: Run) -> None:
    members = rehearsal.members_panel
    assert not members.take_button.isEnabled()  # the console leads already
    ana = members.model.rows[0]
    run(rehearsal.bridge.hand_over(ana.client_id))
    qtbot.waitUntil(members.take_button.isEnabled, timeout=5000)
    qtbot.waitUntil(lambda: members.model.rows[0].role == "leader", timeout=5000)
    members.select_member(ana.client_id)
    assert not members.leader_button.isEnabled()  # she leads already
    members.take_button.click()
    qtbot.waitUntil(lambda: rehearsal.bridge.session.leader_id == CONSOLE, timeout=5000)
    qtbot.waitUntil(lambda: not members.take_button.isEnabled(), timeout=5000)
    run(rehearsal.bridge.hand_over(ana.client_id))
    qtbot.waitUntil(members.take_button.isEnabled, timeout=5000)
    run(rehearsal.bridge.stop())
    assert not members.take_button.isEnabled()  # nobody to take it from: the server is down


def test_the_position_slider_spans_the_song(rehearsal: MainWindow, qtbot: QtBot) -> None:
    slider = rehearsal.transport_panel.seek_slider
    # "Opening groove": 8 bars of 4/4 at 96 BPM = 20 s (the slider counts tenths).
    assert slider.maximum() == 200
    panel = rehearsal.setlist_panel
    panel.songs.setCurrentRow(1)  # 3 bars of 3/4 at 138 BPM
    panel.load_current()
    qtbot.waitUntil(lambda: slider.maximum() == 40, timeout=5000)  # 3.9 s, rounded up
    panel.add_song(SetSong("No bar lines", 100.0, 4, 4, 1, "Just words"))
    panel.load_current()
    qtbot.waitUntil(lambda: slider.maximum() == SEEK_RANGE_MIN_S * 10, timeout=5000)


def test_initial_size_fits_the_screen() -> None:
    laptop = initial_size(QRect(0, 0, 1366, 728), QSize(1300, 680))
    assert laptop == QSize(1366, 728)
    desktop = initial_size(QRect(0, 0, 1920, 1040), QSize(1300, 680))
    assert desktop == QSize(1600, 980)
    tiny = initial_size(QRect(0, 0, 1024, 600), QSize(1300, 680))
    assert tiny == QSize(1300, 680)  # below the minimum: the layout's minimum wins


OPEN_ON_A_LAPTOP = """
import base64, json, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from bandsync_desktop.config import Settings
from bandsync_desktop.gui.bridge import Bridge
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetLibrary
from bandsync_desktop.gui.theme import STYLESHEET
from bandsync_desktop.gui.user_settings import UserSettings

app = QApplication([])
app.setStyleSheet(STYLESHEET)
home = Path(sys.argv[1])
settings = UserSettings(home / "settings.json")

def opened():
    window = MainWindow(Bridge(Settings(host="127.0.0.1", port=0)), settings,
                        SetLibrary(home / "sets"), interactive=False)
    window.show()
    app.processEvents()
    return window

first = opened()
result = {"available": first.screen().availableGeometry().getRect(),
          "first": first.frameGeometry().getRect()}
# A geometry saved on a big monitor, since unplugged:
first.setGeometry(0, 0, 2400, 1300)
first.close()
again = opened()
result["again"] = again.frameGeometry().getRect()
print(json.dumps(result))
"""


def test_the_window_opens_inside_a_laptop_screen(tmp_path: Path) -> None:
    """A real 1366x768 screen (the offscreen platform's screen configuration)."""
    config = tmp_path / "screens.json"
    config.write_text(
        json.dumps(
            {
                "windowFrameMargins": False,
                "screens": [
                    {
                        "name": "laptop",
                        "x": 0,
                        "y": 0,
                        "width": 1366,
                        "height": 768,
                        "logicalDpi": 96,
                        "logicalBaseDpi": 96,
                        "dpr": 1,
                    }
                ],
            }
        )
    )
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}")
    done = subprocess.run(
        [sys.executable, "-c", OPEN_ON_A_LAPTOP, str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    screen = QRect(*result["available"])
    assert screen == QRect(0, 0, 1366, 768)
    for opened in ("first", "again"):
        assert screen.contains(QRect(*result[opened])), (opened, result)
