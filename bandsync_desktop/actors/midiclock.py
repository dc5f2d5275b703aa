"""MIDI clock out: the band's timeline as 24 pulses per quarter note, Start/Stop/Continue and
Song Position Pointer, for drum machines, loopers, arpeggiators and DAWs (``python-rtmidi``).

Pulses are scheduled from the timeline, never counted from a timer: pulse ``n`` is sent at
the instant the timeline reaches beat ``n / pulses_per_beat`` (``ClockSchedule``), so a tempo
change alters the pulse rate at its scheduled instant and the pulses never drift from the
phones' beat. A band beat is the meter's beat unit (a quarter in x/4, an eighth in 6/8) while
MIDI clock counts quarter notes, so a band beat has ``24 * 4 / beat_unit`` pulses and pulse
``n`` lies on a sixteenth note (a MIDI beat, the unit of Song Position Pointer) when
``n % 6 == 0``, whatever the meter.

What a receiver gets, and when:

* Clock runs from the moment a play is known (the server schedules it ``lead_ms``, 200 ms,
  ahead), through the count-in and the song, on the grid of the beats to come: a receiver
  has locked to the tempo before its first beat.
* Song Position Pointer goes out while the receiver is stopped, as soon as the place it will
  start from is known: on a seek, on a pause, and when a play is scheduled (so every
  Continue follows an SPP). Its value is the band's beat in sixteenths, rounded up to the
  first whole sixteenth at or after where the band resumes.
* Start (from the top: beat 0) or Continue (anywhere else) goes out half a pulse before the
  downbeat pulse (the first pulse on a sixteenth at or after the count-in), the instant
  farthest from both neighbouring pulses, so the receiver's first counted pulse is the
  band's first beat.
* Stop goes out when the band pauses or stops; a seek while playing is Stop, SPP, Continue
  (receivers ignore SPP while running), the Stop at the seek's instant.
* A meter change sends nothing: the receiver keeps counting pulses; a later SPP follows the
  band's beat numbering (bars continuous, as if the new meter had held from the top).

The sender is a dedicated thread: the server loop jitters by milliseconds. On each
publication the loop hands it the session's latest (immutable) ``Timeline``; the thread
sleeps until just before the next event and spins the last ``SPIN_MS`` on
``time.monotonic()``, of which server time is a constant shift (``core/clock.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final, Literal

from ..core.timeline import Segment, Timeline
from ..log import SERVER
from ..server.peers import ActorError, ActorHost
from ._timing import ask_realtime, offset_to_monotonic, sleep_until

LOG = SERVER.getChild("midiclock")

CLOCK: Final = 0xF8
START: Final = 0xFA
CONTINUE: Final = 0xFB
STOP: Final = 0xFC
SONG_POSITION: Final = 0xF2

PULSES_PER_QUARTER: Final = 24
PULSES_PER_SIXTEENTH: Final = PULSES_PER_QUARTER // 4  # a MIDI beat (the SPP unit)
SPP_MAX: Final = 0x3FFF  # 14 bits: 1024 bars of 4/4
VIRTUAL_PORT: Final = "BandSync"

SPIN_MS: Final = 0.5  # the last stretch before an event is spun, not slept: sleeps wake late
STALE_MS: Final = 3.0  # a clock pulse before Start this late is dropped, not sent in a burst
PREROLL_MS: Final = 2000.0  # how far before a play's start the clock may begin
JOIN_LOCK_MS: Final = 250.0  # joining a song already playing: clock this long before Continue
PROCESS_START_S: Final = 20.0  # the sender's process: spawned, imports, opens the port
_EPS_MS: Final = 1e-3  # instants closer than this are one instant
_EPS_PULSE: Final = 1e-4  # pulse counts closer than this to a whole number are that number
_EPS_BAR: Final = 1e-4  # bar positions closer than this are continuous

EventKind = Literal["clock", "start", "continue", "stop", "spp"]


def pulses_per_beat(beat_unit: int) -> int:
    """Clock pulses in one band beat: ``24 * 4 / beat_unit`` (24 in x/4, 12 in x/8).

    Raises:
        ValueError: the beat unit does not divide a whole note into whole pulses.
    """
    pulses, rest = divmod(PULSES_PER_QUARTER * 4, beat_unit)
    if rest or pulses <= 0:
        raise ValueError(f"beat unit {beat_unit} has no whole number of clock pulses")
    return pulses


@dataclass(frozen=True, slots=True)
class ClockEvent:
    """One message to send and its ideal instant (server time, ms).

    Attributes:
        at_ms: when to send it.
        kind: ``clock``, ``start``, ``continue``, ``stop`` or ``spp``.
        pulse: the pulse's index on the band's beat grid (``beat * pulses_per_beat``); for
            ``start``/``continue``, the downbeat pulse's.
        value: the Song Position Pointer in sixteenths (``spp`` only).
        bar: the bar position (beats / beats per bar) of a ``clock`` pulse.
    """

    at_ms: float
    kind: EventKind
    pulse: int | None = None
    value: int | None = None
    bar: float = 0.0

    def message(self) -> list[int]:
        """The MIDI bytes."""
        if self.kind == "clock":
            return [CLOCK]
        if self.kind == "start":
            return [START]
        if self.kind == "continue":
            return [CONTINUE]
        if self.kind == "stop":
            return [STOP]
        value = self.value or 0
        return [SONG_POSITION, value & 0x7F, (value >> 7) & 0x7F]


@dataclass(frozen=True, slots=True)
class _Pulse:
    at_ms: float
    index: int
    grid: Segment


def _windows(timeline: Timeline) -> list[tuple[int, Segment, float, float]]:
    """``(i, segment, from, until)``: the instants each segment is in force (the first also
    before its start, as ``Timeline.segment_at`` reads it)."""
    segments = timeline.segments
    out = []
    for i, segment in enumerate(segments):
        begin = -math.inf if i == 0 else segment.start_ms
        end = segments[i + 1].start_ms if i + 1 < len(segments) else math.inf
        out.append((i, segment, begin, end))
    return out


def _first_index(grid: Segment, t_ms: float, inclusive: bool) -> int:
    """The first pulse index of ``grid`` at ``t_ms`` (or after it, if not ``inclusive``)."""
    x = grid.beat_at(t_ms) * pulses_per_beat(grid.beat_unit)
    if inclusive:
        return math.ceil(x - _EPS_PULSE)
    return math.floor(x + _EPS_PULSE) + 1


def _time_of_pulse(grid: Segment, index: int) -> float:
    return grid.time_of_beat(index / pulses_per_beat(grid.beat_unit))


def _bar_of(segment: Segment, t_ms: float) -> float:
    return segment.beat_at(t_ms) / segment.beats_per_bar


def _sixteenth_at_or_after(index: int) -> int:
    return -(-index // PULSES_PER_SIXTEENTH) * PULSES_PER_SIXTEENTH


def next_pulse(
    timeline: Timeline, after_ms: float, *, strict: bool, preroll: bool
) -> _Pulse | None:
    """The first pulse at (or, ``strict``, after) ``after_ms``.

    Pulses lie on the grid of the playing segment in force; a pulse on a segment's start
    belongs to that segment. With ``preroll``, the stretch just before a play's start carries
    the pulses of the coming segment's grid, extrapolated back (at most ``PREROLL_MS``).
    """
    segments = timeline.segments
    for i, segment, begin, end in _windows(timeline):
        if end <= after_ms:
            continue
        if i == 0 and strict:
            # After a pulse sent before the first segment's start: the timeline has dropped
            # the segments in force then, whose pulses went out (a segment is dropped only
            # once in force); the first segment's grid extrapolated back would repeat one.
            begin = segment.start_ms
        low, inclusive = max(begin, after_ms), not (strict and begin <= after_ms)
        grid: Segment | None = segment if segment.playing else None
        if grid is None and preroll and i + 1 < len(segments) and segments[i + 1].playing:
            grid = segments[i + 1]
            if end - PREROLL_MS > low:
                low, inclusive = end - PREROLL_MS, True
        if grid is None:
            continue
        index = _first_index(grid, low, inclusive)
        # (a pulse within float noise of the window's start is on it, not a hair before)
        at = max(_time_of_pulse(grid, index), begin)
        if strict and at <= after_ms + _EPS_MS:
            # Float noise put the pulse a hair before the one just sent: take the next.
            index += 1
            at = _time_of_pulse(grid, index)
        if at < end - _EPS_MS:
            return _Pulse(at, index, grid)
    return None


def next_downbeat(
    timeline: Timeline, after_ms: float, *, strict: bool, not_before_ms: float
) -> _Pulse | None:
    """Where a stopped receiver should start: the first pulse on a sixteenth at or after a
    play's anchor (past its count-in), at or after ``not_before_ms`` and ``after_ms``."""
    for _, segment, begin, end in _windows(timeline):
        if not segment.playing or end <= after_ms:
            continue
        low = max(begin, after_ms, segment.anchor_ms, not_before_ms)
        if low >= end:
            continue
        inclusive = not (strict and low == after_ms)
        index = _sixteenth_at_or_after(_first_index(segment, low, inclusive))
        at = max(_time_of_pulse(segment, index), begin)
        if strict and at <= after_ms + _EPS_MS:
            index += PULSES_PER_SIXTEENTH
            at = _time_of_pulse(segment, index)
        if at < end - _EPS_MS:
            return _Pulse(at, index, segment)
    return None


