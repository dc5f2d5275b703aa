"""The console's composition root: settings, logging, QApplication, the qasync loop, the
server's start and stop, and the main window.

One process, one loop: the aiohttp/socket.io server runs in the Qt event loop through qasync.
The order follows what worked here (see stack-notes): create the ``QEventLoop``, set it as
the event loop, ``run_until_complete(start())``, show the window, ``run_forever()`` (returns
when Qt quits), then ``run_until_complete(shutdown())``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, config, log
from .actors import add_gear_arguments, gear_options
from .server.cli import add_server_arguments, cli_overrides

if TYPE_CHECKING:
    from .gui.main_window import MainWindow

SCREENSHOT_SCREEN = "1920x1080"  # the screen a screenshot starts on, unless --screen says
#: The installed .desktop file (packaging/linux/bandsync-desktop.desktop), without ".desktop".
DESKTOP_FILE_NAME = "bandsync-desktop"
DEMO_SONGS = (
    (
        "Opening groove",
        96.0,
        4,
        4,
        1,
        "[Intro]\n| Am  | F   | C   | G   |\n\n[Verse]\nAm         F\n"
        "Lights are low, the room is ready\nC                G\nCount us in and hold it steady",
    ),
    ("Waltz for the road", 138.0, 3, 4, 1, "[A]\n| D | D | G | A |\n| D | Bm | G A | D |"),
    ("Seven steps", 152.0, 7, 8, 2, "[Riff]\n| E5 . . . . . . |"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandsync-desktop",
        description="The BandSync leader console (add --headless for the server alone).",
    )
    add_server_arguments(parser)
    add_gear_arguments(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--screenshot", metavar="PNG", help="render the window offscreen into PNG and exit"
    )
    parser.add_argument(
        "--demo", action="store_true", help="with --screenshot: a few simulated members playing"
    )
    parser.add_argument(
        "--screen",
        metavar="WxH",
        type=_screen_size,
        default=_screen_size(SCREENSHOT_SCREEN),
        help="with --screenshot: the screen the window starts on, as a real start sizes it "
        f"(default {SCREENSHOT_SCREEN})",
    )
    parser.add_argument(
        "--profile-dir",
        metavar="DIR",
        help="keep settings and set lists under DIR instead of the user's directories",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the console until its window closes. Returns the process exit status."""
    args = build_parser().parse_args(list(argv))
    log.configure(getattr(logging, str(args.log_level).upper(), logging.INFO))
    screenshot = Path(args.screenshot) if args.screenshot else None
    screen_file: Path | None = None
    if screenshot is not None:
        screen_file = _offscreen_screen(*args.screen)
    elif not _has_display():
        log.GUI.error(
            "no display to open the console on (DISPLAY/WAYLAND_DISPLAY unset): run with "
            "--headless for the server alone, or --screenshot out.png to render the window"
        )
        return 2

    import qasync
    from PySide6.QtWidgets import QApplication

    from .gui.bridge import Bridge
    from .gui.dialogs import app_icon, show_fatal_error
    from .gui.main_window import MainWindow
    from .gui.setlist import SetLibrary
    from .gui.theme import STYLESHEET
    from .gui.user_settings import Profile, UserSettings

    qapp = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "bandsync"])
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("BandSync Desktop")
    qapp.setApplicationVersion(__version__)
    # Wayland compositors match the window to packaging/linux/<this>.desktop (dock icon, name).
    qapp.setDesktopFileName(DESKTOP_FILE_NAME)
    qapp.setStyleSheet(STYLESHEET)
    icon = app_icon()
    if icon is not None:
        qapp.setWindowIcon(icon)
    interactive = screenshot is None

    scratch: tempfile.TemporaryDirectory[str] | None = None
    if args.profile_dir:
        profile = Profile.under(Path(args.profile_dir))
    elif screenshot is not None:
        # A screenshot never touches the user's own settings or sets.
        scratch = tempfile.TemporaryDirectory(prefix="bandsync-shot-")
        profile = Profile.under(Path(scratch.name))
    else:
        profile = Profile.default()
    user_settings = UserSettings(profile.settings_file)
    try:
        user_settings.load()
        settings = config.load(cli_overrides(args), settings_file=profile.settings_file)
    except ValueError as exc:
        show_fatal_error(None, "Settings are not valid", str(exc), interactive=interactive)
        return 2

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    bridge = Bridge(settings)
    # Gear given on the command line is this run's choice; else the settings file's.
    gear = gear_options(args)
    window = MainWindow(
        bridge,
        user_settings,
        SetLibrary(profile.sets_dir),
        interactive=interactive,
        gear=gear if gear.any else None,
    )
    try:
        if screenshot is not None:
            status: int = loop.run_until_complete(
                take_screenshot(window, screenshot, demo=args.demo)
            )
            return status
        loop.run_until_complete(window.start_server())
        window.show()
        freeze_startup_objects()
        _close_on_signals(loop, window)
        loop.run_forever()
        return 0
    finally:
        loop.run_until_complete(bridge.shutdown())
        _cancel_leftovers(loop)
        loop.close()
        asyncio.set_event_loop(None)
        if scratch is not None:
            scratch.cleanup()
        if screen_file is not None:
            screen_file.unlink(missing_ok=True)


