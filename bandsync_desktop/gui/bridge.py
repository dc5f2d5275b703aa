"""The one seam between the console's widgets and the in-process server.

Widgets call the bridge's methods (commands in) and listen to its Qt signals (state out).
The bridge owns the server's lifetime (``ServerRunner``) and sends every command through
``ConsoleFacade``, which runs the same core rules a phone's socket event goes through. No
widget touches handlers, the service or storage.

Publications of the server reach the bridge in-process (``SessionService.add_listener``).
They can come in bursts (200 phones joining, health reports every few seconds per phone), so
the bridge only marks things dirty there and a timer publishes coalesced updates: a slot never
does heavy work, and the window never redraws a table 200 times in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QHostAddress, QNetworkInterface

from ..actors.console import ConsoleFacade, SongSpec
from ..config import Settings
from ..core.clock import Clock
from ..core.conductor import CallAt
from ..core.errors import BandSyncError
from ..core.health import classify
from ..core.session import CONSOLE, CONSOLE_NAME, SegueAt, Session
from ..core.stageset import StageSet
from ..core.timeline import Boundary
from ..core.validation import TEMPO_MAX, TEMPO_MIN
from ..log import GUI
from ..server.app import ServerRunner, create_app
from ..server.net import next_free_port, port_is_free
from ..server.readmodel import ServerView
from ..server.storage import StoreState

MEMBERS_REFRESH_MS = 250  # coalesced member-table updates at most this often
STATUS_REFRESH_MS = 1000  # connection panel figures (lag, counts, "last seen" ages)
BANDSYNC_LOGGER = "bandsync"  # parent of the server, storage and core loggers

STORE_TEXT = {
    StoreState.MEMORY: "in memory",
    StoreState.REDIS: "Redis",
    StoreState.REDIS_UNREACHABLE: "Redis unreachable — serving from memory",
}


class PortInUse(Exception):
    """The port is taken. ``suggestion`` is the next free port, if one was found."""

    def __init__(self, host: str, port: int, suggestion: int | None) -> None:
        offer = f"; port {suggestion} is free" if suggestion else ""
        super().__init__(f"port {port} on {host or '0.0.0.0'} is already in use{offer}")
        self.host = host
        self.port = port
        self.suggestion = suggestion


class StartupError(Exception):
    """The server cannot start with these settings (an invalid Redis URL, say)."""


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One line of the member table."""

    client_id: str
    socket_id: str
    name: str
    role: str
    device: str
    rtt_ms: float | None
    uncertainty_ms: float | None
    seen_ago_s: float | None
    status: str
    #: The member's output latency (ms, its click sent that much early) and which output it
    #: plays through ("speaker", "wired", "bluetooth"), as its page reports them.
    output_delay_ms: float | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What the connection panel shows."""

    state: str
    running: bool
    host: str
    port: int
    urls: tuple[str, ...]
    leader_key: str | None
    leader_name: str | None
    store: str
    followers: int
    connections: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None


def lan_addresses(host: str) -> list[str]:
    """Addresses phones can reach: every non-loopback IPv4 address, or the bound host."""
    if host not in ("", "0.0.0.0"):
        return [host]
    found: list[str] = []
    for address in QNetworkInterface.allAddresses():
        if address.protocol() != QAbstractSocket.NetworkLayerProtocol.IPv4Protocol:
            continue
        if address.isLoopback() or address == QHostAddress(QHostAddress.SpecialAddress.Any):
            continue
        text = address.toString()
        if text not in found:
            found.append(text)
    return found or ["127.0.0.1"]


class _LogForwarder(logging.Handler):
    """Server and storage warnings/errors (Redis unreachable, a failing task) into the log
    view. Qt queues a signal emitted from another thread, so any thread may log."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__(level=logging.WARNING)
        self._bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(GUI.name):
            return  # the console's own messages reach the log view directly
        level = "error" if record.levelno >= logging.ERROR else "warning"
        with contextlib.suppress(RuntimeError):  # the bridge is gone (shutting down)
            self._bridge.event_logged.emit(level, record.getMessage())