def _breaks_after(timeline: Timeline, after_ms: float) -> float | None:
    """The first instant after ``after_ms`` where a running receiver must stop: the
    timeline pauses, or jumps (a seek: the bar position is not continuous)."""
    segments = timeline.segments
    for previous, segment in itertools.pairwise(segments):
        at = segment.start_ms
        if at <= after_ms + _EPS_MS:
            continue
        if not segment.playing or not previous.playing:
            return at
        if abs(_bar_of(previous, at) - _bar_of(segment, at)) > _EPS_BAR:
            return at
    return None


class ClockSchedule:
    """What to send next, from the timeline: pure (no clock, no I/O), one per receiver.

    ``next_event(timeline, now)`` says what comes next; the caller sends it at its instant
    and reports it with ``sent(event)``. The schedule remembers what the receiver was told
    (running or not, the last pulse, the last SPP), so a timeline that changed meanwhile is
    read against it.

    Args:
        not_before_ms: the receiver starts no earlier than this (a receiver that joins a song
            already playing gets some clock first).
    """

    def __init__(self, not_before_ms: float = -math.inf) -> None:
        self.not_before_ms = not_before_ms
        self.running = False
        self.pulses = 0
        self._last_pulse_ms: float | None = None
        self._last_bar = 0.0
        self._spp_sent: int | None = None
        # The downbeat the receiver was started for, and the one a Start/Continue about to
        # go out is for: the receiver counts from that pulse on.
        self._downbeat_ms = -math.inf
        self._pending_downbeat_ms = -math.inf

    def next_event(self, timeline: Timeline, now_ms: float) -> ClockEvent | None:
        """The next message the receiver should get (its instant may be past: send it at
        once), or ``None`` until the timeline changes."""
        if self.running:
            return self._next_running(timeline, now_ms)
        return self._next_stopped(timeline, now_ms)

    def sent(self, event: ClockEvent) -> None:
        """Record that ``event`` went out."""
        if event.kind == "clock":
            self._last_pulse_ms = event.at_ms
            self._last_bar = event.bar
            self.pulses += 1
        elif event.kind in ("start", "continue"):
            self.running = True
            self._spp_sent = None
            self._downbeat_ms = self._pending_downbeat_ms
        elif event.kind == "stop":
            self.running = False
            self._spp_sent = None
        else:
            self._spp_sent = event.value

    # -- running: pulses until the band pauses or jumps -----------------------------------

    def _next_running(self, timeline: Timeline, now_ms: float) -> ClockEvent | None:
        last = self._last_pulse_ms
        counted = last is not None and last >= self._downbeat_ms - _EPS_MS
        # The timeline may have changed under what was sent (a pause takes effect at once,
        # so it is heard of after its instant): then the receiver must stop now.
        reference = last if last is not None and counted else self._downbeat_ms
        segment = timeline.segment_at(reference)
        if not segment.playing or (
            counted and abs(_bar_of(segment, reference) - self._last_bar) > _EPS_BAR
        ):
            return ClockEvent(now_ms, "stop")
        if last is not None and counted:
            pulse = next_pulse(timeline, last, strict=True, preroll=False)
        else:
            pulse = next_pulse(timeline, self._downbeat_ms, strict=False, preroll=False)
        stop_at = _breaks_after(timeline, self._downbeat_ms)
        if stop_at is not None and (pulse is None or stop_at <= pulse.at_ms + _EPS_MS):
            return ClockEvent(stop_at, "stop")
        if pulse is None:
            return None
        return self._clock(pulse)

    # -- stopped: SPP, clock before the downbeat, Start/Continue --------------------------

    def _next_stopped(self, timeline: Timeline, now_ms: float) -> ClockEvent | None:
        after, strict = now_ms - STALE_MS, False
        last = self._last_pulse_ms
        if last is not None and last >= after:
            after, strict = last, True
        downbeat = next_downbeat(timeline, after, strict=strict, not_before_ms=self.not_before_ms)
        if downbeat is not None:
            position = None if downbeat.index == 0 else downbeat.index // PULSES_PER_SIXTEENTH
        else:
            segment = timeline.segment_at(max(now_ms, after))
            position = None
            if not segment.playing:
                index = _first_index(segment, segment.start_ms, inclusive=True)
                position = _sixteenth_at_or_after(index) // PULSES_PER_SIXTEENTH
        if position is not None:
            position = min(max(position, 0), SPP_MAX)
            if position != self._spp_sent:
                return ClockEvent(now_ms, "spp", value=position)
        pulse = next_pulse(timeline, after, strict=strict, preroll=True)
        if pulse is not None and last is not None and pulse.at_ms <= last + _EPS_MS:
            # The search takes a pulse a hair (float noise) before ``after`` as on it: with
            # the stale cutoff a hair past the pulse just sent, that pulse again. Never twice.
            pulse = next_pulse(timeline, last, strict=True, preroll=True)
        if pulse is None:
            return None
        if downbeat is not None and pulse.at_ms >= downbeat.at_ms - _EPS_MS:
            # Halfway between the pulse before the downbeat and the downbeat's.
            before = _time_of_pulse(downbeat.grid, downbeat.index - 1)
            self._pending_downbeat_ms = downbeat.at_ms
            kind: EventKind = "start" if downbeat.index == 0 else "continue"
            return ClockEvent((before + downbeat.at_ms) / 2, kind, pulse=downbeat.index)
        return self._clock(pulse)

    @staticmethod
    def _clock(pulse: _Pulse) -> ClockEvent:
        grid = pulse.grid
        bar = pulse.index / pulses_per_beat(grid.beat_unit) / grid.beats_per_bar
        return ClockEvent(pulse.at_ms, "clock", pulse=pulse.index, bar=bar)


