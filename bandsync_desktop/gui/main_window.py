"""The leader console's main window: what a band leader needs at a glance."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Coroutine, Mapping
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QKeyCombination, QObject, QRect, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QGroupBox,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSizePolicy,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from ..actors import GearOptions
from ..core.clock import Clock, MonotonicClock
from ..core.session import CONSOLE, Session
from ..log import GUI
from .bridge import Bridge, MemberRow, PortInUse, ServerStatus, StartupError
from .connection_panel import ConnectionPanel
from .cue_panel import CuePanel
from .dialogs import SettingsDialog, app_icon, offer_port, show_about, show_fatal_error
from .form_panel import FormPanel
from .gear import GearControl, options_from_settings, settings_from_options
from .gear_dialog import GearDialog, summary, summary_tooltip
from .log_panel import LogPanel
from .members_panel import MembersPanel
from .message_panel import MessagePanel
from .plaintext import message_box
from .setlist import SetLibrary
from .setlist_panel import DEFAULT_SET, SetListPanel
from .transport_panel import TempoPanel, TransportPanel
from .user_settings import SERVER_KEYS, UserSettings

DEFAULT_SIZE = QSize(1600, 980)  # where the screen has room
COLUMN_STRETCH = (3, 7, 4)  # tempo and transport, members and log, join and set list
PANEL_MARGIN_PX = 6  # inside each panel (Qt's 9 px cost a laptop's columns 36 px)
# The keys of the show. Typing keys (Space, letters) still type in a text field; every
# other one works whatever has the keyboard.
# Letters of the show's keys: in a text field they type.
TYPING_KEYS = frozenset(
    {Qt.Key.Key_Space, Qt.Key.Key_T, Qt.Key.Key_J, Qt.Key.Key_V, Qt.Key.Key_E, Qt.Key.Key_N}
)
PORTABLE = QKeySequence.SequenceFormat.PortableText


def initial_size(available: QRect, minimum: QSize) -> QSize:
    """The window's first size: the default where the screen has room, else the screen's
    available area (never below what the layout needs)."""
    width = min(DEFAULT_SIZE.width(), available.width())
    height = min(DEFAULT_SIZE.height(), available.height())
    return QSize(max(width, minimum.width()), max(height, minimum.height()))


def _types_text(widget: QWidget) -> bool:
    """A field where Space and letters are text: a line edit (not a spin box's) or an
    editable text box."""
    if isinstance(widget, QLineEdit):
        return not isinstance(widget.parent(), QAbstractSpinBox)
    if isinstance(widget, (QPlainTextEdit, QTextEdit)):
        return not widget.isReadOnly()
    return False


class ShowKeys(QObject):
    """Gives the show's shortcuts to the window whatever widget has the keyboard.

    Install it on every widget of the window that can take the keyboard.

    A focused widget claims the keys it uses (a spin box: Up/Down and Space; a list: the
    arrows; a line edit: every printable key) by accepting Qt's ``ShortcutOverride``, and
    then the window's shortcut never fires. For the show's keys this filter answers the
    override first and leaves it unaccepted, so the shortcut wins; in a text field the
    typing keys are left alone (Space in the message box types a space).

    Args:
        window: the window whose shortcuts these are (dialogs are left alone).
        keys: the shortcuts' key sequences.
    """

    def __init__(self, window: QWidget, keys: list[QKeySequence]) -> None:
        super().__init__(window)
        self._window = window
        self._keys = {key.toString(PORTABLE) for key in keys}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window:
            return False
        # The keypad flag (arrow keys on some keyboards) is not part of a shortcut.
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        pressed = QKeySequence(QKeyCombination(modifiers, Qt.Key(event.key())))
        if pressed.toString(PORTABLE) not in self._keys:
            return False
        if _types_text(watched) and event.key() in TYPING_KEYS:
            return False  # typed into the field
        event.ignore()  # not claimed by the widget: the window's shortcut takes the key
        return True


class MainWindow(QMainWindow):
    """Tempo and transport on the left, members, stage message and log in the middle, join
    and set list on the right, in a splitter that fits a 1366x768 laptop.

    Keyboard, whatever has the keyboard: Space play/pause, Up/Down tempo (Shift: 5), T tap,
    Esc stop, PgUp/PgDn previous/next song, F1-F6 stage cues, F7 a typed cue, F8 clear
    the cue, J jump to a section, V vamp, E end the song; in a text box the letters and
    Space type. Enter in
    the tempo box sends the tempo and gives the keyboard back to the window.

    Args:
        bridge: the seam to the server.
        user_settings: the per-user settings file (window geometry is saved there).
        library: the set lists.
        interactive: False when nobody is there to answer a dialog (screenshots, tests).
        clock: the clock of tap tempo (inject one in tests).
        gear: the bridges to run (Link, MIDI clock, OSC); default: as the settings file
            says (``gear_*`` entries, saved whenever the leader changes them).
    """

    def __init__(
        self,
        bridge: Bridge,
        user_settings: UserSettings,
        library: SetLibrary,
        *,
        interactive: bool = True,
        clock: Clock | None = None,
        gear: GearOptions | None = None,
    ) -> None:
        super().__init__()
        self.bridge = bridge
        self.user_settings = user_settings
        self.interactive = interactive
        self._closing = False
        self._asked_to_close = False  # the leader already said yes (or nobody can be asked)
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
        self.message_panel = MessagePanel(bridge)
        self.cue_panel = CuePanel(bridge)
        bridge.play_form = bool(user_settings.get("play_form", False))
        self.form_panel = FormPanel(bridge)
        self.transport_panel.add_row(self.form_panel)  # the calls under the transport
        self.gear = GearControl(
            bridge, gear if gear is not None else options_from_settings(user_settings.data), self
        )
        self.gear.chosen.connect(
            lambda options: self.user_settings.update(**settings_from_options(options))
        )
        self.gear.problem.connect(lambda text: self.log_panel.add("error", text))
        self.gear.status_changed.connect(self._show_gear)
        self.gear_dialog = GearDialog(self.gear, self, interactive=interactive)

        # Three columns in a splitter: each keeps the width it is given whatever its labels
        # say, and the leader can give one more room.
        self.columns = QSplitter(Qt.Orientation.Horizontal)
        self.columns.setChildrenCollapsible(False)
        self.columns.setHandleWidth(6)
        self._columns_moved = False  # the leader dragged a handle: keep their widths
        self.columns.splitterMoved.connect(self._on_columns_moved)
        for column, panels in enumerate(
            (
                ((self.tempo_panel, 0), (self.transport_panel, 0)),
                (
                    (self.members_panel, 3),
                    (self.message_panel, 0),
                    (self.cue_panel, 0),
                    (self.log_panel, 2),
                ),
                ((self.connection_panel, 0), (self.setlist_panel, 1)),
            )
        ):
            holder = QWidget()
            # Every column may grow, so a bigger screen's room is shared by COLUMN_STRETCH.
            holder.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            stack = QVBoxLayout(holder)
            stack.setContentsMargins(0, 0, 0, 0)
            for panel, stretch in panels:
                stack.addWidget(panel, stretch)
            if column == 0:
                stack.addStretch(1)
            self.columns.addWidget(holder)
            self.columns.setStretchFactor(column, COLUMN_STRETCH[column])
        for box in self.columns.findChildren(QGroupBox):
            layout = box.layout()
            if layout is not None:  # one margin for every panel: room for a laptop's columns
                layout.setContentsMargins(*(PANEL_MARGIN_PX,) * 4)
        central = QWidget()
        outer = self._outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.addWidget(self.columns)
        self.setCentralWidget(central)
        central.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.tempo_panel.entry_done.connect(self.take_keyboard)
        self.cue_panel.entry_done.connect(self.take_keyboard)

        self._build_menus()
        self._build_shortcuts()
        bridge.session_changed.connect(self._on_session_changed)
        bridge.members_changed.connect(self._on_members_changed)
        bridge.status_changed.connect(self._on_status_changed)
        bridge.event_logged.connect(self.log_panel.add)
        bridge.command_failed.connect(self._on_command_failed)
        self.connection_panel.start_requested.connect(lambda: self._spawn(self.start_server()))
        self.connection_panel.stop_requested.connect(self.request_stop)
        self.connection_panel.gear_requested.connect(self.open_gear)
        self._show_gear(self.gear.statuses())
        self.setlist_panel.problem.connect(lambda text: self.log_panel.add("error", text))
        self.setlist_panel.saved.connect(lambda text: self.log_panel.add("info", text))
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
        play_form = QAction("Play the chart's &form", self)
        play_form.setCheckable(True)
        play_form.setChecked(self.bridge.play_form)
        play_form.setToolTip(
            "Songs go on the stands with their chart's sections: each section's tempo and"
            " meter on its bar, Jump/Vamp/End, and the song ends where the chart does"
            " (from the next song on)"
        )
        play_form.toggled.connect(self._on_play_form)
        file_menu.addAction(play_form)
        self.play_form_action = play_form
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        server_menu = menu.addMenu("&Server")
        start = QAction("&Start", self)
        start.triggered.connect(lambda: self._spawn(self.start_server()))
        stop = QAction("S&top", self)
        stop.triggered.connect(self.request_stop)
        server_menu.addAction(start)
        server_menu.addAction(stop)
        server_menu.addSeparator()
        gear = QAction("&Gear: Link, MIDI clock, OSC…", self)
        gear.setShortcut(QKeySequence("Ctrl+G"))
        gear.triggered.connect(self.open_gear)
        server_menu.addAction(gear)
        help_menu = menu.addMenu("&Help")
        about = QAction("&About BandSync Desktop", self)
        about.triggered.connect(lambda: show_about(self))
        help_menu.addAction(about)

    def _build_shortcuts(self) -> None:
        bridge = self.bridge
        tempo = self.tempo_panel
        bindings = (
            (Qt.Key.Key_Space, bridge.toggle_play),
            (Qt.Key.Key_Escape, bridge.stop_transport),
            (Qt.Key.Key_Up, lambda: tempo.nudge(+1)),
            (Qt.Key.Key_Down, lambda: tempo.nudge(-1)),
            (Qt.KeyboardModifier.ShiftModifier | Qt.Key.Key_Up, lambda: tempo.nudge(+5)),
            (Qt.KeyboardModifier.ShiftModifier | Qt.Key.Key_Down, lambda: tempo.nudge(-5)),
            (Qt.Key.Key_T, self.tempo_panel.tap),
            (Qt.Key.Key_PageUp, lambda: self.setlist_panel.step(-1)),
            (Qt.Key.Key_PageDown, lambda: self.setlist_panel.step(+1)),
            (Qt.Key.Key_N, lambda: self.setlist_panel.segue_next()),
            (
                Qt.KeyboardModifier.ShiftModifier | Qt.Key.Key_N,
                lambda: self.setlist_panel.segue_next("bar"),
            ),
            *self.cue_panel.shortcut_bindings(),  # F1-F8: stage cues
            *self.form_panel.shortcut_bindings(),  # J, V, E: the leader's calls
        )
        self.shortcuts: list[QShortcut] = []
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)
        # Whatever has the keyboard: the filter watches every widget of the window that can
        # take it (not the whole application: every paint and timer event of the process
        # would pass through Python first).
        self.show_keys = ShowKeys(self, [s.key() for s in self.shortcuts])
        for widget in self.findChildren(QWidget):
            if widget.focusPolicy() != Qt.FocusPolicy.NoFocus or widget.focusProxy():
                widget.installEventFilter(self.show_keys)

    def take_keyboard(self) -> None:
        """Give the keyboard back to the window (after a typed tempo): the show's keys."""
        central = self.centralWidget()
        if central is not None:
            central.setFocus(Qt.FocusReason.OtherFocusReason)

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

    def request_stop(self) -> asyncio.Task[Any] | None:
        """Stop server (the button, the menu): while phones follow, only once the leader
        says so. Returns the stop under way, or ``None`` if nothing stops."""
        if not self.bridge.running:
            return None
        if not self.confirm_cut_off("Stop the server?", "Stop server"):
            return None
        return self._spawn(self.bridge.stop())

    def confirm_cut_off(self, title: str, action: str) -> bool:
        """Ask before the phones lose the server; True at once when none follows or
        nobody is there to answer."""
        followers = self.bridge.status().followers
        if not self.interactive or followers == 0:
            return True
        phones = "1 phone is" if followers == 1 else f"{followers} phones are"
        box = message_box(
            self,
            QMessageBox.Icon.Question,
            title,
            f"{phones} following the band and will lose the server: they keep the last "
            "tempo, but no change reaches them until it is back. The song, tempo, message "
            "and leader key are kept for the next start.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        yes = box.button(QMessageBox.StandardButton.Yes)
        if yes is not None:
            yes.setText(action)
        answer = box.exec()
        box.deleteLater()
        return answer == QMessageBox.StandardButton.Yes

    def quit_without_asking(self) -> None:
        """Close (Ctrl+C, SIGTERM): nobody is at the window to answer a question."""
        self._asked_to_close = True
        self.close()

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
        self.message_panel.show_session(session)
        self.cue_panel.show_session(session)
        self.form_panel.show_session(session)
        self.members_panel.show_leader(
            running=self.bridge.running, console_leads=session.leader_id == CONSOLE
        )

    def _on_members_changed(self, rows: list[MemberRow]) -> None:
        self.members_panel.set_rows(rows)

    def _on_status_changed(self, status: ServerStatus) -> None:
        self.connection_panel.show_status(status)
        if not status.running:
            self.members_panel.show_leader(running=False, console_leads=False)
            self.message_panel.show_stopped()
            self.cue_panel.show_stopped()
            self.form_panel.show_stopped()
        title = "BandSync — leader console"
        if status.running:
            title += f" — {status.followers} following"
        self.setWindowTitle(title)

    def _on_command_failed(self, message: str) -> None:
        # The status bar draws plain text: a message that quotes a name is shown as sent.
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
        if isinstance(saved, str) and self.restoreGeometry(QByteArray(base64.b64decode(saved))):
            self._fit_to_screen()
            return
        screen = self.screen()
        if screen is None:
            self.resize(DEFAULT_SIZE)
            return
        available = screen.availableGeometry()
        size = initial_size(available, self.minimumSizeHint())
        self.resize(size)
        self.move(
            available.x() + max(0, (available.width() - size.width()) // 2),
            available.y() + max(0, (available.height() - size.height()) // 2),
        )

    def _fit_to_screen(self) -> None:
        """A size saved on a bigger screen (a monitor since unplugged) shrinks to this one."""
        screen = self.screen()
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        available = screen.availableGeometry()
        size = self.size().boundedTo(available.size()).expandedTo(self.minimumSizeHint())
        if size != self.size():
            self.resize(size)

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

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if not self._columns_moved:
            self._share_columns()

    def _share_columns(self) -> None:
        """Room beyond the columns' minimums is shared by COLUMN_STRETCH (a splitter by
        itself grows its columns by their current widths: the narrow one stays narrow)."""
        splitter = self.columns
        columns = [splitter.widget(i) for i in range(splitter.count())]
        minimums = [column.minimumSizeHint().width() for column in columns if column is not None]
        count = len(minimums)
        margins = self._outer.contentsMargins()  # the central widget is the window's width
        room = self.width() - margins.left() - margins.right()
        room -= splitter.handleWidth() * (count - 1)
        extra = max(0, room - sum(minimums))
        total = sum(COLUMN_STRETCH)
        shares = zip(minimums, COLUMN_STRETCH, strict=True)
        sizes = [low + extra * share // total for low, share in shares]
        sizes[-1] += max(0, room - sum(sizes))  # what integer division left over
        splitter.setSizes(sizes)

    def _on_columns_moved(self, _pos: int, _index: int) -> None:
        self._columns_moved = True

    def _on_play_form(self, on: bool) -> None:
        self.bridge.play_form = on
        self.setlist_panel.publish_set()  # the lengths of its songs are known or not now
        self.user_settings.update(play_form=on)

    def open_gear(self) -> None:
        """Show the gear dialog (Link, MIDI clock, OSC) beside the window."""
        dialog = self.gear_dialog
        if dialog.isVisible():  # open already, maybe behind the window: bring it up
            dialog.raise_()
            dialog.activateWindow()
        else:
            dialog.show()

    def _show_gear(self, statuses: Mapping[str, Mapping[str, Any]]) -> None:
        self.connection_panel.show_gear(
            summary(self.gear.options, statuses), summary_tooltip(statuses)
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing stops the server first (phones are told), then the window closes."""
        if self.bridge.running:
            event.ignore()
            if not self._closing and not self._asked_to_close:
                if not self.confirm_cut_off("Quit BandSync?", "Quit"):
                    return
                self._asked_to_close = True
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
