"""The Ableton Link bridge: Link peers (Live, a Link metronome app) play on the band's beat.

Link shares a tempo and a beat grid among the peers of a local network; its *phase* is the
beat modulo a *quantum* each peer chooses (here: the band's beats per bar). Link has no
bar numbers, meter or song position and no leader: every peer may change the tempo. This
bridge is one Link peer in the console's process. Both modes keep Link on the band's
timeline:

* Link's tempo is the band's, switched at the band's instant (a change is scheduled ahead
  on the timeline: the bridge sleeps until the switch and sets tempo and beat then, since
  Link has no way to set a tempo at a future time).
* Link's beat grid is the band's: Link beat ``b`` at the instant the band is at beat ``b``
  (modulo the quantum; during a count-in too, so the count-in clicks fall on Link's
  beats). While the band is stopped Link keeps the band's tempo and runs freely, and takes
  the band's grid as soon as a play is scheduled, before it starts.
* Start/stop sync is on: the band's play starts Link's transport at the song's downbeat
  (after the count-in) and its pause stops it, both announced with their exact instants.

*lead*: the band leads; a tempo another peer sets is put back (at the next check, a few
times a second, so two leading peers cannot trade changes at full speed), and a peer that
joins gets the band's transport. *follow*: the leader lets a Link peer lead the tempo: a
tempo another peer sets becomes the band's ``set_tempo`` through the one command table,
quantised to the next beat as every tempo change is. The first change of a burst is
submitted at once, the rest once the tempo has been still for ``settle_s`` (and at least
once a second while it keeps moving), so dragging a tempo is two changes, not a hundred.
Link keeps that peer's tempo until the band switches to it, and its grid is put back on
the band's at the switch: the peers' grid jumps by what the two tempos made of the time in
between (a band cannot switch sooner than its lead and a beat). A tempo outside what the
band accepts (20-280 BPM), or refused, is not followed: the status says so and Link is
given the band's tempo back; a tempo the leader sets meanwhile supersedes the peer's.
Tempos the bridge itself gives Link are never taken for a peer's. Following, joining a
Link session stops or starts nobody's transport: only the band's own play and pause are
passed on. In neither mode does another peer's start/stop or beat move the band: the
band's timeline is the leader's.

Link sends its state to the other peers at most every 50 ms: a change the bridge makes at
the band's instant reaches them 0-50 ms later (until then they extrapolate the old tempo
or grid), and a tempo with its realigned grid is two messages, 50 ms apart.

Clocks: the band's timeline is in server time (``time.monotonic()`` shifted by a constant,
``core/clock.py``); Link's is its platform's host clock in microseconds, which on Linux is
``CLOCK_MONOTONIC_RAW``, not the ``CLOCK_MONOTONIC`` behind ``time.monotonic()``: the two
differ by an offset that changes whenever NTP slews the latter. So nothing assumes a
constant offset. Changes made "now" (``force_beat``, the tempo) are computed for the server
instant read right before the call, and future instants (the transport's) are mapped
through ``LinkClock``, which measures the offset at the moment of use. A periodic check
compares Link's beat with the band's and realigns Link when they part by more than
``PHASE_TOLERANCE_MS``.

``aalink`` (the ``link`` extra) is imported only here, when the bridge starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final, Literal

from .. import log
from ..core.errors import BandSyncError
from ..core.timeline import MS_PER_MINUTE, Segment, Timeline
from ..core.validation import TEMPO_MAX, TEMPO_MIN
from ..server.peers import ActorError, ActorHost
from ._timing import bracketed_offset

LinkMode = Literal["lead", "follow"]

LOG: Final = log.SERVER.getChild("link")

#: Link's beat may part from the band's by this much before the bridge realigns it. Link
#: itself keeps peers on one machine within a few tens of microseconds.
PHASE_TOLERANCE_MS: Final = 0.02
#: How often the bridge compares Link with the band when nothing is scheduled sooner.
CHECK_INTERVAL_S: Final = 0.25
#: While the band's tempo ramps, Link's tempo is updated this often (each step's tempo is the
#: ramp's average over the step, so Link's beat meets the band's at every step).
RAMP_STEP_MS: Final = 50.0
#: A peer's tempo is followed once it has been still this long ...
FOLLOW_SETTLE_S: Final = 0.15
#: ... or, while it keeps moving, at most this long after it began to move.
FOLLOW_MAX_WAIT_S: Final = 1.0
#: A peer's tempo is followed rounded to this many decimals: what a DAW shows, and coarser
#: than what Link's wire does to a tempo (see ``link_tempo``), so 133 comes back as 133.
TEMPO_DECIMALS: Final = 2
#: Tempos this close (BPM) are one tempo: the same value computed twice.
_SAME_TEMPO: Final = 1e-9

_MICROSECOND: Final = timedelta(microseconds=1)


class LinkClock:
    """Server time (ms) to Link's clock (µs) and back, measured at the moment of use.

    Args:
        server_now_ms: the server clock.
        link_now_us: Link's clock (see ``link_clock_reader``).
        tries: readings per measurement; the one bracketed most tightly by two server
            readings is kept.
    """

    def __init__(
        self,
        server_now_ms: Callable[[], float],
        link_now_us: Callable[[], float],
        tries: int = 3,
    ) -> None:
        self._server_now_ms = server_now_ms
        self._link_now_us = link_now_us
        self._tries = tries

    def offset_us(self) -> float:
        """Link time (µs) minus server time (µs), now."""
        return bracketed_offset(self._link_now_us, self._server_now_us, self._tries)

    def _server_now_us(self) -> float:
        return self._server_now_ms() * 1000.0

    def to_link_us(self, server_ms: float) -> float:
        return server_ms * 1000.0 + self.offset_us()

    def to_server_ms(self, link_us: float) -> float:
        return (link_us - self.offset_us()) / 1000.0


def link_clock_reader(link: Any) -> Callable[[], float]:
    """A reader of ``link``'s clock in microseconds.

    ``link.time`` is Link's own clock, but reading it costs ~10 µs (a ``timedelta`` is built)
    at microsecond resolution. On Linux Link reads ``CLOCK_MONOTONIC_RAW``; where that clock
    agrees with ``link.time`` it is read directly (well under a microsecond, nanosecond
    resolution). Elsewhere ``link.time`` is read.
    """

    def slow() -> float:
        return float(link.time / _MICROSECOND)

    raw_id = getattr(time, "CLOCK_MONOTONIC_RAW", None)
    if raw_id is None:
        return slow

    def fast() -> float:
        return time.clock_gettime_ns(raw_id) / 1000.0

    before = fast()
    reading = slow()
    after = fast()
    # link.time truncates to whole microseconds
    if before - 1.0 <= reading <= after + 1.0:
        return fast
    return slow


def link_tempo(bpm: float) -> float:
    """``bpm`` as Link carries it between peers.

    Link sends a tempo as whole microseconds per beat, so a peer hears 130 BPM as
    130.00013: given the exact value, this peer's beat would run 1 ppm (at 280 BPM: 2 ppm)
    apart from every other peer's, more than a millisecond in ten minutes. Given this value,
    every peer runs the same grid (the bridge's phase check absorbs what it differs from
    the band's).
    """
    return MS_PER_MINUTE * 1000.0 / round(MS_PER_MINUTE * 1000.0 / bpm)


def _tempo_at(segment: Segment, t_ms: float) -> float:
    """The band's tempo at ``t_ms`` in ``segment`` (a ramp's where the timeline has them)."""
    tempo_at = getattr(segment, "tempo_at", None)
    return float(tempo_at(t_ms)) if tempo_at is not None else segment.tempo_bpm


def _ramping_at(segment: Segment, t_ms: float) -> bool:
    """Whether the segment's tempo is moving at ``t_ms`` (a ramp under way)."""
    if not segment.playing or not getattr(segment, "ramps", False):
        return False
    ramp_ms = float(getattr(segment, "ramp_ms", 0.0))
    return segment.anchor_ms <= t_ms < segment.anchor_ms + ramp_ms