# -- rtmidi ---------------------------------------------------------------------------------


def _rtmidi() -> Any:
    try:
        import rtmidi
    except ImportError as exc:
        raise ActorError(
            "MIDI clock needs python-rtmidi: install the 'gear' extra "
            "(pip install 'bandsync-desktop[gear]')"
        ) from exc
    return rtmidi


def _apis(rtmidi: Any, api: str | None) -> list[int]:
    if api is None:
        return list(rtmidi.get_compiled_api())
    number = rtmidi.get_compiled_api_by_name(api)
    if number == rtmidi.API_UNSPECIFIED:
        names = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
        raise ActorError(f"no MIDI system {api!r} in this build (there is: {names})")
    return [number]


def _open_output(rtmidi: Any, number: int) -> Any:
    """A ``MidiOut`` on one MIDI system, or ``ActorError``."""
    try:
        return rtmidi.MidiOut(number, name=VIRTUAL_PORT)
    except rtmidi.RtMidiError as exc:
        name = rtmidi.get_api_display_name(number)
        raise ActorError(f"cannot open the MIDI system ({name}): {exc}") from exc


def _choose(ports: Sequence[str], wanted: str) -> int | None:
    """The index of the port named ``wanted``, else of the one port whose name contains it
    (ignoring case); ``None`` if none or several do."""
    exact = [i for i, name in enumerate(ports) if name == wanted]
    if len(exact) == 1:
        return exact[0]
    part = [i for i, name in enumerate(ports) if wanted.casefold() in name.casefold()]
    return part[0] if len(part) == 1 else None


