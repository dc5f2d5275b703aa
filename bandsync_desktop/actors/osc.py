"""The OSC bridge: the band's beat, bar, tempo, transport and song out to lighting desks,
QLab and TouchOSC, and their commands in, through the one command table.

Out (``docs/osc.md`` has the argument table): ``/bandsync/beat`` on every beat the phones
click (count-in beats too), ``/bandsync/bar`` on every downbeat, ``/bandsync/tempo``,
``/bandsync/meter`` and ``/bandsync/transport`` at the instant a change takes effect,
``/bandsync/song`` when the song on the stands changes. A message leaves *at* its instant:
a dedicated thread reads the session's timeline (immutable, so it can be handed over), finds
the next instant from it (never by counting a timer, so nothing drifts), sleeps until just
before it, spins the rest and sends. The server's loop is not in that path: it jitters by
milliseconds whenever it encodes a snapshot. Server time is ``time.monotonic()`` shifted by a
constant (``core/clock.py``); the thread measures that constant once and needs nothing else
from the loop. With ``timetag_ahead_ms`` the messages go out that much earlier instead, as
bundles timetagged with their instant, for receivers that schedule by timetag.

In: a UDP listener on the server's loop. A datagram from an address outside ``allowed`` is
dropped before a byte of it is parsed (and logged at most once a minute); so is one over its
sender's rate or over ``MAX_DATAGRAM`` bytes. The rest is parsed, and each known address is
turned into the protocol payload a phone would send and submitted through
``host.submit``: the same parser, the same rule. A refusal changes nothing and is answered
with ``/bandsync/error code message`` to the sender. Commands run one at a time, in order,
at most ``COMMANDS_PER_S`` a second; consecutive commands of one kind from one sender are
merged into the latest (a fader dragged on TouchOSC sends dozens a second, and only where it
stopped matters).

Incoming packets are parsed here (``parse_packet``), not by python-osc (1.10): its bundle
parser loops forever on an element whose size is -4 (a 20-byte datagram freezes the loop),
it logs a root-logger WARNING for every unknown type tag or bundle element (a log flood from
one datagram), and its ``Dispatcher`` sleeps *on the calling thread* until a bundle's timetag
and matches address patterns (``/bandsync/*`` would fire every command at once). Here only
what the commands need is accepted (a few arguments of types ``i f d h s S T F N``),
addresses are matched exactly and the timetags of incoming bundles are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..core.errors import BandSyncError
from ..core.ratelimit import TokenBucket
from ..core.timeline import Segment, Timeline, bar_beat
from ..log import SERVER
from ..server.peers import ActorError, ActorHost
from ._timing import ask_realtime, offset_to_monotonic, sleep_until

_IMPORT_ERROR: ImportError | None = None
try:
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder
    from pythonosc.udp_client import UDPClient
except ImportError as error:  # the 'gear' extra is not installed
    _IMPORT_ERROR = error

LOG = SERVER.getChild("osc")

PREFIX: Final = "/bandsync"

#: The thread sleeps until this long before an instant, then spins: a sleep's wake-up is
#: late by up to ~0.1 ms (timer slack, scheduling), a spin is exact.
SPIN_S: Final = 0.0006
#: An instant this much in the past when the thread gets to it is skipped, not sent late.
LATE_MS: Final = 50.0
#: Two instants this close are one (a tempo change lands on a beat, give or take float noise
#: of epoch-millisecond arithmetic, ~1e-3 ms).
SAME_INSTANT_MS: Final = 0.5
#: A song position that moved this much more than time did was a seek.
JUMP_MS: Final = 1.0

#: Larger datagrams are dropped unread. The largest command is a 500-character message:
#: at most 2,000 bytes of UTF-8 and its address.
MAX_DATAGRAM: Final = 4096
#: Messages handled from one datagram (a bundle); the rest are ignored.
MAX_MESSAGES_PER_DATAGRAM: Final = 16
#: Arguments of one incoming message (a command takes at most two), bundles inside bundles.
MAX_ARGS: Final = 8
MAX_BUNDLE_DEPTH: Final = 4
#: Datagrams one sender may send (a fader sends ~60 a second while dragged); over it, dropped
#: unread.
DATAGRAMS_PER_S: Final = 100.0
DATAGRAM_BURST: Final = 200
#: Commands submitted, from all senders together: the session's publications go to every
#: phone, so a flood must not multiply into the room's traffic.
COMMANDS_PER_S: Final = 20.0
COMMAND_BURST: Final = 20
#: Commands waiting to be submitted; more are dropped.
QUEUE_MAX: Final = 32
#: Senders whose rate is tracked (an allowed network can hold many addresses).
MAX_SENDERS: Final = 256
#: A kind of trouble (refused sender, flood, malformed datagram, send error) is logged at
#: most once per this interval, with the count since the last line.
LOG_EVERY_MS: Final = 60_000.0

_SNAP: Final = 1e-6  # beats this close to a whole number count as it (as core/timeline.py)

#: One OSC argument: its value and its type tag.
Arg = tuple[Any, str]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One OSC message to send: ``address`` and typed ``args``."""

    address: str
    args: tuple[Arg, ...] = ()


