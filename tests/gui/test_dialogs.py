"""About, Settings and the fatal-error function."""

from __future__ import annotations

from importlib import resources

import pytest
from pytestqt.qtbot import QtBot

from bandsync_desktop import __version__
from bandsync_desktop.gui.dialogs import SettingsDialog, about_text, app_icon, show_fatal_error


def test_about_names_version_and_license() -> None:
    text = about_text()
    assert __version__ in text and "MIT" in text and "LICENSE" in text


def test_window_icon_comes_from_the_package_when_installed(qapp: object) -> None:
    icon_file = resources.files("bandsync_desktop").joinpath("resources", "icon.svg")
    icon = app_icon()
    if icon_file.is_file():
        assert icon is not None and not icon.isNull()
    else:
        assert icon is None


def test_settings_dialog_round_trips_values(qtbot: QtBot) -> None:
    values = {
        "host": "192.168.1.5",
        "port": 3005,
        "redis_url": "redis://127.0.0.1:6379/0",
        "default_tempo": 90.0,
        "default_beats_per_bar": 6,
        "default_beat_unit": 8,
    }
    dialog = SettingsDialog(values)
    qtbot.addWidget(dialog)
    assert dialog.values() == values
    dialog.redis_url.setText("  ")
    dialog.host.setText("")
    changed = dialog.values()
    assert changed["redis_url"] is None and changed["host"] == "0.0.0.0"


@pytest.mark.expect_log("Port in use: port 3001 is taken")
def test_fatal_errors_are_logged_even_without_a_dialog(caplog: pytest.LogCaptureFixture) -> None:
    show_fatal_error(None, "Port in use", "port 3001 is taken", interactive=False)
    assert [(r.levelname, r.name, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "bandsync.gui", "Port in use: port 3001 is taken")
    ]