def _open(api: str | None, port: str | None) -> tuple[Any, str, str]:
    """Open the output: ``(midiout, port name, MIDI system name)``.

    Raises:
        ActorError: rtmidi is missing, no MIDI system answers, or ``port`` names no output
            port or several (the message lists the ports there are).
    """
    rtmidi = _rtmidi()
    errors: list[str] = []
    available: list[tuple[str, str]] = []
    for number in _apis(rtmidi, api):
        try:
            midiout = _open_output(rtmidi, number)
        except ActorError as exc:
            errors.append(str(exc))
            continue
        system = rtmidi.get_api_display_name(number)
        if port is None:
            midiout.open_virtual_port(VIRTUAL_PORT)
            return midiout, VIRTUAL_PORT, system
        ports = list(midiout.get_ports())
        index = _choose(ports, port)
        if index is not None:
            midiout.open_port(index, name=f"{VIRTUAL_PORT} clock")
            return midiout, ports[index], system
        available.extend((name, system) for name in ports)
        midiout.delete()
    if port is None:
        raise ActorError("; ".join(errors) or "no MIDI system in this build of python-rtmidi")
    matching = [name for name, _ in available if port.casefold() in name.casefold()]
    if matching:
        raise ActorError(f"MIDI port {port!r} is ambiguous: it matches {', '.join(matching)}")
    listed = ", ".join(f"{name} ({system})" for name, system in available) or "none"
    unreachable = f" ({'; '.join(errors)})" if errors else ""
    raise ActorError(f"no MIDI output port matches {port!r}; output ports: {listed}{unreachable}")


