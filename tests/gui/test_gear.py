"""The console leads the band's gear (issue 13): the Gear dialog turns Link, MIDI clock and
OSC on and off on the running server, the JOIN panel says what each is doing, the choice is
saved and survives a server restart and a new console. Against real parts: a UDP socket on
loopback receives the OSC the console sends, a real Ableton Link session (aalink)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from pythonosc.osc_packet import OscPacket

from bandsync_desktop.actors import GearOptions
from bandsync_desktop.config import Settings
from bandsync_desktop.gui.bridge import Bridge
from bandsync_desktop.gui.gear import options_from_settings, settings_from_options
from bandsync_desktop.gui.gear_dialog import LINK_CHOICES, summary
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetLibrary
from bandsync_desktop.gui.user_settings import UserSettings

from .conftest import Run
from .geometry import layout_problems

SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


class OscReceiver:
    """A UDP socket on 127.0.0.1: the lighting desk the console sends to."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.messages: list[tuple[str, tuple[Any, ...]]] = []

    def drain(self) -> list[tuple[str, tuple[Any, ...]]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.messages
            for timed in OscPacket(data).messages:
                self.messages.append((timed.message.address, tuple(timed.message.params)))

    def addresses(self) -> set[str]:
        return {address for address, _ in self.drain()}


def band_tempo(console: MainWindow) -> float:
    return console.bridge.session.timeline.latest.end_tempo_bpm


@pytest.fixture
def receiver() -> Any:
    made = OscReceiver()
    yield made
    made.sock.close()


def test_osc_out_chosen_in_the_dialog_runs_on_the_server_and_after_a_restart(
    console: MainWindow, qtbot: QtBot, run: Run, receiver: OscReceiver
) -> None:
    dialog = console.gear_dialog
    assert not dialog.isVisible()
    assert console.connection_panel.gear_label.text() == "Link off · MIDI off · OSC off"
    console.connection_panel.gear_button.click()
    qtbot.waitUntil(dialog.isVisible, timeout=2000)

    dialog.osc_edit.setText(f"127.0.0.1:{receiver.port}")
    dialog.osc_edit.editingFinished.emit()
    qtbot.waitUntil(
        lambda: console.connection_panel.gear_label.text() == "Link off · MIDI off · OSC running",
        timeout=5000,
    )
    assert dialog.status_labels["osc"].text() == "1 target"
    assert f"127.0.0.1:{receiver.port}" not in console.connection_panel.gear_label.text()
    assert "OSC: 1 target" in console.connection_panel.gear_label.toolTip()
    # saved for the next console
    saved = options_from_settings(console.user_settings.data)
    assert saved.osc_targets == (("127.0.0.1", receiver.port),)

    console.bridge.play()
    qtbot.waitUntil(lambda: "/bandsync/beat" in receiver.addresses(), timeout=5000)
    assert "/bandsync/transport" in receiver.addresses()

    # a restart of the server brings the bridge back with it
    run(console.bridge.stop())
    qtbot.waitUntil(lambda: "OSC at start" in console.connection_panel.gear_label.text())
    assert dialog.status_labels["osc"].text() == "starts with the server"
    assert run(console.start_server())
    qtbot.waitUntil(
        lambda: console.connection_panel.gear_label.text().endswith("OSC running"),
        timeout=5000,
    )
    receiver.messages.clear()
    receiver.drain()
    receiver.messages.clear()
    console.bridge.play()
    qtbot.waitUntil(lambda: "/bandsync/beat" in receiver.addresses(), timeout=5000)

    # off again: nothing more arrives
    dialog.osc_edit.setText("")
    dialog.osc_edit.editingFinished.emit()
    qtbot.waitUntil(
        lambda: console.connection_panel.gear_label.text() == "Link off · MIDI off · OSC off",
        timeout=5000,
    )
    qtbot.wait(100)
    receiver.drain()
    receiver.messages.clear()
    qtbot.wait(600)  # more than a beat at 120 BPM
    assert receiver.drain() == []
    assert options_from_settings(console.user_settings.data) == GearOptions()


def test_a_bad_osc_target_is_refused_and_changes_nothing(
    console: MainWindow, qtbot: QtBot, receiver: OscReceiver
) -> None:
    dialog = console.gear_dialog
    dialog.osc_edit.setText(f"127.0.0.1:{receiver.port}")
    dialog.osc_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: console.gear.statuses()["osc"]["state"] == "running", timeout=5000)
    for bad in ("lights", "127.0.0.1:99999", "10.0.0.5:7000, :80"):
        dialog.osc_edit.setText(bad)
        dialog.osc_edit.editingFinished.emit()
        assert console.gear.options.osc_targets == (("127.0.0.1", receiver.port),)
        assert any("OSC:" in text and "HOST:PORT" in text for text in console.log_panel.texts())
    assert console.gear.statuses()["osc"]["state"] == "running"


