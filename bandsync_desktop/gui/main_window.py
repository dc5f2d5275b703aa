"""The leader console's main window: what a band leader needs at a glance."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QVBoxLayout, QWidget
from shiboken6 import isValid

from ..core.clock import Clock, MonotonicClock
from ..core.session import Session
from ..log import GUI
from .bridge import Bridge, MemberRow, PortInUse, ServerStatus, StartupError
from .connection_panel import ConnectionPanel
from .dialogs import SettingsDialog, app_icon, offer_port, show_about, show_fatal_error
from .log_panel import LogPanel
from .members_panel import MembersPanel
from .setlist import SetLibrary
from .setlist_panel import DEFAULT_SET, SetListPanel
from .transport_panel import TempoPanel, TransportPanel
from .user_settings import SERVER_KEYS, UserSettings


class MainWindow(QMainWindow):
    """Tempo and transport on the left, members and log in the middle, join and set list
    on the right. Keyboard: Space play/pause, Up/Down tempo (Shift: 5), T tap, Esc stop,
    PgUp/PgDn previous/next song.

    Args:
        bridge: the seam to the server.
        user_settings: the per-user settings file (window geometry is saved there).
        library: the set lists.
        interactive: False when nobody is there to answer a dialog (screenshots, tests).
        clock: the clock of tap tempo (inject one in tests).
    """

    def __init__(
        self,
        bridge: Bridge,
        user_settings: UserSettings,
        library: SetLibrary,
        *,
        interactive: bool = True,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.bridge = bridge
        self.user_settings = user_settings
        self.interactive = interactive
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.setWindowTitle("BandSync — leader console")
        icon = app_icon()
        if icon is not None:
            self.setWindowIcon(icon)

        self.tempo_panel = TempoPanel(bridge, clock or MonotonicClock())
        self.transport_panel = TransportPanel(bridge)
        self.members_panel = MembersPanel(bridge)
        self.log_panel = LogPanel()
        self.connection_panel = ConnectionPanel()
        self.setlist_panel = SetListPanel(bridge, library)

        left = QVBoxLayout()
        left.addWidget(self.tempo_panel)
        left.addWidget(self.transport_panel)
        left.addStretch(1)
        middle = QVBoxLayout()
        middle.addWidget(self.members_panel, 3)
        middle.addWidget(self.log_panel, 2)
        right = QVBoxLayout()
        right.addWidget(self.connection_panel)
        right.addWidget(self.setlist_panel, 1)
        central = QWidget()
        columns = QHBoxLayout(central)
        columns.addLayout(left, 3)
        columns.addLayout(middle, 7)
        columns.addLayout(right, 4)
        self.setCentralWidget(central)
        central.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self._build_menus()
        self._build_shortcuts()
        bridge.session_changed.connect(self._on_session_changed)
        bridge.members_changed.connect(self._on_members_changed)
        bridge.status_changed.connect(self._on_status_changed)
        bridge.event_logged.connect(self.log_panel.add)
        bridge.command_failed.connect(self._on_command_failed)
        self.connection_panel.start_requested.connect(lambda: self._spawn(self.start_server()))
        self.connection_panel.stop_requested.connect(lambda: self._spawn(bridge.stop()))
        self.setlist_panel.problem.connect(lambda text: self.log_panel.add("error", text))
        self.setlist_panel.problem.connect(lambda text: self.statusBar().showMessage(text, 8000))

        self.setlist_panel.open_set(str(user_settings.get("current_set", DEFAULT_SET)))
        self._restore_geometry()
        self._on_status_changed(bridge.status())

    # -- building -------------------------------------------------------------------------

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        settings = QAction("&Settings…", self)
        settings.triggered.connect(self.open_settings)
        file_menu.addAction(settings)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        server_menu = menu.addMenu("&Server")
        start = QAction("&Start", self)
        start.triggered.connect(lambda: self._spawn(self.start_server()))
        stop = QAction("S&top", self)
        stop.triggered.connect(lambda: self._spawn(self.bridge.stop()))
        server_menu.addAction(start)
        server_menu.addAction(stop)
        help_menu = menu.addMenu("&Help")
        about = QAction("&About BandSync Desktop", self)
        about.triggered.connect(lambda: show_about(self))
        help_menu.addAction(about)

    def _build_shortcuts(self) -> None:
        bridge = self.bridge
        bindings = (
            (Qt.Key.Key_Space, bridge.toggle_play),
            (Qt.Key.Key_Escape, bridge.stop_transport),
            (Qt.Key.Key_Up, lambda: bridge.nudge_tempo(+1)),
            (Qt.Key.Key_Down, lambda: bridge.nudge_tempo(-1)),
            (Qt.KeyboardModifier.ShiftModifier | Qt.Key.Key_Up, lambda: bridge.nudge_tempo(+5)),
            (Qt.KeyboardModifier.ShiftModifier | Qt.Key.Key_Down, lambda: bridge.nudge_tempo(-5)),
            (Qt.Key.Key_T, self.tempo_panel.tap),
            (Qt.Key.Key_PageUp, lambda: self.setlist_panel.step(-1)),
            (Qt.Key.Key_PageDown, lambda: self.setlist_panel.step(+1)),
        )
        self.shortcuts: list[QShortcut] = []
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    # -- server lifetime ------------------------------------------------------------------

    async def start_server(self) -> bool:
        """Start the server; a taken port offers the next free one, other errors are fatal."""
        bridge = self.bridge
        try:
            await bridge.start()
        except PortInUse as exc:
            if self.interactive:
                if not offer_port(self, exc.port, exc.suggestion):
                    return False
            elif exc.suggestion is None:
                show_fatal_error(self, "Port in use", str(exc), interactive=False)
                return False
            else:
                GUI.info("%s; using port %s", exc, exc.suggestion)
            try:
                await bridge.start(port=exc.suggestion)
            except (PortInUse, StartupError) as again:
                show_fatal_error(
                    self, "Cannot start the server", str(again), interactive=self.interactive
                )
                return False
        except StartupError as exc:
            show_fatal_error(
                self, "Cannot start the server", str(exc), interactive=self.interactive
            )
            return False
        except Exception as exc:  # anything else that stops the start: say it, keep the window
            GUI.exception("the server did not start")
            show_fatal_error(
                self,
                "Cannot start the server",
                f"{exc.__class__.__name__}: {exc}",
                interactive=self.interactive,
            )
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            show_fatal_error(self, "Server error", str(exc), interactive=self.interactive)

    # -- signals from the bridge ----------------------------------------------------------

    def _on_session_changed(self, session: Session) -> None:
        self.tempo_panel.show_session(session)
        self.transport_panel.show_session(session)
        self.setlist_panel.show_session(session)

    def _on_members_changed(self, rows: list[MemberRow]) -> None:
        self.members_panel.set_rows(rows)

    def _on_status_changed(self, status: ServerStatus) -> None:
        self.connection_panel.show_status(status)
        title = "BandSync — leader console"
        if status.running:
            title += f" — {status.followers} following"
        self.setWindowTitle(title)

    def _on_command_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    # -- settings -------------------------------------------------------------------------

    def open_settings(self) -> None:
        current = {key: getattr(self.bridge.settings, key) for key in SERVER_KEYS}
        current.update({k: v for k, v in self.user_settings.data.items() if k in SERVER_KEYS})
        dialog = SettingsDialog(current, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        values = dialog.values()
        self.apply_settings(values)

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Save server settings for this user; they apply at the next server start."""
        self.user_settings.update(**values)
        self.bridge.settings = dataclasses.replace(self.bridge.settings, **values)
        self.log_panel.add("info", "Settings saved; they apply when the server next starts")

    def _restore_geometry(self) -> None:
        saved = self.user_settings.get("window_geometry")
        if isinstance(saved, str):
            self.restoreGeometry(QByteArray(base64.b64decode(saved)))
        else:
            self.resize(1600, 980)

    def _save_state(self) -> None:
        geometry = bytes(self.saveGeometry().data())
        try:
            self.user_settings.update(
                window_geometry=base64.b64encode(geometry).decode("ascii"),
                current_set=self.setlist_panel.setlist.name,
            )
        except OSError as exc:
            GUI.error("cannot save the settings: %s", exc)

    # -- closing --------------------------------------------------------------------------

    def _close_after_stop(self, _task: asyncio.Task[Any]) -> None:
        if isValid(self):  # the window may be gone already (deleted by its owner)
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing stops the server first (phones are told), then the window closes."""
        if self.bridge.running:
            event.ignore()
            if not self._closing:
                self._closing = True
                self._save_state()
                task = self._spawn(self.bridge.stop())
                task.add_done_callback(self._close_after_stop)
            return
        if not self._closing:
            self._save_state()
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        event.accept()