def _same(a: float, b: float) -> bool:
    """Whether two tempos are one as the band counts them (``TEMPO_DECIMALS``)."""
    return abs(a - b) < 0.5 * 10.0**-TEMPO_DECIMALS


def _wrap(value: float, period: float) -> float:
    """``value`` modulo ``period``, in ``[-period/2, period/2)``."""
    return (value + period / 2.0) % period - period / 2.0


class LinkBridge:
    """Ableton Link peer that follows the band's timeline and, in follow mode, gives the
    band the tempo other Link peers set. See the module docstring.

    Args:
        mode: ``"lead"`` (Link follows the band) or ``"follow"`` (the band takes a Link
            peer's tempo; Link still takes the band's grid and transport).
        settle_s: follow mode: a peer's tempo is followed once still this long.
        check_interval_s: how often Link is compared with the band when nothing is due.
    """

    name = "link"

    def __init__(
        self,
        mode: LinkMode = "lead",
        *,
        settle_s: float = FOLLOW_SETTLE_S,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        if mode not in ("lead", "follow"):
            raise ValueError(f"Link mode must be 'lead' or 'follow', not {mode!r}")
        self._mode: LinkMode = mode
        self._settle_s = settle_s
        self._check_interval_s = check_interval_s
        self._host: ActorHost | None = None
        self._link: Any = None
        self._clock: LinkClock | None = None
        self._state = "off"
        self._error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._submits: set[asyncio.Task[None]] = set()
        # The tempos this bridge asked the band for lately (the last one last).
        self._asked: deque[float] = deque(maxlen=4)
        self._settle: asyncio.TimerHandle | None = None
        self._moving_since: float | None = None  # loop time a peer's tempo began to move
        # Tempos this bridge gave Link whose tempo callback has not come back yet.
        self._echoes: list[tuple[float, float]] = []
        self._pushed_tempo: float | None = None  # the band's tempo as last given to Link
        self._revert = False  # follow: give Link the band's tempo back (a peer's refused)
        self._peer_tempo: float | None = None  # follow: a peer's tempo the band is taking
        self._link_playing: bool | None = None  # the transport last given to Link
        self._quantum: int | None = None
        self._peers = 0

    # -- the console's switch ------------------------------------------------------------------

    @property
    def mode(self) -> LinkMode:
        return self._mode

    @mode.setter
    def mode(self, mode: LinkMode) -> None:
        """Switch between leading and following while running (the leader's permission to
        follow is ``"follow"``; switching to ``"lead"`` withdraws it at once)."""
        if mode not in ("lead", "follow"):
            raise ValueError(f"Link mode must be 'lead' or 'follow', not {mode!r}")
        self._mode = mode
        if mode == "lead":
            self._cancel_settle()
            self._peer_tempo = None
        self._wake.set()  # (leading: Link gets the band's tempo back at once)

    # -- Actor --------------------------------------------------------------------------------

    async def start(self, host: ActorHost) -> None:
        try:
            aalink = importlib.import_module("aalink")
        except ImportError as exc:
            raise ActorError(
                "Ableton Link needs the aalink package: install the 'gear' extra"
            ) from exc
        timeline = host.timeline
        if timeline is None:
            raise ActorError(f"no session {host.session_id!r} for Link to follow")
        now = host.now_ms()
        segment = timeline.segment_at(now)
        self._host = host
        self._state = "starting"
        # No loop argument: aalink takes the running loop (passing one is deprecated).
        link = aalink.Link(_tempo_at(segment, now))
        self._link = link
        link.quantum = segment.beats_per_bar
        link.start_stop_sync_enabled = True
        self._clock = LinkClock(host.now_ms, link_clock_reader(link))
        # aalink calls these on this loop (call_soon_threadsafe from Link's thread).
        link.add_tempo_callback(self._on_link_tempo)
        link.add_num_peers_callback(self._on_link_peers)
        if self._mode == "follow":
            # Following, the bridge does not stop or start a Link session that is already
            # playing when it joins: only the band's own play and pause are passed on.
            self._link_playing = segment.playing
        link.enabled = True
        host.subscribe(self._on_publication)
        self._task = asyncio.create_task(self._run(), name="link-bridge")
        self._state = "running"
        LOG.info("Link bridge running (%s mode)", self._mode)

    async def stop(self) -> None:
        self._cancel_settle()
        tasks = [t for t in (self._task, *self._submits) if t is not None]
        self._task = None
        self._submits.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._host is not None:
            self._host.unsubscribe(self._on_publication)
            self._host = None
        link, self._link = self._link, None
        if link is not None:
            # The callbacks hold this bridge and aalink holds them where Python's collector
            # cannot see: removing them lets the Link (and its scheduler thread) go.
            link.remove_tempo_callback(self._on_link_tempo)
            link.remove_num_peers_callback(self._on_link_peers)
            link.enabled = False
            del link
            LOG.info("Link bridge stopped")
        self._clock = None
        self._state = "off"

    def status(self) -> Mapping[str, Any]:
        link = self._link
        status: dict[str, Any] = {"state": self._state, "mode": self._mode}
        if link is not None:
            status["peers"] = int(link.num_peers)
            status["tempo"] = round(float(link.tempo), 3)
            status["playing"] = bool(link.playing)
            status["quantum"] = self._quantum
        else:
            status.update(peers=0, tempo=None, playing=False)
        if self._error:
            status["error"] = self._error
        return status

    # -- following the band ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay_s = self._step()
            except Exception:  # a bug here must not end the bridge silently or for good
                LOG.exception("Link bridge step failed")
                self._error = "internal error (see the log)"
                delay_s = self._check_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, delay_s))

    def _step(self) -> float:
        """Bring Link to the band's state now; return the seconds until the next step."""
        host, link = self._host, self._link
        assert host is not None and link is not None
        timeline = host.timeline
        if timeline is None:  # the session is gone (the server is closing)
            return self._check_interval_s
        now = host.now_ms()
        segment = timeline.segment_at(now)
        ramping = _ramping_at(segment, now)
        realign = False

        if segment.beats_per_bar != self._quantum:
            link.quantum = segment.beats_per_bar
            self._quantum = segment.beats_per_bar
            realign = True

        band_tempo = _tempo_at(segment, now)
        if ramping:
            # The ramp's average tempo over the coming step: Link's straight line then meets
            # the band's curve again at the end of the step.
            ramp_end = segment.anchor_ms + float(getattr(segment, "ramp_ms", 0.0))
            end = min(now + RAMP_STEP_MS, ramp_end)
            if end > now:
                beats = segment.beat_at(end) - segment.beat_at(now)
                band_tempo = beats * MS_PER_MINUTE / (end - now)
        target = link_tempo(band_tempo)
        if self._peer_tempo is not None and _same(band_tempo, self._peer_tempo):
            self._peer_tempo = None  # the band has taken the peer's tempo
        band_changed = self._pushed_tempo is None or abs(target - self._pushed_tempo) > _SAME_TEMPO
        if self._mode == "lead":
            give = True  # Link's tempo is the band's, whoever changed it
        else:
            # Following, Link's tempo is left to the peers except when the band's changes
            # by itself (the leader's) and where a peer's is refused; a peer's stays in Link
            # until the band switches to it (past any tempo on the way, such as the first
            # of a dragged tempo's).
            give = self._revert or (band_changed and self._peer_tempo is None)
        if give:
            self._revert = False
            self._pushed_tempo = target
            if abs(float(link.tempo) - target) > _SAME_TEMPO:
                link.tempo = target
                self._echoes.append((asyncio.get_running_loop().time(), target))
            realign = realign or band_changed
        # (at another tempo than the band's, Link's grid cannot be the band's)
        on_band_tempo = abs(float(link.tempo) - target) <= _SAME_TEMPO

        grid = self._grid(timeline, segment, now)
        if grid is not None and on_band_tempo:
            error_ms = self._phase_error_ms(grid, band_tempo)
            if realign or abs(error_ms) > PHASE_TOLERANCE_MS:
                link.force_beat(grid.beat_at(host.now_ms()))

        self._pass_transport(timeline, segment, now)
        return self._next_delay_s(timeline, now, ramping)

    @staticmethod
    def _grid(timeline: Timeline, segment: Segment, now: float) -> Segment | None:
        """The segment whose beat grid Link should follow now: the playing one, or, while
        stopped, a play already scheduled at this tempo (Link takes its grid before it
        starts); ``None`` while stopped with nothing scheduled (Link runs freely)."""
        if segment.playing:
            return segment
        for pending in timeline.segments:
            if pending.start_ms > now:
                if pending.playing and pending.tempo_bpm == segment.tempo_bpm:
                    return pending
                return None
        return None

    def _phase_error_ms(self, grid: Segment, tempo_bpm: float) -> float:
        """Link's beat minus the band's at this instant (modulo the quantum), in ms."""
        host, link = self._host, self._link
        assert host is not None and link is not None
        before = host.now_ms()
        link_beat = float(link.beat)
        after = host.now_ms()
        band_beat = grid.beat_at((before + after) / 2.0)
        return _wrap(link_beat - band_beat, float(grid.beats_per_bar)) * MS_PER_MINUTE / tempo_bpm

    def _pass_transport(self, timeline: Timeline, segment: Segment, now: float) -> None:
        """Start or stop Link's transport as the band's changes, at the band's instant: a
        play is announced as soon as it is scheduled, to start at the song's downbeat."""
        target = segment
        if not segment.playing:
            for pending in timeline.segments:
                if pending.start_ms > now:
                    if pending.playing:
                        target = pending
                    break
        if target.playing == self._link_playing:
            return
        link, clock = self._link, self._clock
        assert link is not None and clock is not None
        at_ms = target.anchor_ms if target.playing else target.start_ms
        if self._link_playing is None:
            # (Re)asserting the band's transport: as of now, to outdate a peer's.
            at_ms = max(at_ms, now)
        at = timedelta(microseconds=round(clock.to_link_us(at_ms)))
        link.set_is_playing_and_request_beat_at_time(target.playing, at, target.beat_at(at_ms))
        self._link_playing = target.playing

    def _next_delay_s(self, timeline: Timeline, now: float, ramping: bool) -> float:
        delay_ms = self._check_interval_s * 1000.0
        if ramping:
            delay_ms = min(delay_ms, RAMP_STEP_MS)
        for segment in timeline.segments:
            if segment.start_ms > now:
                delay_ms = min(delay_ms, segment.start_ms - now)
                break
        return delay_ms / 1000.0

    def _on_publication(self, event: str, payload: Mapping[str, Any]) -> None:
        # Every change of the band ends in a snapshot; the step reads the timeline itself.
        if event == "snapshot":
            self._wake.set()
        elif event == "tempo_changed" and self._peer_tempo is not None:
            tempo = payload.get("tempoBpm")
            ours = isinstance(tempo, int | float) and any(_same(tempo, t) for t in self._asked)
            if not ours:
                # The leader (console or phone) set a tempo since: it supersedes the peer's.
                self._cancel_settle()
                self._peer_tempo = None
                self._revert = True

    # -- following Link (follow mode) --------------------------------------------------------------

    def _on_link_peers(self, peers: int) -> None:
        # A peer that joins may bring its session's tempo, grid and transport: compare at
        # once. Leading, the band's transport is given to Link again, as of now (Link keeps
        # the most recent start/stop of its peers).
        if self._mode == "lead" and peers > self._peers:
            self._link_playing = None
        self._peers = peers
        self._wake.set()

    def _is_echo(self, tempo: float) -> bool:
        """Whether ``tempo`` is the callback of one this bridge gave Link (consumed)."""
        now = asyncio.get_running_loop().time()
        # (a callback Link coalesced away never comes: forget those after a second)
        self._echoes = [(at, t) for at, t in self._echoes if now - at < 1.0]
        for index, (_, pushed) in enumerate(self._echoes):
            if abs(pushed - tempo) <= _SAME_TEMPO:
                del self._echoes[: index + 1]
                return True
        return False

    def _on_link_tempo(self, tempo: float) -> None:
        # aalink calls this for every change of Link's tempo: another peer's, and this
        # bridge's own (those are never commands).
        if self._link is None:
            return
        if self._is_echo(tempo) or self._mode != "follow":
            return  # leading: the next check puts the band's tempo back
        if not TEMPO_MIN <= tempo <= TEMPO_MAX:
            self._error = (
                f"Link tempo {tempo:.2f} BPM is outside {TEMPO_MIN:g}-{TEMPO_MAX:g} BPM: "
                "not followed"
            )
            LOG.info("%s", self._error)
            self._cancel_settle()
            self._peer_tempo = None
            self._revert = True  # Link gets the band's tempo back
            self._wake.set()
            return
        self._peer_tempo = round(tempo, TEMPO_DECIMALS)
        loop = asyncio.get_running_loop()
        if self._settle is not None:
            self._settle.cancel()
        if self._moving_since is None:
            # The first change of a burst is followed at once (the band's switch is a lead
            # and up to a beat away already: the longer Link runs at the peer's tempo alone,
            # the further the grids part before the band switches); the rest of the burst
            # once the tempo has been still for ``settle_s``.
            self._moving_since = loop.time()
            self._submit_peer_tempo()
        waited = loop.time() - self._moving_since
        delay = min(self._settle_s, max(0.0, FOLLOW_MAX_WAIT_S - waited))
        self._settle = loop.call_later(delay, self._follow_peer_tempo)

    def _cancel_settle(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        self._moving_since = None

    def _follow_peer_tempo(self) -> None:
        """A peer's tempo has settled (or kept moving for ``FOLLOW_MAX_WAIT_S``): make it
        the band's, unless it is already."""
        self._settle = None
        self._moving_since = None
        self._submit_peer_tempo()

    def _submit_peer_tempo(self) -> None:
        tempo, host = self._peer_tempo, self._host
        if tempo is None or host is None or self._mode != "follow":
            return
        timeline = host.timeline
        if timeline is not None and _same(timeline.latest.tempo_bpm, tempo):
            return  # the band's already, or asked for
        if self._submits and self._asked and _same(self._asked[-1], tempo):
            return  # being asked for
        self._asked.append(tempo)
        task = asyncio.create_task(self._submit_tempo(host, tempo), name="link-follow")
        self._submits.add(task)
        task.add_done_callback(self._submits.discard)

    async def _submit_tempo(self, host: ActorHost, tempo: float) -> None:
        try:
            await host.submit("set_tempo", {"tempo": tempo})
        except BandSyncError as exc:
            self._error = f"Link tempo {tempo:g} BPM not followed: {exc}"
            LOG.info("%s", self._error)
            if self._peer_tempo == tempo:
                self._peer_tempo = None
                self._revert = True  # Link gets the band's tempo back
        else:
            self._error = None
            LOG.debug("following Link tempo %.2f BPM", tempo)
        self._wake.set()