class Bridge(QObject):
    """The console's facade over the server: commands in, Qt signals out.

    Signals:
        session_changed(object): the band session (a ``core.session.Session``) after a change.
        members_changed(object): the member table as a ``list[MemberRow]`` (coalesced).
        status_changed(object): a ``ServerStatus`` for the connection panel.
        event_logged(str, str): a level (``info``/``warning``/``error``) and a log line.
        command_failed(str): a refused or failed command, in words for the leader.
        server_state_changed(bool): the server started (True) or stopped (False).

    Args:
        settings: the server's settings (host, port, store, defaults).
        parent: the owning QObject.
        clock: the server's clock; inject a ``ManualClock`` in tests.
    """

    session_changed = Signal(object)
    members_changed = Signal(object)
    status_changed = Signal(object)
    event_logged = Signal(str, str)
    command_failed = Signal(str)
    server_state_changed = Signal(bool)

    def __init__(
        self, settings: Settings, parent: QObject | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._clock = clock  # the server's clock; None means the real monotonic one
        self.session_id = settings.band_session_id
        self.runner: ServerRunner | None = None
        #: What the console reads of the running server, and its subscription.
        self.view: ServerView | None = None
        self.console: ConsoleFacade | None = None
        #: Whether a song's chart sections go with it (the server then plays the form: each
        #: section's tempo and meter, the calls, the song's end). Off until the leader asks:
        #: a chart sketched once (a verse written for three) would end the song too soon.
        self.play_form = False
        self._state = "stopped"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._urls: tuple[str, ...] = ()
        self._members_dirty = False
        self._requested_tempo: float | None = None
        self._tempo_task: asyncio.Task[Any] | None = None
        self._stop_task: asyncio.Future[None] | None = None
        # The band session as the last server of this run left it: a restart starts from it,
        # so Stop/Start server keeps the song, tempo, message and leader key the band had.
        self._kept: Session | None = None
        self._log_forwarder = _LogForwarder(self)
        self._members_timer = QTimer(self)
        self._members_timer.setInterval(MEMBERS_REFRESH_MS)
        self._members_timer.timeout.connect(self._flush_members)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_REFRESH_MS)
        self._status_timer.timeout.connect(self._on_status_timer)

    # -- server lifetime ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.runner is not None

    @property
    def state(self) -> str:
        return self._state

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Start the server and the band session.

        Raises:
            PortInUse: the port is taken (with the next free one, if any).
            StartupError: the settings are unusable (an invalid Redis URL, say).
        """
        if self.runner is not None or self._state == "starting":
            return  # running already, or a start is under way (a double click)
        host = self.settings.host if host is None else host
        port = self.settings.port if port is None else port
        self._set_state("starting")
        try:
            app = create_app(
                self.settings, clock=self._clock, band_session=True, carry_over=self._kept
            )
        except ValueError as exc:
            self._set_state("failed")
            raise StartupError(str(exc)) from exc
        runner = ServerRunner(app)
        try:
            await runner.start(host, port)
        except BaseException as exc:
            self._set_state("failed")
            if not isinstance(exc, OSError):
                raise
            if exc.errno == errno.EACCES:
                raise StartupError(
                    f"not allowed to listen on port {port} (ports below 1024 need "
                    "administrator rights): choose another port in Settings"
                ) from exc
            if exc.errno == errno.EADDRINUSE or not port_is_free(host, port):
                raise PortInUse(host, port, next_free_port(host, port)) from exc
            raise StartupError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.runner = runner
        actors = runner.actors
        assert actors is not None  # (the console's server always has the band session)
        self.console = ConsoleFacade(actors.host)
        self.view = actors.host.view
        self.view.subscribe(self._on_publication)
        logging.getLogger(BANDSYNC_LOGGER).addHandler(self._log_forwarder)
        self._urls = tuple(
            f"http://{address}:{runner.port}/s/{self.session_id}" for address in lan_addresses(host)
        )
        self._set_state(f"running on port {runner.port}")
        self._log("info", f"Server started on {host or '0.0.0.0'}:{runner.port}")
        if self._kept is not None:
            self._log("info", "The band's song, tempo, message and leader key are kept")
        self._members_timer.start()
        self._status_timer.start()
        self.server_state_changed.emit(True)
        self._members_dirty = True
        self._flush_members()
        session = self.session
        if session is not None:
            self.session_changed.emit(session)

    async def stop(self) -> None:
        """Stop the server: phones are told, sockets closed, tasks cancelled, store closed.

        Safe to call again while a stop is under way (closing the window, then quitting):
        every caller waits for the one stop.
        """
        if self._stop_task is None or self._stop_task.done():
            if self.runner is None:
                return
            self._stop_task = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        runner = self.runner
        if runner is None:
            return
        self._set_state("stopping")
        if self._tasks:
            # Commands already accepted finish first: nothing accepted is lost.
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        if self.view is not None:
            self.view.unsubscribe(self._on_publication)
        logging.getLogger(BANDSYNC_LOGGER).removeHandler(self._log_forwarder)
        # After the accepted commands, before the phones are cut off: what the band had.
        # A copy: the phones' leaving still changes the server's own while it stops.
        session = self.session
        if session is not None:
            self._kept = Session.from_dict(session.to_dict())
        self._members_timer.stop()
        self._status_timer.stop()
        await runner.stop()
        self.runner = None
        self.console = None
        self.view = None
        self._set_state("stopped")
        self._log("info", "Server stopped")
        self.server_state_changed.emit(False)
        self.members_changed.emit([])

    # -- reading state (cheap, no I/O) ----------------------------------------------------

    @property
    def session(self) -> Session | None:
        """The band session as this node last wrote or read it."""
        return self.console.session if self.console is not None else None

    def now_ms(self) -> float | None:
        """Server time, or ``None`` when the server is not running."""
        return self.view.now_ms() if self.view is not None else None

    def status(self) -> ServerStatus:
        runner = self.runner
        view = self.view
        session = self.session
        if runner is None or view is None:
            return ServerStatus(
                self._state,
                False,
                self.settings.host,
                self.settings.port,
                (),
                None,
                None,
                "—",
                0,
                0,
                None,
                None,
            )
        lag = view.loop_lag()
        store_state = view.store_state
        leader_name = None
        if session is not None:
            leader = session.leader
            leader_name = (
                CONSOLE_NAME
                if session.leader_id == CONSOLE
                else leader.display_name
                if leader
                else None
            )
        return ServerStatus(
            state=self._state,
            running=True,
            host=runner.host,
            port=runner.port,
            urls=self._urls,
            leader_key=session.leader_key if session else None,
            leader_name=leader_name,
            store=STORE_TEXT.get(store_state, str(store_state)),
            followers=len(session.members) if session else 0,
            connections=view.connection_count,
            lag_p50_ms=lag.p50_ms,
            lag_p99_ms=lag.p99_ms,
        )

    def member_rows(self) -> list[MemberRow]:
        """The member table now, in joining order."""
        view = self.view
        session = self.session
        if view is None or session is None:
            return []
        now = view.now_ms()
        rows = []
        for member in sorted(session.members.values(), key=lambda m: (m.joined_at, m.client_id)):
            link = view.link(member.socket_id)
            rtt = link.rtt_ms if link else None
            uncertainty = link.uncertainty_ms if link else None
            seen = (now - link.last_seen) / 1000.0 if link and link.last_seen else None
            rows.append(
                MemberRow(
                    client_id=member.client_id,
                    socket_id=member.socket_id,
                    name=member.display_name,
                    role=session.role_of(member.client_id),
                    device=member.device or "",
                    rtt_ms=rtt,
                    uncertainty_ms=uncertainty,
                    seen_ago_s=seen,
                    status=classify(rtt, uncertainty, (seen or 0.0) * 1000.0) if link else "poor",
                    output_delay_ms=link.output_delay_ms if link else None,
                    output=link.output if link else None,
                )
            )
        return rows

    # -- commands (slots for widgets) ------------------------------------------------------

    def set_tempo(self, bpm: float, boundary: Boundary = "beat") -> asyncio.Task[Any] | None:
        """Change the band's tempo, taking effect at ``boundary`` while playing."""
        self._requested_tempo = bpm
        task = self._submit("set tempo", lambda c: c.set_tempo(bpm, boundary))
        self._tempo_task = task
        return task

    def nudge_tempo(self, delta: float) -> asyncio.Task[Any] | None:
        """Tempo plus ``delta`` BPM, from the last requested tempo while one is in flight."""
        base = self.current_tempo()
        if base is None:
            self._fail("cannot change the tempo: the server is not running")
            return None
        return self.set_tempo(max(TEMPO_MIN, min(TEMPO_MAX, round(base + delta, 1))))

    def current_tempo(self) -> float | None:
        if self._tempo_task is not None and not self._tempo_task.done():
            return self._requested_tempo
        session = self.session
        return session.timeline.latest.end_tempo_bpm if session is not None else None

    def play(self) -> asyncio.Task[Any] | None:
        return self._submit("play", lambda c: c.play())

    def pause(self) -> asyncio.Task[Any] | None:
        return self._submit("pause", lambda c: c.pause())

    def toggle_play(self) -> asyncio.Task[Any] | None:
        session = self.session
        if session is not None and session.timeline.latest.playing:
            return self.pause()
        return self.play()

    def stop_transport(self) -> asyncio.Task[Any] | None:
        return self._submit("stop", lambda c: c.stop())

    def seek(self, position_ms: float) -> asyncio.Task[Any] | None:
        """Jump the band to the bar line nearest ``position_ms`` (``bar_start``): a band
        comes in on a downbeat, never mid-bar."""
        session = self.session
        now = self.now_ms()
        if session is not None and now is not None:
            position_ms = bar_start(position_ms, session, now)
        return self._submit("seek", lambda c: c.seek(position_ms))

    def set_meter(self, beats_per_bar: int, beat_unit: int) -> asyncio.Task[Any] | None:
        return self._submit("set meter", lambda c: c.set_meter(beats_per_bar, beat_unit))

    def set_count_in(self, bars: int) -> asyncio.Task[Any] | None:
        return self._submit("set count-in", lambda c: c.set_count_in(bars))

    def set_message(self, text: str) -> asyncio.Task[Any] | None:
        """Show ``text`` on every phone (the stage message); an empty text clears it."""
        return self._submit("send the message", lambda c: c.set_message(text))

    def set_song(self, spec: SongSpec | None) -> asyncio.Task[Any] | None:
        """Put a song on the stands; with ``play_form`` its chart's sections too."""
        form = self.play_form
        return self._submit("choose song", lambda c: c.set_song(spec, form=form))

    def show_set(self, setlist: StageSet | None) -> asyncio.Task[Any] | None:
        """The set on every phone; sent only when it differs from the one they have (and
        not at all while the server is stopped: the next start shows what the panel has)."""
        session = self.session
        if self.console is None or session is None or session.setlist == setlist:
            return None
        return self._submit("show the set", lambda c: c.set_setlist(setlist))

    def segue(self, spec: SongSpec | None, at: SegueAt = "end") -> asyncio.Task[Any] | None:
        """The next song straight on when this one stops (``None`` takes a segue back)."""
        form = self.play_form
        what = "take the segue back" if spec is None else "segue"
        return self._submit(what, lambda c: c.segue(spec, at, form=form))

    def cue(self, text: str, in_bars: int = 0, hold_bars: int = 2) -> asyncio.Task[Any] | None:
        """A stage cue on every phone, on the next bar (plus ``in_bars``)."""
        return self._submit("cue the band", lambda c: c.cue(text, in_bars, hold_bars))

    def clear_cue(self) -> asyncio.Task[Any] | None:
        return self._submit("clear the cue", lambda c: c.clear_cue())

    def jump(self, section: int, at: CallAt = "bar") -> asyncio.Task[Any] | None:
        """Go to section ``section`` of the song's form, on the next bar or section end."""
        return self._submit("jump", lambda c: c.jump(section, at))

    def vamp(self, on: bool) -> asyncio.Task[Any] | None:
        return self._submit("vamp" if on else "release the vamp", lambda c: c.vamp(on))

    def end_song(self, at: CallAt = "bar") -> asyncio.Task[Any] | None:
        return self._submit("end the song", lambda c: c.end(at))

    def hand_over(self, member: str) -> asyncio.Task[Any] | None:
        return self._submit("make leader", lambda c: c.hand_over(member))

    def take_lead(self) -> asyncio.Task[Any] | None:
        return self._submit("take the lead", lambda c: c.take_lead())

    def remove_member(self, member: str) -> asyncio.Task[Any] | None:
        return self._submit("remove member", lambda c: c.remove(member))

    def _submit(self, what: str, make: Any) -> asyncio.Task[Any] | None:
        console = self.console
        if console is None:
            self._fail(f"cannot {what}: the server is not running")
            return None
        coro: Coroutine[Any, Any, Any] = make(console)
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._on_command_done(what, t))
        return task

    def _on_command_done(self, what: str, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, BandSyncError):
            GUI.info("refused: %s: %s", what, exc)
            self._fail(f"Cannot {what}: {exc}")
        else:
            GUI.error("%s failed", what, exc_info=exc)
            self._fail(f"{what} failed: {exc}")

    def _fail(self, message: str) -> None:
        self.command_failed.emit(message)
        self._log("error", message)

    # -- publications from the server -----------------------------------------------------

    def _on_publication(self, event: str, session_id: str, payload: Mapping[str, Any]) -> None:
        if session_id != self.session_id:
            if event == "session_created":
                self._log("info", f"Session {session_id!r} created by a phone")
            elif event == "session_expired":
                self._log("info", f"Session {session_id!r} expired")
            return
        if event == "snapshot":
            self._members_dirty = True
            session = self.session
            if session is not None:
                self.session_changed.emit(session)
        elif event == "health":
            self._members_dirty = True
        elif event in ("user_joined", "user_left", "role_changed", "room_stats"):
            self._members_dirty = True
            line = _describe(event, payload)
            if line:
                self._log("info", line)
        else:
            line = _describe(event, payload)
            if line:
                self._log("info", line)

    def _flush_members(self) -> None:
        if not self._members_dirty:
            return
        self._members_dirty = False
        self.members_changed.emit(self.member_rows())

    def _on_status_timer(self) -> None:
        # "Last seen" ages move with time even when nothing is published.
        self._members_dirty = True
        self.status_changed.emit(self.status())

    def _set_state(self, state: str) -> None:
        self._state = state
        self.status_changed.emit(self.status())

    def _log(self, level: str, text: str) -> None:
        self.event_logged.emit(level, text)

    async def shutdown(self) -> None:
        """Stop the server if it runs (idempotent); for the end of the program."""
        with contextlib.suppress(asyncio.CancelledError):
            await self.stop()