#: ``trace(event, sent_ms)``: called after each message went out, with the server time read
#: right after sending (for benchmarks: the send instants). In the sender's own process the
#: call comes a moment later, from a thread of the server's process.
Trace = Callable[[ClockEvent, float], None]


class _Mailbox:
    """Where the sender finds the latest timeline, and whether to close."""

    def __init__(self, timeline: Timeline | None) -> None:
        self.timeline = timeline
        self.generation = 0
        self.closing = False

    def latest(self) -> tuple[Timeline | None, int, bool]:
        return self.timeline, self.generation, self.closing

    def wait(self, generation: int, timeout_s: float | None) -> bool:
        """Return when the timeline is newer than ``generation``, on close, or after
        ``timeout_s`` (``None``: no timeout); True for the first two (news)."""
        raise NotImplementedError

    def _news(self, generation: int) -> bool:
        return self.generation != generation or self.closing


class _ThreadMailbox(_Mailbox):
    """The sender is a thread of the server's process: a condition variable."""

    def __init__(self, timeline: Timeline | None) -> None:
        super().__init__(timeline)
        self._cond = threading.Condition()

    def latest(self) -> tuple[Timeline | None, int, bool]:
        with self._cond:
            return self.timeline, self.generation, self.closing

    def put(self, timeline: Timeline) -> None:
        with self._cond:
            self.timeline = timeline
            self.generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closing = True
            self._cond.notify_all()

    def wait(self, generation: int, timeout_s: float | None) -> bool:
        with self._cond:
            if not self._news(generation):
                self._cond.wait(timeout_s)
            return self._news(generation)


class _PipeMailbox(_Mailbox):
    """The sender is a process of its own: the server's process writes to a pipe."""

    def __init__(self, connection: Connection, timeline: Timeline | None) -> None:
        super().__init__(timeline)
        self._connection = connection

    def _drain(self) -> None:
        try:
            while not self.closing and self._connection.poll(0):
                self._take(self._connection.recv())
        except (EOFError, OSError):  # the server's process is gone: so is the band
            self.closing = True

    def _take(self, message: tuple[Any, ...]) -> None:
        if message[0] == "timeline":
            self.timeline = Timeline.from_wire(message[1])
            self.generation += 1
        elif message[0] == "close":
            self.closing = True

    def latest(self) -> tuple[Timeline | None, int, bool]:
        self._drain()
        return self.timeline, self.generation, self.closing

    def wait(self, generation: int, timeout_s: float | None) -> bool:
        self._drain()
        if not self._news(generation):
            if timeout_s is not None:
                # poll(2) counts whole milliseconds, rounded up: round down instead, the
                # spin makes up the rest.
                timeout_s = math.floor(timeout_s * 1000.0) / 1000.0
            try:
                self._connection.poll(timeout_s)
            except (EOFError, OSError):
                self.closing = True
            self._drain()
        return self._news(generation)