def _screen_size(text: str) -> tuple[int, int]:
    """``--screen 1366x768``: width and height in pixels."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a screen size such as 1366x768")
    size = int(width), int(height)
    if not (640 <= size[0] <= 8192 and 480 <= size[1] <= 8192):
        raise argparse.ArgumentTypeError(f"{text!r}: a screen is 640x480 to 8192x8192")
    return size


def _offscreen_screen(width: int, height: int) -> Path | None:
    """Render a screenshot on Qt's offscreen platform with a screen of this size, so the
    window takes the size a real start gives it there (``main_window.initial_size``); Qt's
    own offscreen screen is 800x800. A platform the caller chose with options is kept.

    Returns the screen's description file (removed at exit), or ``None``.
    """
    if os.environ.get("QT_QPA_PLATFORM", "offscreen") != "offscreen":
        return None
    screen = {"name": "screenshot", "x": 0, "y": 0, "width": width, "height": height}
    screen.update({"logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1})
    fd, name = tempfile.mkstemp(prefix="bandsync-screen-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"screens": [screen]}, out)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={name}"
    return Path(name)


def freeze_startup_objects() -> None:
    """Move everything built at start-up (modules, widgets, the server) out of the garbage
    collector's view: a full collection then scans only what was made since, which keeps its
    pause short (with 200 followers a full collection otherwise took ~45 ms here)."""
    gc.collect()
    gc.freeze()


def _close_on_signals(loop: asyncio.AbstractEventLoop, window: MainWindow) -> None:
    """Ctrl+C or SIGTERM closes the window, which stops the server cleanly first (without
    asking: nobody at the window sent the signal)."""
    if sys.platform == "win32":
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, window.quit_without_asking)


def _has_display() -> bool:
    """False on a Linux/BSD box with no X11 or Wayland display and no Qt platform chosen."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what libraries left sleeping (engine.io ping timers), as ``asyncio.run`` does."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


async def take_screenshot(window: object, path: Path, *, demo: bool) -> int:
    """Start the server, optionally play with simulated members, save the window as PNG."""
    from .gui.demo import DemoBand
    from .gui.main_window import MainWindow
    from .gui.setlist import SetSong

    assert isinstance(window, MainWindow)
    bridge = window.bridge
    if not await window.start_server():
        return 1
    # The size a real start gives the window on this screen (MainWindow._restore_geometry
    # with no saved geometry: the screenshot's profile is a fresh one), not a fixed one.
    window.show()
    band: DemoBand | None = None
    try:
        if demo and bridge.runner is not None:
            panel = window.setlist_panel
            for title, tempo, beats, unit, count_in, chart in DEMO_SONGS:
                panel.add_song(SetSong(title, tempo, beats, unit, count_in, chart))
            panel.songs.setCurrentRow(0)
            panel.load_current()
            band = DemoBand(f"http://127.0.0.1:{bridge.runner.port}")
            await band.start()
            bridge.set_count_in(0)
            bridge.play()
            await asyncio.sleep(2.3)  # members, health and loop-lag figures settle
        else:
            await asyncio.sleep(1.2)
        window.transport_panel.refresh_position()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            log.GUI.error("could not write the screenshot to %s", path)
            return 1
        log.GUI.info("screenshot saved to %s", path)
        return 0
    finally:
        if band is not None:
            await band.stop()
        await bridge.stop()
