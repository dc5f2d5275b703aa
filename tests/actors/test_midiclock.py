"""MIDI clock out (actors/midiclock.py): the schedule read from the timeline, then the actor
against a real MIDI receiver (an rtmidi input on a private dummy JACK server)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bandsync_desktop.actors.midiclock import (
    CLOCK,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
    ClockEvent,
    ClockSchedule,
    MidiClockOut,
    pulses_per_beat,
)
from bandsync_desktop.core.commands import COMMANDS
from bandsync_desktop.core.session import CONSOLE, Rules, Session
from bandsync_desktop.core.timeline import Timeline
from bandsync_desktop.server.peers import ActorError, ActorHost
from tests.helpers.jack import JackServer, MidiReceiver, realtime_allowed, running_jack_server

T0 = 1_764_000_000_000.0  # server times are epoch milliseconds: the float noise is real
# (a float there resolves 2.4e-4 ms: instants are compared to a microsecond)
RULES = Rules()


# -- a MIDI clock receiver as the spec has it ---------------------------------------------


@dataclass
class Slave:
    """What a receiver makes of the messages: after Start (position 0) or Continue (the last
    SPP), each clock plays the next pulse; Stop halts; SPP moves a stopped receiver."""

    running: bool = False
    position: int = 0  # the pulse the next clock plays
    spp: int = 0
    played: list[tuple[float, int]] = field(default_factory=list)  # (instant, pulse)
    spp_before_continue: list[bool] = field(default_factory=list)
    _spp_since_stop: bool = False

    def feed(self, at: float, data: tuple[int, ...]) -> None:
        status = data[0]
        if status == SONG_POSITION:
            self.spp = data[1] | data[2] << 7
            self._spp_since_stop = True
        elif status == START:
            self.running, self.position = True, 0
        elif status == CONTINUE:
            self.running, self.position = True, self.spp * 6
            self.spp_before_continue.append(self._spp_since_stop)
        elif status == STOP:
            self.running, self._spp_since_stop = False, False
        elif status == CLOCK and self.running:
            self.played.append((at, self.position))
            self.position += 1


# -- the schedule alone: a simulated clock, the real session rules ------------------------


@dataclass
class Sent:
    at: float  # when it went out (its instant, or later if it was already due)
    event: ClockEvent
    timeline: Timeline  # what the sender knew then


class Band:
    """A band session driven through the command table, and a sender that hears of each
    change ``heard_after_ms`` late, simulated on a virtual clock."""

    def __init__(self, heard_after_ms: float = 2.0, tempo: float = 120.0, **meter: int) -> None:
        self.session = Session.create("band", T0, console_hosted=True, tempo_bpm=tempo, **meter)
        self.now = T0
        self.heard_after_ms = heard_after_ms
        self.schedule = ClockSchedule()
        self.known = self.session.timeline
        self.sent: list[Sent] = []
        self._pending: list[tuple[float, Timeline]] = []

    def command(self, name: str, **payload: Any) -> float:
        """Give a command now; returns the instant its change takes effect."""
        COMMANDS[name].parse(payload, RULES)(self.session, CONSOLE, self.now)
        self._pending.append((self.now + self.heard_after_ms, self.session.timeline))
        return self.session.timeline.latest.start_ms

    def run(self, ms: float) -> None:
        """Let ``ms`` pass: the sender sends whatever falls due."""
        until = self.now + ms
        for _ in range(200_000):
            heard_at = self._pending[0][0] if self._pending else math.inf
            event = self.schedule.next_event(self.known, self.now)
            due = math.inf if event is None else max(self.now, event.at_ms)
            if min(due, heard_at) > until:
                break
            if heard_at <= due:
                self.now = max(self.now, heard_at)
                self.known = self._pending.pop(0)[1]
                continue
            assert event is not None
            self.now = due
            self.schedule.sent(event)
            self.sent.append(Sent(due, event, self.known))
        else:
            raise AssertionError("the schedule never settles")
        self.now = until

    def kinds(self) -> list[str]:
        return [s.event.kind for s in self.sent if s.event.kind != "clock"]

    def slave(self) -> Slave:
        slave = Slave()
        for s in self.sent:
            slave.feed(s.event.at_ms, tuple(s.event.message()))
        return slave

    def clocks(self, since: float = -math.inf) -> list[Sent]:
        return [s for s in self.sent if s.event.kind == "clock" and s.at >= since]


def test_pulses_per_band_beat_follow_the_beat_unit() -> None:
    assert [pulses_per_beat(u) for u in (2, 4, 8, 16)] == [48, 24, 12, 6]
    with pytest.raises(ValueError, match="whole number"):
        pulses_per_beat(64)  # a 64th has 1.5 pulses


def test_play_from_the_top_clocks_through_the_count_in_and_starts_on_the_downbeat() -> None:
    band = Band()
    band.run(100)
    asked = band.now
    band.command("play", countInBars=1)
    band.run(3000)
    segment = band.session.timeline.latest
    downbeat = segment.anchor_ms
    assert downbeat == pytest.approx(asked + 200 + 4 * 500)  # lead, then 4 beats of count-in
    starts = [s for s in band.sent if s.event.kind == "start"]
    assert band.kinds() == ["spp", "start"]  # SPP 0 at once (stopped at the top), one Start
    # Clock from when the play was heard (the lead) through the count-in: 24 per beat.
    clocks = band.clocks()
    assert clocks[0].at < segment.start_ms and clocks[0].at - asked < 2.0 + 500 / 24
    intervals = [b.at - a.at for a, b in itertools.pairwise(clocks)]
    assert max(intervals) == pytest.approx(500 / 24, abs=1e-3)
    assert min(intervals) == pytest.approx(500 / 24, abs=1e-3)
    # Start halfway between the last count-in pulse and the downbeat's, which is played first.
    assert starts[0].at == pytest.approx(downbeat - 500 / 48, abs=1e-3)
    played = band.slave().played
    assert played[0] == (pytest.approx(downbeat, abs=1e-3), 0)
    assert all(at == pytest.approx(downbeat + n * 500 / 24, abs=1e-3) for at, n in played)


def test_six_eight_counts_eighths_as_beats_and_spp_in_sixteenths() -> None:
    band = Band(tempo=120.0, beats_per_bar=6, beat_unit=8)  # 120 eighths a minute
    band.run(10)
    band.command("seek", position=3000.0)  # 6 eighths: bar 2, the top
    band.run(10)
    assert band.sent[-1].event.value == 12  # 6 eighths = 12 sixteenths
    band.command("play", countInBars=0)
    band.run(2000)
    clocks = band.clocks()
    assert statistics.median(b.at - a.at for a, b in itertools.pairwise(clocks)) == (
        pytest.approx(500 / 12, abs=1e-3)  # 12 pulses an eighth: a quarter (1 s) still has 24
    )
    assert band.kinds() == ["spp", "spp", "continue"]
    played = band.slave().played
    assert played[0][1] == 72 and played[0][0] == pytest.approx(
        band.session.timeline.latest.anchor_ms
    )


def test_a_seek_while_playing_is_stop_spp_continue_at_its_instant() -> None:
    band = Band()
    band.command("play", countInBars=0)
    band.run(1000)
    at = band.command("seek", position=10_100.0)  # beat 20.2: sixteenth 80.8, so 81
    band.run(1000)
    tail = [s for s in band.sent if s.at >= at - 1e-6 and s.event.kind != "clock"]
    assert [s.event.kind for s in tail] == ["stop", "spp", "continue"]
    assert tail[0].at == pytest.approx(at) and tail[1].event.value == 81
    # The receiver plays sixteenth 81 when the band reaches it: 0.05 beat (25 ms) after `at`.
    played = band.slave().played
    resumed = [p for p in played if p[0] >= at]
    assert resumed[0] == (pytest.approx(at + 25.0, abs=1e-3), 81 * 6)
    # The clock runs on through the seek, on the old grid up to it and the new one after.
    before = [c.at for c in band.clocks(since=at - 300) if c.at < at]
    after = [c.at for c in band.clocks(since=at)]
    for run in (before, after):
        assert all(b - a == pytest.approx(500 / 24, abs=1e-3) for a, b in itertools.pairwise(run))
    assert after[0] - before[-1] <= 2 * 500 / 24


def test_pause_stops_at_once_even_heard_late_and_resume_continues_from_there() -> None:
    band = Band(heard_after_ms=7.0)
    band.command("play", countInBars=0)
    band.run(1234)
    paused_at = band.command("pause")
    band.run(500)
    stop = next(s for s in band.sent if s.event.kind == "stop")
    assert stop.at == pytest.approx(paused_at + 7.0)  # heard 7 ms late: Stop when heard
    beat = band.session.timeline.latest.beat  # where the band stopped
    spp = [s.event.value for s in band.sent if s.event.kind == "spp"]
    assert spp[-1] == math.ceil(beat * 4)
    assert not band.clocks(since=stop.at + 1)  # the clock stops with the band
    resumed_at = band.command("play", countInBars=0)
    band.run(1000)
    assert band.kinds()[-3:] == ["stop", "spp", "continue"]  # the SPP already went out
    slave = band.slave()
    assert slave.spp_before_continue == [True]
    timeline = band.session.timeline
    resumed = [(at, pulse) for at, pulse in slave.played if at >= resumed_at]
    assert resumed[0][1] == spp[-1] * 6
    for at, pulse in resumed:
        assert timeline.beat_at(at) * 24 == pytest.approx(pulse, abs=1e-3)


def test_a_tempo_change_changes_the_pulse_rate_at_its_beat() -> None:
    band = Band()
    band.command("play", countInBars=0)
    band.run(1100)
    at = band.command("set_tempo", tempo=180.0)
    band.run(1000)
    assert band.session.timeline.beat_at(at) == pytest.approx(
        round(band.session.timeline.beat_at(at))
    )
    before = [s.at for s in band.clocks() if s.at < at]
    after = [s.at for s in band.clocks() if s.at >= at]
    assert after[0] == pytest.approx(at, abs=1e-3)  # the pulse on the beat of the change
    assert before[-1] == pytest.approx(at - 500 / 24, abs=1e-3)
    assert after[1] - after[0] == pytest.approx(60_000 / 180 / 24, abs=1e-3)


def test_a_meter_change_sends_nothing_and_the_receiver_counts_on() -> None:
    band = Band()
    band.command("play", countInBars=0)
    band.run(1000)
    at = band.command("set_meter", beatsPerBar=6, beatUnit=8)  # on the next bar: beat 4
    band.run(2000)
    assert band.kinds() == ["spp", "start"]  # no Stop, no SPP: a DAW keeps its own song
    before = [c.at for c in band.clocks() if c.at < at]
    after = [c.at for c in band.clocks() if c.at >= at]
    assert after[0] == pytest.approx(at, abs=1e-3) and before[-1] < at
    # 120 eighths a minute: a quarter now lasts 1 s, still 24 pulses.
    assert statistics.median(b - a for a, b in itertools.pairwise(after)) == pytest.approx(
        1000 / 24, abs=1e-3
    )
    positions = [n for _, n in band.slave().played]
    assert positions == list(range(len(positions)))  # counted on, pulse by pulse


def test_joining_a_song_already_playing_gives_clock_first_then_continue() -> None:
    band = Band()
    band.command("play", countInBars=0)
    band.run(5000)
    band.schedule = ClockSchedule(not_before_ms=band.now + 250)  # the actor starts now
    joined = band.now
    band.sent.clear()
    band.run(1000)
    assert band.kinds() == ["spp", "continue"]
    cont = next(s for s in band.sent if s.event.kind == "continue")
    assert cont.at - joined >= 250 - 500 / 24
    assert len([c for c in band.clocks() if c.at < cont.at]) >= 10  # locked before Continue
    timeline = band.session.timeline
    for at, pulse in band.slave().played:
        assert timeline.beat_at(at) * 24 == pytest.approx(pulse, abs=1e-3)


commands = st.one_of(
    st.tuples(st.just("play"), st.fixed_dictionaries({"countInBars": st.integers(0, 2)})),
    st.tuples(st.just("pause"), st.just({})),
    st.tuples(st.just("stop"), st.just({})),
    st.tuples(st.just("seek"), st.fixed_dictionaries({"position": st.floats(0.0, 200_000.0)})),
    st.tuples(
        st.just("set_tempo"),
        st.fixed_dictionaries(
            {"tempo": st.floats(40.0, 240.0), "quantize": st.sampled_from(["now", "beat", "bar"])}
        ),
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(commands, st.floats(1.0, 900.0)), min_size=1, max_size=14),
    heard_after=st.floats(0.0, 15.0),
)
# Found by Hypothesis: the stale cutoff (now - STALE_MS) fell 2.6 µs after the count-in
# pulse just sent, the pulse search took that pulse as on it, and sent it again, forever.
@example(
    steps=[
        (("set_tempo", {"quantize": "beat", "tempo": 89.82496904049572}), 659.8587003625407),
        (("play", {"countInBars": 1}), 4.451654217915094),
        (("set_tempo", {"quantize": "beat", "tempo": 89.82496904049572}), 1.5),
        (("set_tempo", {"quantize": "beat", "tempo": 89.82496904049572}), 659.8587003625407),
    ],
    heard_after=2.227507183346609,
)
# Found by Hypothesis: a tempo change 1 ms after a pulse, then any change once it was in
# force (the timeline dropped the segment the pulse was on); the new first segment's grid,
# extrapolated back before its start, gave that pulse again 8 µs later.
@example(
    steps=[
        (("play", {"countInBars": 0}), 1.0),
        (("set_tempo", {"tempo": 121.0, "quantize": "now"}), 200.0),
        (("seek", {"position": 0.0}), 1.0),
    ],
    heard_after=0.0,
)
def test_the_receiver_is_always_where_the_band_is(
    steps: list[tuple[tuple[str, dict[str, Any]], float]], heard_after: float
) -> None:
    band = Band(heard_after_ms=heard_after)
    for (name, payload), wait in steps:
        band.command(name, **payload)
        band.run(wait)
    band.run(1500)
    slave = Slave()
    last = -math.inf
    for sent in band.sent:
        event = sent.event
        assert sent.at >= last  # in order
        last = sent.at
        if event.kind == "clock":
            # Every pulse lies on the grid of the timeline the sender knew when it sent it.
            grid = sent.timeline.segment_at(event.at_ms)
            if grid.playing:
                beat = grid.beat_at(event.at_ms) * pulses_per_beat(grid.beat_unit)
                assert beat == pytest.approx(event.pulse, abs=1e-3)
        if event.kind in ("start", "continue"):
            assert (event.pulse == 0) == (event.kind == "start")
            if event.kind == "continue":
                assert slave.spp * 6 == event.pulse
        slave.feed(event.at_ms, tuple(event.message()))
        if event.kind == "clock" and slave.running:
            # ...and a running receiver plays exactly the band's pulse.
            assert slave.played[-1][1] == event.pulse
    assert all(slave.spp_before_continue)
    clocks = band.clocks()
    assert all(b.at > a.at for a, b in itertools.pairwise(clocks))


# -- the actor against a real receiver ----------------------------------------------------


@pytest.fixture
def jack() -> Iterator[JackServer]:
    """A private dummy JACK server (its clients are the actor and the receivers), real-time
    where the system allows it, as a studio's JACK runs. At normal priority on a busy machine
    a pulse was stamped late (6.4 ms once in a suite run, 12.8 ms once in 22 runs beside two
    busy loops; none in 24 real-time): the stamp is JACK's cycle time, and a normal-priority
    jackd's cycle waits for a core. (Real-time, one suite run still had the pulses after a
    resume 4.8 ms late at the median: not understood yet.)"""
    with running_jack_server(realtime=realtime_allowed()) as server:
        yield server


def server_offset(host: ActorHost) -> float:
    """Server ms minus time.monotonic() ms (the tightest of a few brackets)."""
    best = (math.inf, 0.0)
    for _ in range(20):
        before = time.monotonic()
        server = host.now_ms()
        after = time.monotonic()
        best = min(best, (after - before, server - (before + after) * 500.0))
    return best[1]


@contextlib.asynccontextmanager
async def clocked_band(
    start_server: Any, receiver: str, **options: Any
) -> AsyncIterator[tuple[ActorHost, MidiClockOut, MidiReceiver]]:
    """A band server with MIDI clock out to its virtual port, and a receiver (JACK client
    ``receiver``) connected to that port."""
    actor = MidiClockOut(None, api="jack", **options)
    server = await start_server(band_session=True, actors=[actor])
    midi_in = MidiReceiver(receiver)
    try:
        midi_in.connect_from("BandSync:BandSync")
        yield server.actors.host, actor, midi_in
    finally:
        midi_in.close()


def pulse_period(played: list[tuple[float, int]]) -> float:
    """The pulse period (ms) as a least-squares slope of instant against pulse: JACK stamps
    a message at the start of the period it is read in, so single intervals are whole
    periods (13.3 or 14.7 ms for 13.9 ms pulses) and only the line through them is the rate."""
    ns = [float(n) for _, n in played]
    ats = [at for at, _ in played]
    mean_n, mean_at = statistics.fmean(ns), statistics.fmean(ats)
    return sum((n - mean_n) * (at - mean_at) for n, at in zip(ns, ats, strict=True)) / sum(
        (n - mean_n) ** 2 for n in ns
    )


def played_on_server_clock(receiver: MidiReceiver, offset: float) -> list[tuple[float, int]]:
    slave = Slave()
    messages = receiver.messages
    for message, at in zip(messages, receiver.received_s(messages), strict=True):
        slave.feed(at * 1000.0 + offset, message.data)
    return slave.played


@pytest.mark.asyncio
@pytest.mark.parametrize("own_process", [True, False], ids=["own-process", "thread"])
async def test_clock_to_the_virtual_port(
    jack: JackServer, start_server: Any, own_process: bool
) -> None:
    async with clocked_band(start_server, "drum-machine", own_process=own_process) as rig:
        host, actor, receiver = rig
        assert "BandSync:BandSync" in jack.ports()
        await host.submit("set_tempo", {"tempo": 150})
        session = await host.submit("play", {"countInBars": 0})
        downbeat = session.timeline.latest.anchor_ms
        await receiver.wait_for(CLOCK, 90)  # 1.5 s at 60 pulses a second
        await host.submit("pause", {})
        await receiver.wait_for(STOP)
        await asyncio.sleep(0.15)
        kinds = [m.data[0] for m in receiver.messages if m.data[0] != CLOCK]
        assert kinds == [START, STOP, SONG_POSITION]
        offset = server_offset(host)
        played = played_on_server_clock(receiver, offset)
        # 150 BPM: 60 pulses a second, each where the timeline puts it.
        assert pulse_period(played) == pytest.approx(1000 / 60, rel=0.01)
        errors = [at - (downbeat + n * 1000 / 60) for at, n in played]
        assert played[0][1] == 0 and statistics.median(abs(e) for e in errors) < 3.0
        # The clock stops with the band.
        stop_at = receiver.received_s(receiver.of(STOP))[0]
        assert all(t <= stop_at for t in receiver.received_s(receiver.of(CLOCK)))
        status = actor.status()
        assert status["state"] == "running" and status["port"] == "BandSync"
        assert status["virtual"] is True and status["pulses"] >= 90
        assert status["ownProcess"] is own_process


@pytest.mark.asyncio
async def test_seeks_send_song_position_and_resume_where_the_band_is(
    jack: JackServer, start_server: Any
) -> None:
    async with clocked_band(start_server, "daw") as (host, _, receiver):
        await host.submit("seek", {"position": 7_000})  # paused: beat 14, sixteenth 56
        (spp,) = await receiver.wait_for(SONG_POSITION)
        assert spp.data == (SONG_POSITION, 56, 0)
        await host.submit("play", {"countInBars": 0})
        await receiver.wait_for(CONTINUE)
        await asyncio.sleep(0.3)
        session = await host.submit("seek", {"position": 65_432})  # beat 130.864: 524
        seek_at = session.timeline.latest.start_ms
        await receiver.wait_for(CONTINUE, 2)
        await asyncio.sleep(0.3)
        kinds = [m.data for m in receiver.messages if m.data[0] != CLOCK]
        assert kinds == [
            (SONG_POSITION, 56, 0),
            (CONTINUE,),
            (STOP,),
            (SONG_POSITION, 524 & 0x7F, 524 >> 7),
            (CONTINUE,),
        ]
        played = played_on_server_clock(receiver, server_offset(host))
        resumed = [(at, n) for at, n in played if n >= 524 * 6]
        # Sixteenth 524 is beat 131: 0.136 beat (68 ms) after the seek's instant.
        assert resumed[0][1] == 524 * 6
        assert resumed[0][0] - (seek_at + 68.0) == pytest.approx(0.0, abs=4.0)
        timeline = host.timeline
        lateness = [at - timeline.segment_at(at).time_of_beat(n / 24) for at, n in resumed]
        assert statistics.median(abs(x) for x in lateness) < 3.0


@pytest.mark.asyncio
async def test_a_tempo_change_reaches_the_receiver_at_its_beat(
    jack: JackServer, start_server: Any
) -> None:
    async with clocked_band(start_server, "arp") as (host, _, receiver):
        await host.submit("play", {"countInBars": 0})
        await receiver.wait_for(CLOCK, 30)
        session = await host.submit("set_tempo", {"tempo": 180})
        change_at = session.timeline.latest.start_ms
        beat = round(session.timeline.beat_at(change_at))
        await receiver.wait_for(CLOCK, 30 + 60)
        await asyncio.sleep(0.4)
        played = played_on_server_clock(receiver, server_offset(host))
        slow = [(at, n) for at, n in played if n <= beat * 24]
        fast = [(at, n) for at, n in played if n >= beat * 24]
        assert pulse_period(slow) == pytest.approx(500 / 24, rel=0.01)
        assert pulse_period(fast) == pytest.approx(60_000 / 180 / 24, rel=0.01)
        switch = next(at for at, n in played if n == beat * 24)
        assert switch - change_at == pytest.approx(0.0, abs=4.0)


@pytest.mark.asyncio
async def test_a_named_port_by_a_unique_part_of_its_name(
    jack: JackServer, start_server: Any
) -> None:
    drums = MidiReceiver("drum-machine")
    drums.open_virtual("midi_in")
    looper = MidiReceiver("looper")
    looper.open_virtual("midi_in")
    try:
        server = await start_server(band_session=True)
        actors = server.actors
        # (the port is chosen by one function in either kind of sender: a thread's is quicker
        # to start; an error from the sender's own process: the next test)
        with pytest.raises(
            ActorError, match=r"no MIDI output port matches 'synth'.*looper:midi_in"
        ):
            await actors.start(MidiClockOut("synth", api="jack", own_process=False))
        with pytest.raises(ActorError, match=r"ambiguous.*drum-machine:midi_in.*looper:midi_in"):
            await actors.start(MidiClockOut("midi_in", api="jack", own_process=False))
        assert "midi-clock" not in actors
        actor = MidiClockOut("DRUM", api="jack")
        await actors.start(actor)
        assert actor.status()["port"] == "drum-machine:midi_in"
        await server.actors.host.submit("play", {"countInBars": 0})
        await drums.wait_for(START)
        await drums.wait_for(CLOCK, 5)
        assert not looper.messages
        await server.actors.stop("midi-clock")
        await drums.wait_for(STOP)
        assert actor.status()["state"] == "stopped"
        await actor.stop()  # twice: nothing happens
        assert len(drums.of(STOP)) == 1
    finally:
        drums.close()
        looper.close()


@pytest.mark.asyncio
async def test_no_midi_system_or_no_rtmidi_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, start_server: Any
) -> None:
    server = await start_server(band_session=True)
    actors = server.actors
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "bandsync-nobody-runs-this")
    for own_process in (True, False):
        with pytest.raises(ActorError, match=r"cannot open the MIDI system \(Jack\)"):
            await actors.start(MidiClockOut(None, api="jack", own_process=own_process))
    with pytest.raises(ActorError, match=r"no MIDI system 'nonesuch'.*jack"):
        await actors.start(MidiClockOut(None, api="nonesuch"))
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # as if python-rtmidi were not installed
    with pytest.raises(ActorError, match="install the 'gear' extra"):
        await actors.start(MidiClockOut(None))
    with pytest.raises(ActorError, match="install the 'gear' extra"):
        MidiClockOut.output_ports()
    assert "midi-clock" not in actors


def test_the_console_lists_output_ports(jack: JackServer) -> None:
    receiver = MidiReceiver("synth")
    receiver.open_virtual("in")
    try:
        assert "synth:in" in MidiClockOut.output_ports(api="jack")
    finally:
        receiver.close()