def test_link_lead_joins_a_link_session_from_the_dialog(console: MainWindow, qtbot: QtBot) -> None:
    aalink = pytest.importorskip("aalink")
    dialog = console.gear_dialog
    lead = next(i for i, (_, value) in enumerate(LINK_CHOICES) if value == "lead")
    dialog.link_box.setCurrentIndex(lead)
    dialog.link_box.activated.emit(lead)
    qtbot.waitUntil(lambda: console.gear.statuses()["link"].get("state") == "running", timeout=5000)
    # another Link peer on this machine (Live, a metronome app) finds the console and takes
    # the band's tempo
    peer = aalink.Link(100.0)
    peer.enabled = True
    try:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and (
            peer.num_peers < 1 or abs(peer.tempo - band_tempo(console)) > 0.01
        ):
            qtbot.wait(50)
        assert peer.num_peers >= 1
        assert peer.tempo == pytest.approx(band_tempo(console), abs=0.01)
        qtbot.waitUntil(
            lambda: "Link 1 peer" in console.connection_panel.gear_label.text(), timeout=3000
        )
    finally:
        peer.enabled = False
    off = next(i for i, (_, value) in enumerate(LINK_CHOICES) if value is None)
    dialog.link_box.setCurrentIndex(off)
    dialog.link_box.activated.emit(off)
    qtbot.waitUntil(lambda: console.gear.statuses()["link"] == {"state": "off"}, timeout=5000)


def test_the_gear_chosen_comes_back_in_a_new_console(
    qapp: Any, qtbot: QtBot, tmp_path: Path
) -> None:
    chosen = GearOptions(
        link="follow",
        osc_targets=(("127.0.0.1", 7000),),
        osc_listen=("127.0.0.1", 9000),
        osc_allow=("127.0.0.1",),
    )
    settings = UserSettings(tmp_path / "settings.json")
    settings.update(**settings_from_options(chosen))
    window = MainWindow(
        Bridge(Settings(host="127.0.0.1", port=0)),
        UserSettings(tmp_path / "settings.json").load(),
        SetLibrary(tmp_path / "sets"),
        interactive=False,
    )
    qtbot.addWidget(window)
    assert window.gear.options == chosen
    dialog = window.gear_dialog
    assert dialog.link_box.currentData() == "follow"
    assert dialog.osc_edit.text() == "127.0.0.1:7000"
    # chosen but the server is stopped: the bridges start with it
    assert window.connection_panel.gear_label.text() == "Link at start · MIDI off · OSC at start"
    assert summary(GearOptions(), window.gear.statuses()) == "Link off · MIDI off · OSC off"
    # a settings file edited by hand into nonsense is off, not a crash
    assert (
        options_from_settings(
            {
                "gear_link": "loud",
                "gear_osc_targets": [["x"], "y", ["h", "80"]],
                "gear_osc_listen": 5,
            }
        )
        == GearOptions()
    )


def test_the_gear_dialog_fits_and_shows_every_status(
    console: MainWindow, qtbot: QtBot, receiver: OscReceiver
) -> None:
    dialog = console.gear_dialog
    dialog.osc_edit.setText(f"127.0.0.1:{receiver.port}")
    dialog.osc_edit.editingFinished.emit()
    console.open_gear()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.status_labels["osc"].text() == "1 target", timeout=5000)
    hint = dialog.sizeHint()
    assert hint.width() <= 1366 and hint.height() <= 728, hint
    dialog.resize(hint)
    qtbot.wait(50)
    assert layout_problems(dialog) == []
    assert dialog.grab().save(str(SCREENS / "console-gear.png"))