# -- the schedule (pure: no threads, no sockets) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Beat:
    """One beat that sounds: where the phones click.

    Attributes:
        at_ms: server time of the beat.
        bar: bar number (1-based; during a count-in the bars before the downbeat: -1, -2, ...).
        beat: beat in the bar (1-based).
        count: the absolute beat count (0 is bar 1 beat 1); during a count-in the beats left
            to the downbeat, negative.
        count_in: True for a count-in beat.
        beats_per_bar: the meter's beats per bar.
        beat_unit: the meter's beat unit.
        tempo_bpm: the tempo at this beat (it moves from beat to beat along a ramp).
    """

    at_ms: float
    bar: int
    beat: int
    count: int
    count_in: bool
    beats_per_bar: int
    beat_unit: int
    tempo_bpm: float


def next_beat(timeline: Timeline, after_ms: float) -> Beat | None:
    """The first beat strictly after ``after_ms``, or ``None`` if none will sound (paused).

    The same beats as the page's ``Timeline.beatsBetween`` (``web/sync.js``): count-in beats
    fall on whole beats before the anchor, counted from it; song beats on whole beats of the
    absolute count (along a ramp too: the segment's closed forms). A segment's beats end
    where the next segment starts.
    """
    segments = timeline.segments
    for index, segment in enumerate(segments):
        end = segments[index + 1].start_ms if index + 1 < len(segments) else math.inf
        if not segment.playing or end <= after_ms:
            continue
        lo = max(after_ms, segment.start_ms)
        beat_ms = segment.beat_ms
        bpb = segment.beats_per_bar
        count_end = min(end, segment.anchor_ms)
        if lo < count_end:
            n = math.ceil((lo - segment.anchor_ms - segment.anchor_lo_ms) / beat_ms - _SNAP)
            at = segment.anchor_ms + (segment.anchor_lo_ms + n * beat_ms)
            if at <= after_ms:
                n += 1
                at = segment.anchor_ms + (segment.anchor_lo_ms + n * beat_ms)
            if n < 0 and at < count_end:
                return Beat(
                    at_ms=at,
                    bar=n // bpb,
                    beat=n % bpb + 1,
                    count=n,
                    count_in=True,
                    beats_per_bar=bpb,
                    beat_unit=segment.beat_unit,
                    tempo_bpm=segment.tempo_bpm,  # a count-in runs at the starting tempo
                )
        song_lo = max(lo, segment.anchor_ms)
        if song_lo < end:
            k = math.ceil(segment.beat_at(song_lo) - _SNAP)
            at = segment.time_of_beat(k)
            if at <= after_ms:
                k += 1
                at = segment.time_of_beat(k)
            if at < end:
                position = bar_beat(k, bpb)
                return Beat(
                    at_ms=at,
                    bar=position.bar,
                    beat=position.beat,
                    count=k,
                    count_in=False,
                    beats_per_bar=bpb,
                    beat_unit=segment.beat_unit,
                    tempo_bpm=segment.tempo_at_beat(k),
                )
    return None


@dataclass(frozen=True, slots=True)
class Transport:
    """What ``/bandsync/transport`` says: a state and the song position (ms)."""

    state: str  # "playing", "count-in", "paused" or "stopped"
    position_ms: float

    @property
    def running(self) -> bool:
        """The song position moves (a count-in holds it)."""
        return self.state == "playing"


def transport_at(segment: Segment, t_ms: float) -> Transport:
    position = segment.position_at(t_ms)
    if not segment.playing:
        return Transport("stopped" if position == 0.0 else "paused", position)
    if t_ms < segment.anchor_ms:
        return Transport("count-in", position)
    return Transport("playing", position)


@dataclass(slots=True)
class Announced:
    """What the receivers were last told (and when, to tell a seek from time passing)."""

    tempo_bpm: float
    meter: tuple[int, int]
    transport: Transport
    at_ms: float

    def expected_position(self, t_ms: float) -> float:
        moved = t_ms - self.at_ms if self.transport.running else 0.0
        return self.transport.position_ms + moved