def _describe(event: str, payload: Mapping[str, Any]) -> str | None:
    """A log line for a publication of the band session, or ``None`` for the quiet ones."""
    if event == "user_joined":
        member = payload.get("member") or {}
        return f"{member.get('displayName', '?')} joined"
    if event == "user_left":
        return f"{payload.get('displayName', '?')} left"
    if event == "role_changed":
        name = payload.get("leaderName") or "nobody"
        reason = str(payload.get("reason", "")).replace("_", " ")
        return f"Leader is now {name} ({reason})"
    if event == "play":
        bars = payload.get("countInBars") or 0
        return f"Play{f' after a {bars}-bar count-in' if bars else ''}"
    if event == "pause":
        return f"Pause at {format_position(float(payload.get('positionMs', 0.0)))}"
    if event == "seek":
        return f"Seek to {format_position(float(payload.get('positionMs', 0.0)))}"
    if event == "tempo_changed":
        return f"Tempo {float(payload.get('tempoBpm', 0.0)):g} BPM"
    if event == "meter_changed":
        return f"Meter {payload.get('beatsPerBar')}/{payload.get('beatUnit')}"
    if event == "song_changed":
        song = payload.get("song") or {}
        return f"Song: {song.get('title', '(none)')}"
    if event == "message_updated":
        return "Message updated"
    if event == "cue":
        cue = payload.get("cue")
        if isinstance(cue, Mapping):
            return f"Cue {cue.get('text', '')!s} at bar {cue.get('atBar')}"
        return f"Cue off ({payload.get('reason', 'cleared')})"
    if event == "show":
        call = payload.get("call")
        reason = payload.get("reason")
        if reason == "vamp":
            return f"Vamp on {payload.get('vampName')}"
        if reason == "release":
            return "Vamp released"
        if isinstance(call, Mapping) and reason in ("jump", "end"):
            what = call.get("sectionName") if call.get("kind") == "jump" else "End"
            return f"Call: {what} on bar {call.get('bar')}"
        return None
    if event == "session_expired":
        return "Session expired"
    return None


def bar_start(position_ms: float, session: Session, now_ms: float) -> float:
    """The start of the bar nearest ``position_ms`` at the tempo and meter in force now.

    A seek derives the beat at the new position from the tempo now (``Timeline.sought``:
    beat = position / beat length), so a whole number of bars at that tempo is a downbeat.
    A position outside the rules' range is left for the rule to refuse.
    """
    if not 0.0 <= position_ms < float("inf"):
        return position_ms
    segment = session.timeline.segment_at(now_ms)
    bar_ms = segment.beats_per_bar * segment.beat_ms
    return round(position_ms / bar_ms) * bar_ms


def format_position(ms: float) -> str:
    """``mm:ss.t`` of a song position."""
    tenths = int(max(0.0, ms) // 100)
    minutes, rest = divmod(tenths, 600)
    return f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"


__all__ = [
    "Bridge",
    "MemberRow",
    "PortInUse",
    "ServerStatus",
    "SongSpec",
    "StartupError",
    "bar_start",
    "format_position",
    "lan_addresses",
    "next_free_port",
]