def _send_loop(
    midiout: Any,
    schedule: ClockSchedule,
    mailbox: _Mailbox,
    offset_ms: float,
    on_sent: Callable[[ClockEvent, float], None],
) -> None:
    """Send what the schedule says when it says: sleep until ``SPIN_MS`` before each event
    (woken early by a new timeline), spin the rest on the monotonic clock, send."""

    def now_ms() -> float:
        return time.monotonic() * 1000.0 + offset_ms

    while True:
        timeline, generation, closing = mailbox.latest()
        if closing:
            return
        now = now_ms()
        event = None if timeline is None else schedule.next_event(timeline, now)
        if event is None:
            mailbox.wait(generation, None)
            continue
        due_s = (event.at_ms - offset_ms) / 1000.0
        if not sleep_until(due_s, functools.partial(mailbox.wait, generation), SPIN_MS / 1000.0):
            continue  # a new timeline (or close): decide again
        midiout.send_message(event.message())
        sent_ms = now_ms()
        schedule.sent(event)
        on_sent(event, sent_ms)


def _close_output(midiout: Any, port_name: str) -> None:
    """Stop the receiver and close the port (even if the MIDI system went away)."""
    try:
        midiout.send_message([STOP])
    except Exception:
        LOG.warning("MIDI clock: could not send Stop to %s", port_name, exc_info=True)
    midiout.close_port()
    midiout.delete()


def _sender_process(
    connection: Connection,
    api: str | None,
    port: str | None,
    offset_ms: float,
    realtime: bool,
    tracing: bool,
    not_before_ms: float,
    timeline: list[dict[str, Any]] | None,
) -> None:
    """The sender in a process of its own (``MidiClockOut(own_process=True)``): its own GIL,
    so nothing the server's process runs delays a pulse. Tells the server's process what it
    opened (or why it could not), how many pulses it sent and, if ``tracing``, each message."""
    try:
        midiout, port_name, system = _open(api, port)
    except ActorError as exc:
        connection.send(("error", str(exc)))
        return
    granted = ask_realtime(LOG, "MIDI clock runs") if realtime else False
    connection.send(("opened", port_name, system, granted))
    schedule = ClockSchedule(not_before_ms)
    mailbox = _PipeMailbox(connection, None if timeline is None else Timeline.from_wire(timeline))
    reported = [0.0]

    def on_sent(event: ClockEvent, sent_ms: float) -> None:
        if tracing:
            connection.send(
                ("sent", event.at_ms, event.kind, event.pulse, event.value, event.bar, sent_ms)
            )
        if event.kind != "clock" or sent_ms - reported[0] > 250.0:
            reported[0] = sent_ms
            connection.send(("pulses", schedule.pulses))

    try:
        _send_loop(midiout, schedule, mailbox, offset_ms, on_sent)
        connection.send(("pulses", schedule.pulses))
    except Exception as exc:
        with contextlib.suppress(OSError):
            connection.send(("failed", f"sending failed: {exc}"))
    finally:
        _close_output(midiout, port_name)