@dataclass(frozen=True, slots=True)
class Event:
    """Messages due at one instant; ``beat`` and ``state`` say what committing it moves."""

    at_ms: float
    messages: tuple[Outgoing, ...]
    beat: Beat | None = None
    state: Announced | None = None
    checked_ms: float | None = None
    tempo_bpm: float | None = None  # a tempo told on a beat of a ramp


def _same_tempo(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6  # (float noise of a ramp's closed forms is not a change)


def beat_messages(beat: Beat, server_time: bool = True) -> list[Outgoing]:
    """``/bandsync/bar`` (on a downbeat) and ``/bandsync/beat`` for one beat."""
    out = []
    if beat.beat == 1:
        out.append(
            Outgoing(
                f"{PREFIX}/bar",
                (
                    (beat.bar, "i"),
                    (beat.beats_per_bar, "i"),
                    (beat.beat_unit, "i"),
                    (int(beat.count_in), "i"),
                ),
            )
        )
    args: list[Arg] = [
        (beat.bar, "i"),
        (beat.beat, "i"),
        (beat.count, "i"),
        (int(beat.count_in), "i"),
    ]
    if server_time:
        args.append((beat.at_ms, "d"))
    out.append(Outgoing(f"{PREFIX}/beat", tuple(args)))
    return out


class Planner:
    """What to send next, from a timeline: beats, and state changes at their instants.

    Pure: the sender thread asks ``catch_up`` when the timeline changed (for changes already
    in force, such as a pause, which takes effect at once), then ``next_event`` for the next
    instant, and ``commit``s an event once it has been sent.

    Args:
        now_ms: server time at start: beats from then on are sent.
        server_time: send the beat's server time as the last ``/bandsync/beat`` argument.
    """

    def __init__(self, now_ms: float, *, server_time: bool = True) -> None:
        self.last_beat_ms = now_ms - SAME_INSTANT_MS  # a beat exactly at start is sent
        self.checked_ms = now_ms  # state changes at instants up to here are announced
        self.announced: Announced | None = None
        self.title: str | None = None
        self._server_time = server_time

    def _state_messages(self, timeline: Timeline, t_ms: float) -> tuple[list[Outgoing], Announced]:
        segment = timeline.segment_at(t_ms)
        transport = transport_at(segment, t_ms)
        tempo = segment.tempo_at(t_ms)
        state = Announced(tempo, (segment.beats_per_bar, segment.beat_unit), transport, t_ms)
        old = self.announced
        out: list[Outgoing] = []
        if (
            old is None
            or old.transport.state != transport.state
            or abs(old.expected_position(t_ms) - transport.position_ms) > JUMP_MS
        ):
            out.append(
                Outgoing(
                    f"{PREFIX}/transport",
                    (
                        (int(transport.running), "i"),
                        (transport.state, "s"),
                        (transport.position_ms, "f"),
                    ),
                )
            )
        else:
            # Same state, no jump: keep the reference so expected positions stay exact.
            state.transport, state.at_ms = old.transport, old.at_ms
        if old is None or not _same_tempo(old.tempo_bpm, tempo):
            out.append(Outgoing(f"{PREFIX}/tempo", ((tempo, "f"),)))
        if old is None or old.meter != state.meter:
            out.append(Outgoing(f"{PREFIX}/meter", ((state.meter[0], "i"), (state.meter[1], "i"))))
        return out, state

    def catch_up(self, timeline: Timeline, title: str, now_ms: float) -> list[Outgoing]:
        """Messages for what is in force now but was not announced (sent at once)."""
        out, state = self._state_messages(timeline, now_ms)
        self.announced = state
        self.checked_ms = max(self.checked_ms, now_ms)
        if title != self.title:
            self.title = title
            out.append(Outgoing(f"{PREFIX}/song", ((title, "s"),)))
        return out

    def _next_change(self, timeline: Timeline) -> float | None:
        """The first instant after ``checked_ms`` at which a segment starts or a count-in
        ends."""
        best: float | None = None
        for segment in timeline.segments:
            for t in (segment.start_ms, segment.anchor_ms):
                if t > self.checked_ms and (best is None or t < best):
                    best = t
        return best

    def next_event(self, timeline: Timeline, now_ms: float) -> Event | None:
        """The next instant with something to send, not yet committed (``None``: nothing
        until the timeline changes)."""
        after = max(self.last_beat_ms + SAME_INSTANT_MS, now_ms - LATE_MS)
        beat = next_beat(timeline, after)
        horizon = math.inf if beat is None else beat.at_ms + SAME_INSTANT_MS
        while (change := self._next_change(timeline)) is not None and change <= horizon:
            messages, state = self._state_messages(timeline, change)
            if not messages:
                # Nothing anyone hears of changes here (a tempo set to itself): look further.
                self.checked_ms, self.announced = change, state
                continue
            if beat is not None and change >= beat.at_ms - SAME_INSTANT_MS:
                # A change on the beat (tempo, meter, a play's first count-in beat): one event.
                messages += beat_messages(beat, self._server_time)
                return Event(beat.at_ms, tuple(messages), beat, state, change)
            return Event(change, tuple(messages), None, state, change)
        if beat is None:
            return None
        messages = []
        tempo = None
        if self.announced is not None and not _same_tempo(self.announced.tempo_bpm, beat.tempo_bpm):
            # Along a ramp the tempo changes on every beat: told on the beat.
            tempo = beat.tempo_bpm
            messages.append(Outgoing(f"{PREFIX}/tempo", ((tempo, "f"),)))
        messages += beat_messages(beat, self._server_time)
        return Event(beat.at_ms, tuple(messages), beat, tempo_bpm=tempo)

    def commit(self, event: Event) -> None:
        if event.beat is not None:
            self.last_beat_ms = event.beat.at_ms
        if event.tempo_bpm is not None and self.announced is not None:
            self.announced.tempo_bpm = event.tempo_bpm
        if event.state is not None and event.checked_ms is not None:
            self.announced = event.state
            self.checked_ms = max(self.checked_ms, event.checked_ms)


# -- wire helpers -------------------------------------------------------------------------------


def encode(message: Outgoing) -> OscMessage:
    builder = OscMessageBuilder(address=message.address)
    for value, tag in message.args:
        builder.add_arg(value, tag)
    return builder.build()


def _check_port(port: Any, what: str, *, allow_zero: bool = False) -> int:
    if (
        isinstance(port, bool)
        or not isinstance(port, int)
        or not (0 if allow_zero else 1) <= port < 65536
    ):
        raise ActorError(f"OSC {what}: the port must be a number in 1-65535, got {port!r}")
    return port


def _check_host(host: Any, what: str) -> str:
    if not isinstance(host, str) or not host.strip() or len(host) > 253:
        raise ActorError(f"OSC {what}: {host!r} is not a host name or address")
    return host.strip().strip("[]")


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ActorError(
            f"--osc-allow {entry!r}: give an IP address (192.168.1.30) or a network "
            "(192.168.1.0/24), not a name"
        ) from None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a v4 sender seen by a dual-stack socket
    return ip


class MalformedPacket(ValueError):
    """A datagram that is not an OSC packet this bridge accepts."""


_NUMBERS: Final[Mapping[str, tuple[str, int]]] = {
    "i": (">i", 4),
    "f": (">f", 4),
    "d": (">d", 8),
    "h": (">q", 8),
}
_BUNDLE: Final = b"#bundle\x00"


def _osc_string(data: bytes, index: int) -> tuple[str, int]:
    end = data.find(b"\x00", index)
    if end < 0:
        raise MalformedPacket("an unterminated string")
    try:
        text = data[index:end].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("a string that is not UTF-8") from None
    return text, index + ((end - index) // 4 + 1) * 4  # (padded to 4 bytes)


def parse_message(data: bytes) -> tuple[str, list[Any]]:
    """An OSC message's address and arguments.

    Raises:
        MalformedPacket: not a message, or one with an argument type no command takes.
    """
    address, index = _osc_string(data, 0)
    if not address.startswith("/"):
        raise MalformedPacket("an address must start with /")
    if index >= len(data):
        return address, []  # (no type tags: no arguments, as old senders do)
    tags, index = _osc_string(data, index)
    if not tags.startswith(","):
        raise MalformedPacket("type tags must start with ,")
    if len(tags) - 1 > MAX_ARGS:
        raise MalformedPacket(f"more than {MAX_ARGS} arguments")
    args: list[Any] = []
    for tag in tags[1:]:
        value: Any
        if tag in _NUMBERS:
            layout, size = _NUMBERS[tag]
            if index + size > len(data):
                raise MalformedPacket("an argument runs past the end")
            (value,) = struct.unpack_from(layout, data, index)
            index += size
        elif tag in "sS":
            value, index = _osc_string(data, index)
        elif tag in "TFN":
            value = {"T": True, "F": False, "N": None}[tag]
        else:
            raise MalformedPacket(f"argument type {tag!r} is not taken")
        args.append(value)
    if index > len(data):
        raise MalformedPacket("an argument runs past the end")
    return address, args


def parse_packet(data: bytes, depth: int = 0) -> list[tuple[str, list[Any]]]:
    """The messages of an OSC packet (a message, or a bundle of them: its timetag ignored),
    at most ``MAX_MESSAGES_PER_DATAGRAM``.

    Raises:
        MalformedPacket: anything else, bundles nested deeper than ``MAX_BUNDLE_DEPTH``, an
            element whose size is not a positive multiple of 4 within the packet.
    """
    if not data.startswith(_BUNDLE):
        return [parse_message(data)]
    if depth >= MAX_BUNDLE_DEPTH:
        raise MalformedPacket("bundles nested too deep")
    if len(data) < 16:
        raise MalformedPacket("a bundle without its timetag")
    messages: list[tuple[str, list[Any]]] = []
    index = 16
    while index < len(data) and len(messages) < MAX_MESSAGES_PER_DATAGRAM:
        if index + 4 > len(data):
            raise MalformedPacket("a bundle element without its size")
        (size,) = struct.unpack_from(">i", data, index)
        index += 4
        if size <= 0 or size % 4 or index + size > len(data):
            raise MalformedPacket(f"a bundle element of {size} bytes")
        messages += parse_packet(data[index : index + size], depth + 1)
        index += size
    return messages[:MAX_MESSAGES_PER_DATAGRAM]


def _first(args: Sequence[Any]) -> Any:
    return args[0] if args else None


def _trigger(args: Sequence[Any]) -> dict[str, Any] | None:
    """A button: no argument, or a nonzero number (TouchOSC sends 1 on press, 0 on release:
    the release is ignored, as is anything that is not a finite number)."""
    if not args:
        return {}
    value = args[0]
    if isinstance(value, int | float) and math.isfinite(value) and value != 0:
        return {}
    return None


def _meter(args: Sequence[Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"beatsPerBar": _first(args)}
    if len(args) > 1:
        payload["beatUnit"] = args[1]
    return payload


#: address -> (command of the table, OSC arguments -> its payload, or None to ignore).
INCOMING: Final[Mapping[str, tuple[str, Callable[[Sequence[Any]], dict[str, Any] | None]]]] = {
    f"{PREFIX}/play": ("play", _trigger),
    f"{PREFIX}/pause": ("pause", _trigger),
    f"{PREFIX}/stop": ("stop", _trigger),
    f"{PREFIX}/tempo": ("set_tempo", lambda args: {"tempo": _first(args)}),
    f"{PREFIX}/seek": ("seek", lambda args: {"position": _first(args)}),
    f"{PREFIX}/meter": ("set_meter", _meter),
    f"{PREFIX}/count_in": ("set_count_in", lambda args: {"bars": _first(args)}),
    f"{PREFIX}/message": ("update_message", lambda args: {"message": args[0]} if args else {}),
}


class _Throttle:
    """Counts one kind of trouble and says when to log it: the first time, then at most once
    per ``LOG_EVERY_MS``, with the count since the last line."""

    __slots__ = ("_last", "count")

    def __init__(self) -> None:
        self._last = -math.inf
        self.count = 0

    def due(self, now_ms: float) -> int:
        """Count one; the count to report if a line is due now, else 0."""
        self.count += 1
        if now_ms - self._last < LOG_EVERY_MS:
            return 0
        self._last = now_ms
        count, self.count = self.count, 0
        return count


@dataclass(slots=True)
class _Queued:
    name: str
    payload: dict[str, Any]
    sender: tuple[str, int]


class _Inbound(asyncio.DatagramProtocol):
    def __init__(self, bridge: OscBridge) -> None:
        self._bridge = bridge

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self._bridge._on_datagram(data, addr)
        except Exception:  # a bug must not reach asyncio's transport: log, drop, go on
            LOG.exception("OSC: a datagram from %s", addr[0])

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the sender closed its port): nothing to do.
        LOG.debug("OSC listener: %s", exc)


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    received: int = 0
    refused: int = 0
    rejected: int = 0
    ignored: int = 0
    commands: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class OscBridge:
    """OSC out to ``targets`` and, with ``listen``, commands in from ``allowed`` addresses.

    Args:
        targets: ``(host, port)`` pairs that get the beat, bar, tempo, meter, transport, song.
        listen: ``(host, port)`` to receive commands on (port 0: any free port), or ``None``.
        allowed: IP addresses or networks (``192.168.1.0/24``) whose commands are accepted;
            empty refuses every sender.
        timetag_ahead_ms: ``None`` (the default): each message is sent at its instant. A
            number: sent that many ms early instead, as a bundle timetagged with its instant
            (NTP time), for receivers that schedule bundles by their timetag.
        server_time: send each beat's server time (ms, a double) as the last argument of
            ``/bandsync/beat`` (for a receiver without doubles, turn it off).
        realtime: ask for real-time scheduling (``SCHED_FIFO``) for the sender thread, where
            the system grants it: woken at its instant, it takes a core (and the GIL, the
            next time the loop's thread makes a system call) at once.

    Raises:
        ActorError: python-osc is missing, or an address, port or allowed entry is invalid.
    """

    name = "osc"

    def __init__(
        self,
        targets: Sequence[tuple[str, int]],
        *,
        listen: tuple[str, int] | None = None,
        allowed: Sequence[str] = (),
        timetag_ahead_ms: float | None = None,
        server_time: bool = True,
        realtime: bool = True,
    ) -> None:
        if _IMPORT_ERROR is not None:
            raise ActorError(f"OSC needs python-osc ({_IMPORT_ERROR}): install the 'gear' extra")
        self._targets = [
            (_check_host(host, "target"), _check_port(port, f"target {host}"))
            for host, port in targets
        ]
        self._listen = (
            None
            if listen is None
            else (
                _check_host(listen[0], "listen"),
                _check_port(listen[1], "listen", allow_zero=True),
            )
        )
        self._allowed = tuple(_network(entry) for entry in allowed)
        if timetag_ahead_ms is not None and not 0.0 < timetag_ahead_ms <= 1000.0:
            raise ActorError("OSC timetag lead must be between 0 and 1000 ms")
        self._ahead_ms = timetag_ahead_ms
        self._server_time = server_time
        self._realtime = realtime
        self._scheduling = "normal"
        self._state = "stopped"
        self._host: ActorHost | None = None
        self._clients: list[UDPClient] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._listening: str | None = None
        self._counters = _Counters()
        # sender thread
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stopping = False
        self._timeline: Timeline | None = None
        self._title = ""
        self._offset_ms = 0.0  # server time - monotonic time (ms)
        # inbound
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._command_bucket: TokenBucket | None = None
        self._queue: deque[_Queued] = deque()
        self._queued = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._throttles = {
            kind: _Throttle()
            for kind in ("refused", "flood", "malformed", "full", "send", "rejected")
        }

    # -- Actor ----------------------------------------------------------------------------

    async def start(self, host: ActorHost) -> None:
        self._state = "starting"
        self._host = host
        loop = asyncio.get_running_loop()
        for name, port in self._targets:
            address = await self._resolve(loop, name, port)
            try:
                self._clients.append(UDPClient(address, port, allow_broadcast=True))
            except OSError as error:
                raise ActorError(f"OSC target {name}:{port}: {error}") from error
        if self._listen is not None:
            name, port = self._listen
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Inbound(self), local_addr=(name, port)
                )
            except (OSError, ValueError) as error:
                raise ActorError(f"OSC cannot listen on {name}:{port}: {error}") from error
            self._transport = transport
            bound = transport.get_extra_info("sockname")
            self._listening = f"{bound[0]}:{bound[1]}" if bound else f"{name}:{port}"
            self._command_bucket = TokenBucket(COMMANDS_PER_S, COMMAND_BURST, host)
            self._worker = asyncio.ensure_future(self._run_commands())
        self._offset_ms = offset_to_monotonic(host.now_ms)
        self._read_session()
        host.subscribe(self._on_publication)
        if self._clients:
            self._stopping = False
            self._thread = threading.Thread(target=self._run_sender, name="osc-sender", daemon=True)
            self._thread.start()
        self._state = "running"
        LOG.info(
            "OSC: sending to %s%s",
            ", ".join(f"{h}:{p}" for h, p in self._targets) or "nobody",
            f", listening on {self._listening}" if self._listening else "",
        )

    async def stop(self) -> None:
        if self._host is not None:
            self._host.unsubscribe(self._on_publication)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._thread is not None:
            self._stopping = True
            self._changed.set()
            await asyncio.to_thread(self._thread.join, 2.0)
            self._thread = None
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._queue.clear()
        self._host = None
        self._state = "stopped"

    def status(self) -> Mapping[str, Any]:
        counters = self._counters
        status: dict[str, Any] = {
            "state": self._state,
            "targets": [f"{h}:{p}" for h, p in self._targets],
            "listening": self._listening if self._transport is not None else None,
            "allowed": [str(net) for net in self._allowed],
            "sent": counters.sent,
            "received": counters.received,
            "refused": counters.refused,
            "rejected": counters.rejected,
            "ignored": counters.ignored,
            "commands": counters.commands,
            "skipped": counters.skipped,
            "scheduling": self._scheduling,
        }
        if counters.errors:
            status["error"] = "; ".join(counters.errors.values())
        return status

    # -- the session -----------------------------------------------------------------------

    @staticmethod
    async def _resolve(loop: asyncio.AbstractEventLoop, name: str, port: int) -> str:
        """The numeric address of ``name`` (resolved once: a name looked up per send would
        put DNS in the beat's path)."""
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, port, type=socket.SOCK_DGRAM), timeout=5.0
            )
        except (OSError, TimeoutError, UnicodeError) as error:
            raise ActorError(f"OSC target {name}:{port}: {error or 'no answer'}") from error
        if not infos:
            raise ActorError(f"OSC target {name}:{port}: no address")
        return str(infos[0][4][0])

    def _read_session(self) -> bool:
        """Take the session's timeline and song for the sender thread; True if changed."""
        assert self._host is not None
        session = self._host.session
        if session is None:
            return False
        timeline = session.timeline
        title = session.song.title if session.song is not None else ""
        with self._lock:
            if timeline == self._timeline and title == self._title:
                return False
            self._timeline, self._title = timeline, title
        return True

    def _on_publication(self, event: str, payload: Mapping[str, Any]) -> None:
        if self._read_session():
            self._changed.set()

    # -- out: the sender thread -------------------------------------------------------------

    def _now_ms(self) -> float:
        return time.monotonic() * 1000.0 + self._offset_ms

    def _run_sender(self) -> None:
        if self._realtime and ask_realtime(LOG, "OSC beats run"):
            self._scheduling = "realtime"
        planner = Planner(self._now_ms(), server_time=self._server_time)
        timeline: Timeline | None = None
        ahead = (self._ahead_ms or 0.0) / 1000.0
        while not self._stopping:
            try:
                if timeline is None or self._changed.is_set():
                    self._changed.clear()
                    with self._lock:
                        timeline, title = self._timeline, self._title
                    if timeline is None:
                        self._changed.wait(1.0)
                        continue
                    self._send_now(planner.catch_up(timeline, title, self._now_ms()))
                now = self._now_ms()
                event = planner.next_event(timeline, now)
                if event is None:
                    self._changed.wait(5.0)
                    continue
                if event.at_ms < now - LATE_MS:
                    self._counters.skipped += 1
                    planner.commit(event)
                    continue
                packets = self._packets(event)
                due = (event.at_ms - self._offset_ms) / 1000.0 - ahead
                if not sleep_until(due, self._changed.wait, SPIN_S):
                    continue  # the timeline changed (or we stop): plan again
                self._send(packets)
                planner.commit(event)
            except Exception:  # a bug must not end the band's beat: log, back off, go on
                LOG.exception("OSC sender")
                self._changed.wait(0.5)

    def _packets(self, event: Event) -> list[Any]:
        messages = [encode(message) for message in event.messages]
        if self._ahead_ms is None:
            return messages
        # The instant on the wall clock, as the receiver's timetag scheduler reads it.
        wall = event.at_ms / 1000.0 + _wall_minus(self._now_ms)
        bundle = OscBundleBuilder(wall)  # type: ignore[arg-type]  # (annotated int, takes float)
        for message in messages:
            bundle.add_content(message)
        return [bundle.build()]

    def _send_now(self, messages: list[Outgoing]) -> None:
        if not messages:
            return
        if self._ahead_ms is None:
            self._send([encode(message) for message in messages])
        else:
            bundle = OscBundleBuilder(0)  # "immediately": these are already due
            for message in messages:
                bundle.add_content(encode(message))
            self._send([bundle.build()])

    def _send(self, packets: list[Any]) -> None:
        for client, (name, port) in zip(self._clients, self._targets, strict=True):
            for packet in packets:
                try:
                    client.send(packet)
                except BlockingIOError:
                    pass  # the send buffer is full: this one is lost, as UDP may lose any
                except OSError as error:
                    self._send_failed(f"{name}:{port}", error)
                    break
                else:
                    self._counters.sent += 1
                    self._counters.errors.pop(f"{name}:{port}", None)

    def _send_failed(self, target: str, error: OSError) -> None:
        self._counters.errors[target] = f"{target}: {error.strerror or error}"
        count = self._throttles["send"].due(self._now_ms())
        if count:
            LOG.warning("OSC: cannot send to %s (%s; %d failures)", target, error, count)

    # -- in ---------------------------------------------------------------------------------

    def _allows(self, host: str) -> bool:
        ip = _ip(host)
        return ip is not None and any(ip in network for network in self._allowed)

    def _bucket(self, host: str) -> TokenBucket:
        bucket = self._buckets.get(host)
        if bucket is None:
            assert self._host is not None
            bucket = TokenBucket(DATAGRAMS_PER_S, DATAGRAM_BURST, self._host)
            self._buckets[host] = bucket
            if len(self._buckets) > MAX_SENDERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
        return bucket

    def _refuse(self, kind: str, sender: str, why: str) -> None:
        self._counters.refused += 1
        assert self._host is not None
        count = self._throttles[kind].due(self._host.now_ms())
        if count:
            LOG.warning(
                "OSC: dropped %d datagram(s) in the last minute, the latest from %s: %s",
                count,
                sender,
                why,
            )

    def _on_datagram(self, data: bytes, addr: tuple[Any, int]) -> None:
        if self._host is None:
            return
        sender = str(addr[0])
        if not self._allows(sender):
            self._refuse("refused", sender, "not in --osc-allow")
            return
        if not self._bucket(sender).allow():
            self._refuse("flood", sender, "over its rate")
            return
        if len(data) > MAX_DATAGRAM:
            self._refuse("malformed", sender, f"larger than {MAX_DATAGRAM} bytes")
            return
        try:
            messages = parse_packet(data)
        except MalformedPacket as error:
            self._refuse("malformed", sender, f"not an OSC packet ({error})")
            return
        self._counters.received += 1
        for address, args in messages:
            self._on_message(address, args, (sender, int(addr[1])))

    def _on_message(self, address: str, args: list[Any], sender: tuple[str, int]) -> None:
        entry = INCOMING.get(address)
        if entry is None:
            self._counters.ignored += 1  # a control surface sends many addresses: not ours
            return
        name, to_payload = entry
        payload = to_payload(args)
        if payload is None:
            self._counters.ignored += 1
            return
        last = self._queue[-1] if self._queue else None
        if last is not None and last.name == name and last.sender == sender:
            last.payload = payload  # not yet submitted: the latest value wins
            return
        if len(self._queue) >= QUEUE_MAX:
            self._refuse("full", sender[0], "too many commands waiting")
            return
        self._queue.append(_Queued(name, payload, sender))
        self._queued.set()

    async def _run_commands(self) -> None:
        assert self._command_bucket is not None
        while True:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            if not self._command_bucket.allow():
                # Paced: meanwhile a fader's stream merges into its latest value.
                await asyncio.sleep(1.0 / COMMANDS_PER_S)
                continue
            item = self._queue.popleft()
            host = self._host
            if host is None:
                return
            try:
                await host.submit(item.name, item.payload)
            except BandSyncError as error:
                self._counters.rejected += 1
                count = self._throttles["rejected"].due(host.now_ms())
                if count:
                    LOG.info(
                        "OSC: %d command(s) refused in the last minute, the latest %s from %s: %s",
                        count,
                        item.name,
                        item.sender[0],
                        error.message,
                    )
                self._reply_error(item.sender, str(error.code), error.message)
            except Exception:
                LOG.exception("OSC %s from %s", item.name, item.sender[0])
            else:
                self._counters.commands += 1

    def _reply_error(self, sender: tuple[str, int], code: str, message: str) -> None:
        if self._transport is None:
            return
        reply = encode(Outgoing(f"{PREFIX}/error", ((code, "s"), (message, "s"))))
        with contextlib.suppress(OSError):
            self._transport.sendto(reply.dgram, sender)


def _wall_minus(now_ms: Callable[[], float]) -> float:
    """Wall clock minus ``now_ms()`` (s), read between two readings of the latter: the
    tightest of a few brackets (a thread switch between two readings would skew it by
    milliseconds). Read per bundle, not once: the wall clock is slewed by NTP."""
    best = (math.inf, 0.0)
    for _ in range(4):
        before = now_ms()
        wall = time.time()
        after = now_ms()
        if after - before < best[0]:
            best = (after - before, wall - (before + after) / 2000.0)
        if best[0] < 0.05:
            break
    return best[1]
