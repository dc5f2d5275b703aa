"""Meter, count-in, seek and the visual metronome, on a server clock the test moves."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.core.clock import ManualClock
from bandsync_desktop.gui.main_window import MainWindow

from ..helpers.clients import Recorder
from .conftest import Run

Followers = Callable[..., Recorder]


@pytest.fixture
def server_clock() -> ManualClock:
    return ManualClock(start_ms=5_000_000.0)


def test_meter_and_count_in_reach_followers(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    panel = console.transport_panel
    panel.beats.setValue(3)
    qtbot.waitUntil(lambda: bool(ana.payloads("meter_changed")), timeout=5000)
    assert ana.payloads("meter_changed")[-1]["beatsPerBar"] == 3
    panel.unit.setCurrentIndex(panel.unit.findData(8))
    qtbot.waitUntil(lambda: ana.payloads("meter_changed")[-1]["beatUnit"] == 8, timeout=5000)
    panel.count_in.setValue(2)
    qtbot.waitUntil(lambda: ana.last("snapshot")["countInBars"] == 2, timeout=5000)


def test_metronome_and_position_follow_the_session_timeline(
    console: MainWindow, followers: Followers, qtbot: QtBot, server_clock: ManualClock, run: Run
) -> None:
    ana = followers("Ana")
    bridge = console.bridge
    panel = console.transport_panel
    run(bridge.set_count_in(1))
    run(bridge.play())
    qtbot.waitUntil(lambda: bool(ana.payloads("play")), timeout=5000)
    play = ana.payloads("play")[-1]
    assert play["countInBars"] == 1
    downbeat = play["downbeatAt"]  # the phones' downbeat, from the same timeline
    beat_ms = 60_000.0 / 120.0

    server_clock.set(downbeat - 1.5 * beat_ms)  # inside the count-in, two beats to go
    panel.refresh_position()
    assert panel.bar_beat_label.text() == "count-in 2"
    assert panel.metronome.counting_in

    server_clock.set(downbeat + 5.25 * beat_ms)  # bar 2, beat 2, a quarter into the beat
    panel.refresh_position()
    assert panel.bar_beat_label.text() == "2 : 2"
    assert panel.clock_label.text() == "00:02.6"
    assert panel.metronome.current == 1 and not panel.metronome.counting_in
    assert panel.metronome.flash == 0.75

    server_clock.set(downbeat + 8.0 * beat_ms)  # the downbeat of bar 3
    panel.refresh_position()
    assert panel.bar_beat_label.text() == "3 : 1"
    assert panel.metronome.current == 0 and panel.metronome.flash == 1.0
    panel.metronome.grab()  # paints the accented downbeat without complaint


def test_seek_slider_seeks_for_everyone(
    console: MainWindow, followers: Followers, qtbot: QtBot
) -> None:
    ana = followers("Ana")
    slider = console.transport_panel.seek_slider
    slider.setSliderDown(True)
    slider.setValue(425)  # tenths of a second: 42.5 s, a quarter into bar 22 at 120 BPM 4/4
    slider.setSliderDown(False)  # released: sliderReleased seeks
    qtbot.waitUntil(lambda: bool(ana.payloads("seek")), timeout=5000)
    assert ana.payloads("seek")[-1]["positionMs"] == 42_000.0  # the nearest bar line
    qtbot.mouseClick(console.transport_panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ana.payloads("seek")[-1]["positionMs"] == 0.0, timeout=5000)