class MidiClockOut:
    """MIDI clock out to one port, following the band session (an ``Actor``).

    Args:
        port: ``None`` for a virtual output port named "BandSync" (other software connects
            to it), else the name of an output port or a unique part of it.
        api: the MIDI system by rtmidi's name (``"alsa"``, ``"jack"``, ``"core"``,
            ``"winmm"``); ``None`` tries each one this build has, in rtmidi's order.
        own_process: run the sender in a process of its own (``multiprocessing``, spawned),
            so that no Python the server's process runs (its loop, the console's widgets)
            holds the GIL when a pulse is due; ``False``: a thread of this process (see
            docs/midi-clock.md for what each measured).
        realtime: ask for real-time scheduling (``SCHED_FIFO``, priority ``RT_PRIORITY``,
            below JACK's) for the sender, as audio software does, so that other programs
            on a busy machine do not delay a pulse; where that is not allowed (no ``rtprio``
            right, not Linux) it runs at normal priority.
        trace: see ``Trace``; ``None`` in production.
    """

    name = "midi-clock"

    def __init__(
        self,
        port: str | None = None,
        *,
        api: str | None = None,
        own_process: bool = True,
        realtime: bool = True,
        trace: Trace | None = None,
    ) -> None:
        self.port = port
        self.api = api
        self.own_process = own_process
        self.realtime = realtime
        self._trace = trace
        self._host: ActorHost | None = None
        self._timeline: Timeline | None = None
        self._port_name: str | None = None
        self._system: str | None = None
        self._realtime_granted = False
        self._state = "stopped"
        self._error: str | None = None
        self._pulses = 0
        # A thread of this process:
        self._thread: threading.Thread | None = None
        self._mailbox: _ThreadMailbox | None = None
        self._midiout: Any = None
        self._schedule: ClockSchedule | None = None
        # A process of its own:
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._reader: threading.Thread | None = None

    @staticmethod
    def output_ports(api: str | None = None) -> list[str]:
        """The output ports the MIDI systems offer now (for the console's list).

        Raises:
            ActorError: python-rtmidi is not installed.
        """
        rtmidi = _rtmidi()
        ports: list[str] = []
        for number in _apis(rtmidi, api):
            try:
                midiout = _open_output(rtmidi, number)
            except ActorError:
                continue
            ports.extend(midiout.get_ports())
            midiout.delete()
        return ports

    # -- Actor --------------------------------------------------------------------------------

    async def start(self, host: ActorHost) -> None:
        """Open the port and start the sender.

        Raises:
            ActorError: python-rtmidi is missing, or the port cannot be opened.
        """
        # What can be told here is, before a sender process is spawned to find it out.
        _apis(_rtmidi(), self.api)
        offset = offset_to_monotonic(host.now_ms)
        now = time.monotonic() * 1000.0 + offset
        timeline = host.timeline
        playing = timeline is not None and timeline.is_playing_at(now)
        # Joining a song already playing: some clock before Continue, to lock to.
        not_before = now + JOIN_LOCK_MS if playing else -math.inf
        self._timeline, self._error, self._pulses = timeline, None, 0
        if self.own_process:
            await self._start_process(offset, not_before, timeline)
        else:
            self._start_thread(*(await asyncio.to_thread(_open, self.api, self.port)))
            self._schedule = ClockSchedule(not_before)
            self._mailbox = _ThreadMailbox(timeline)
            self._thread = threading.Thread(
                target=self._run_thread, args=(offset,), name="midi-clock", daemon=True
            )
            self._thread.start()
        self._host = host
        host.subscribe(self._on_publication)
        self._state = "running"
        LOG.info("MIDI clock out on %s (%s)", self._port_name, self._system)

    async def stop(self) -> None:
        """Send Stop, close the port, end the sender. Safe twice."""
        if self._host is not None:
            self._host.unsubscribe(self._on_publication)
            self._host = None
        if self._process is not None:
            await self._stop_process()
        thread, self._thread = self._thread, None
        if thread is not None and self._mailbox is not None:
            self._mailbox.close()
            await asyncio.to_thread(thread.join, 5.0)
        midiout, self._midiout = self._midiout, None
        if midiout is not None:
            _close_output(midiout, self._port_name or "?")
        if self._state != "error":
            self._state = "stopped"

    def status(self) -> Mapping[str, Any]:
        pulses = self._schedule.pulses if self._schedule is not None else self._pulses
        status: dict[str, Any] = {"state": self._state, "port": self._port_name, "pulses": pulses}
        if self._system is not None:
            status["system"] = self._system
            status["virtual"] = self.port is None
            status["realtime"] = self._realtime_granted
            status["ownProcess"] = self.own_process
        if self._error is not None:
            status["error"] = self._error
        return status

    # -- the loop's side --------------------------------------------------------------------

    def _on_publication(self, event: str, payload: Mapping[str, Any]) -> None:
        host = self._host
        timeline = None if host is None else host.timeline
        if timeline is None or timeline == self._timeline:
            return
        self._timeline = timeline
        if self._mailbox is not None:
            self._mailbox.put(timeline)
        elif self._connection is not None:
            try:
                self._connection.send(("timeline", timeline.to_wire()))
            except OSError as exc:
                self._failed(f"the MIDI clock process is gone: {exc}")

    def _failed(self, message: str) -> None:
        if self._state != "error":
            LOG.error("MIDI clock stopped: %s", message)
        self._state, self._error = "error", message

    # -- a thread of this process -------------------------------------------------------------

    def _start_thread(self, midiout: Any, port_name: str, system: str) -> None:
        self._midiout, self._port_name, self._system = midiout, port_name, system

    def _run_thread(self, offset_ms: float) -> None:
        assert self._schedule is not None and self._mailbox is not None
        if self.realtime:
            self._realtime_granted = ask_realtime(LOG, "MIDI clock runs")
        trace = self._trace
        try:
            _send_loop(
                self._midiout,
                self._schedule,
                self._mailbox,
                offset_ms,
                trace if trace is not None else lambda event, sent_ms: None,
            )
        except Exception as exc:
            LOG.exception("MIDI clock stopped")
            self._state, self._error = "error", f"sending failed: {exc}"

    # -- a process of its own -------------------------------------------------------------

    async def _start_process(
        self, offset_ms: float, not_before_ms: float, timeline: Timeline | None
    ) -> None:
        context = multiprocessing.get_context("spawn")  # (fork: not with threads, nor Qt)
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_sender_process,
            args=(
                theirs,
                self.api,
                self.port,
                offset_ms,
                self.realtime,
                self._trace is not None,
                not_before_ms,
                None if timeline is None else timeline.to_wire(),
            ),
            name="bandsync-midi-clock",
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        theirs.close()
        reply = await asyncio.to_thread(_receive, ours, process, PROCESS_START_S)
        if reply is None or reply[0] != "opened":
            ours.close()
            await asyncio.to_thread(process.join, 5.0)
            if process.is_alive():
                process.kill()
            if reply is None:
                raise ActorError(
                    f"the MIDI clock process ended or did not answer in {PROCESS_START_S} s "
                    f"(exit code {process.exitcode})"
                )
            raise ActorError(str(reply[1]))
        _, self._port_name, self._system, self._realtime_granted = reply
        self._process, self._connection = process, ours
        self._reader = threading.Thread(
            target=self._read_process, args=(ours,), name="midi-clock-reader", daemon=True
        )
        self._reader.start()

    def _read_process(self, connection: Connection) -> None:
        """What the sender process tells: pulses sent, each message (tracing), failure."""
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                return
            if message[0] == "pulses":
                self._pulses = message[1]
            elif message[0] == "sent" and self._trace is not None:
                at_ms, kind, pulse, value, bar, sent_ms = message[1:]
                self._trace(ClockEvent(at_ms, kind, pulse, value, bar), sent_ms)
            elif message[0] == "failed":
                self._failed(message[1])

    async def _stop_process(self) -> None:
        process, connection, reader = self._process, self._connection, self._reader
        self._process = self._connection = self._reader = None
        assert process is not None and connection is not None
        with contextlib.suppress(OSError):
            connection.send(("close",))
        await asyncio.to_thread(process.join, 5.0)
        if process.is_alive():
            LOG.warning("MIDI clock process did not stop: killed")
            process.kill()
            await asyncio.to_thread(process.join, 5.0)
        if reader is not None:
            await asyncio.to_thread(reader.join, 5.0)
        connection.close()


def _receive(
    connection: Connection, process: BaseProcess, timeout_s: float
) -> tuple[Any, ...] | None:
    """The process's first message within ``timeout_s``, or ``None`` (it ended first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if connection.poll(0.05):
                message: tuple[Any, ...] = connection.recv()
                return message
        except (EOFError, OSError):
            return None
        if not process.is_alive():
            return None
    return None
