"""The OSC bridge (actors/osc.py) against a real server and real UDP sockets on loopback.

Receivers are raw UDP sockets read by a thread of their own (arrival times are taken there,
not on the server's loop, which the test shares), parsed with python-osc's ``OscPacket``.
Senders are raw UDP sockets too, bound to 127.0.0.1 (allowed) or 127.0.0.2 (another machine).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bandsync_desktop.actors.osc import (
    DATAGRAM_BURST,
    DATAGRAMS_PER_S,
    MAX_DATAGRAM,
    MalformedPacket,
    OscBridge,
    Outgoing,
    Planner,
    encode,
    next_beat,
    parse_packet,
)
from bandsync_desktop.core.timeline import Timeline
from bandsync_desktop.server.peers import ActorError
from tests.helpers.clients import Recorder

pytestmark = pytest.mark.asyncio

T0 = 1.7e12  # server times look like epoch milliseconds (core/clock.py)


# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() of arrival
    address: str
    params: tuple[Any, ...]
    timetag: float | None  # a bundle's timetag (Unix seconds), None for a plain message


SO_TIMESTAMPNS = 35  # Linux: the kernel stamps each datagram's arrival (CLOCK_REALTIME, ns)


class Receiver:
    """A UDP socket on 127.0.0.1 read by its own thread; keeps every OSC message.

    Arrival times are the kernel's receive timestamps, mapped to ``time.monotonic()``: what
    this process's threads are doing (the server's loop runs in it) does not move them.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stamped = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            self.stamped = False
        before = time.monotonic()
        wall = time.time()
        self.wall_minus_mono = wall - (before + time.monotonic()) / 2
        self.port: int = self.sock.getsockname()[1]
        self.messages: list[Received] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.monotonic()
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack("@qq", payload[:16])
                    at = seconds + nanoseconds / 1e9 - self.wall_minus_mono
            bundle = data.startswith(b"#bundle")
            for timed in OscPacket(data).messages:
                self.messages.append(
                    Received(
                        at,
                        timed.message.address,
                        tuple(timed.message.params),
                        timed.time if bundle else None,
                    )
                )

    def of(self, address: str) -> list[Received]:
        return [m for m in list(self.messages) if m.address == f"/bandsync/{address}"]

    async def wait_for(
        self,
        address: str,
        count: int = 1,
        timeout: float = 5.0,
        where: Callable[[Received], bool] | None = None,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.of(address) if where is None or where(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {address} not received: {found}")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self._closed = True
        self._thread.join(1.0)
        self.sock.close()


def assert_on_time(lateness_s: list[float]) -> None:
    """Sent at the instants, not before: none early, the median within 3 ms. (The figures
    are the bench's; on a shared machine a thread can wait for a core now and then.)"""
    assert lateness_s and min(lateness_s) > -0.0005, lateness_s
    assert statistics.median(lateness_s) < 0.003, lateness_s
    assert max(lateness_s) < 0.1, lateness_s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def osc(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def typed(address: str, *args: tuple[Any, str]) -> bytes:
    """An OSC message with the type tags given (doubles, 64-bit integers)."""
    return encode(Outgoing(f"/bandsync/{address}", args)).dgram


class Sender:
    """A UDP socket bound to ``source`` that sends to the bridge and hears its replies."""

    def __init__(self, source: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.target = ("127.0.0.1", port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def cmd(self, address: str, *args: Any) -> None:
        self.send(osc(f"/bandsync/{address}", *args))

    def replies(self) -> list[tuple[str, list[Any]]]:
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            message = OscPacket(data).messages[0].message
            out.append((message.address, list(message.params)))

    def close(self) -> None:
        self.sock.close()


def mono_of(server_ms: float, server: Any) -> float:
    """The monotonic instant (s) of a server time (the clock is monotonic + a constant),
    from the tightest of a few brackets (a thread switch between readings would skew it)."""
    return server_ms / 1000.0 - bracket(lambda: server.service.clock.now_ms() / 1000.0)


def bracket(read: Callable[[], float]) -> float:
    """``read()`` minus ``time.monotonic()`` (s), from the tightest of a few brackets."""
    best = (math.inf, 0.0)
    for _ in range(20):
        before = time.monotonic()
        value = read()
        after = time.monotonic()
        if after - before < best[0]:
            best = (after - before, value - (before + after) / 2)
    return best[1]


async def band(start_server: Any, bridge: OscBridge, tempo: float | None = 240.0) -> Any:
    server = await start_server(band_session=True, actors=[bridge])
    if tempo is not None:
        await server.actors.host.submit("set_tempo", {"tempo": tempo})
    return server


async def listening(bridge: OscBridge) -> int:
    return int(str(bridge.status()["listening"]).rsplit(":", 1)[1])


async def until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- the schedule (pure) ------------------------------------------------------------------------


async def test_next_beat_follows_count_in_tempo_changes_and_seeks() -> None:
    tl = Timeline.stopped(T0, tempo_bpm=120.0)
    assert next_beat(tl, T0) is None  # paused: no beat
    tl = tl.played(T0 + 100, count_in_beats=4)  # downbeat at +2100
    beats = []
    t = T0
    for _ in range(7):
        beat = next_beat(tl, t)
        assert beat is not None
        beats.append(beat)
        t = beat.at_ms + 0.5
    assert [round(b.at_ms - T0, 6) for b in beats] == [100, 600, 1100, 1600, 2100, 2600, 3100]
    assert [(b.bar, b.beat, b.count, b.count_in) for b in beats] == [
        (-1, 1, -4, True),
        (-1, 2, -3, True),
        (-1, 3, -2, True),
        (-1, 4, -1, True),
        (1, 1, 0, False),
        (1, 2, 1, False),
        (1, 3, 2, False),
    ]
    # A tempo change on a beat: the beat is there once, at the switch, and the interval
    # changes from it on.
    switch = T0 + 3100
    changed = tl.with_tempo(switch, 60.0)
    after = [next_beat(changed, T0 + 2600 + 0.5)]
    after.append(next_beat(changed, after[0].at_ms + 0.5))  # type: ignore[union-attr]
    assert [round(b.at_ms - T0, 6) for b in after if b] == [3100, 4100]
    assert [b.count for b in after if b] == [2, 3]
    # A seek between beats: beats of the absolute count at the new position.
    sought = tl.sought(T0 + 2700, 10_250.0)  # beat 20.5 at +2700: beat 21 at +2950
    beat = next_beat(sought, T0 + 2700)
    assert beat is not None and round(beat.at_ms - T0, 6) == 2950 and beat.count == 21
    assert (beat.bar, beat.beat) == (6, 2)


async def test_the_planner_announces_each_change_once_at_its_instant() -> None:
    tl = Timeline.stopped(T0, tempo_bpm=120.0)
    planner = Planner(T0)
    first = planner.catch_up(tl, "", T0)
    assert [m.address for m in first] == [
        "/bandsync/transport",
        "/bandsync/tempo",
        "/bandsync/meter",
        "/bandsync/song",
    ]
    assert first[0].args == ((0, "i"), ("stopped", "s"), (0.0, "f"))
    tl = tl.played(T0 + 200, count_in_beats=4).with_tempo(T0 + 2200 + 1500, 60.0)
    assert planner.catch_up(tl, "", T0 + 1) == []  # nothing in force yet
    sent: list[tuple[float, str, tuple[Any, ...]]] = []
    now = T0 + 1
    for _ in range(10):
        event = planner.next_event(tl, now)
        assert event is not None
        for message in event.messages:
            sent.append((round(event.at_ms - T0, 6), message.address, message.args))
        planner.commit(event)
        now = event.at_ms
    transports = [(t, a[1][0]) for t, addr, a in sent if addr == "/bandsync/transport"]
    assert transports == [(200, "count-in"), (2200, "playing")]
    tempos = [(t, a[0][0]) for t, addr, a in sent if addr == "/bandsync/tempo"]
    assert tempos == [(3700, 60.0)]
    beats = [t for t, addr, _ in sent if addr == "/bandsync/beat"]
    assert beats == [200, 700, 1200, 1700, 2200, 2700, 3200, 3700, 4700, 5700]
    assert [t for t, addr, _ in sent if addr == "/bandsync/bar"] == [200, 2200, 4200 + 500]
    # A pause that took effect at once, heard of late: announced at once, with its position.
    paused = tl.paused(now)
    out = planner.catch_up(paused, "Song", now + 3)
    assert [m.address for m in out] == ["/bandsync/transport", "/bandsync/song"]
    assert out[0].args[1] == ("paused", "s") and out[1].args == (("Song", "s"),)
    assert planner.next_event(paused, now + 3) is None


async def test_along_a_ramp_the_tempo_is_told_on_each_beat() -> None:
    tl = Timeline.stopped(T0, tempo_bpm=120.0).played(T0)
    tl = tl.with_ramp(T0 + 1000, 180.0, 4.0)  # beat 2 on: 120 -> 180 BPM over four beats
    planner = Planner(T0)
    planner.catch_up(tl, "", T0)
    told = []
    now = T0
    for _ in range(8):
        event = planner.next_event(tl, now)
        assert event is not None
        told += [
            (event.beat.count if event.beat else None, m.args[0][0])
            for m in event.messages
            if m.address == "/bandsync/tempo"
        ]
        planner.commit(event)
        now = event.at_ms
    assert told == [(3, 135.0), (4, 150.0), (5, 165.0), (6, 180.0)]


async def test_incoming_packets_are_parsed_strictly() -> None:
    message = osc("/bandsync/meter", 3, 8)
    assert parse_packet(message) == [("/bandsync/meter", [3, 8])]
    bundle = OscBundleBuilder(time.time() + 3600)  # (timetags of incoming bundles are ignored)
    bundle.add_content(OscMessageBuilder("/bandsync/play").build())
    bundle.add_content(encode(Outgoing("/bandsync/seek", ((1500.0, "d"),))))
    assert parse_packet(bundle.build().dgram) == [
        ("/bandsync/play", []),
        ("/bandsync/seek", [1500.0]),
    ]
    assert parse_packet(b"/bandsync/stop\x00\x00") == [("/bandsync/stop", [])]
    started = time.monotonic()
    for bad in [
        b"",
        b"bandsync/play\x00\x00\x00",
        b"/bandsync/tempo\x00,b\x00\x00\x00\x00\x00\x04abcd",  # blobs are not taken
        b"/bandsync/tempo\x00,[f]\x00\x00\x00\x00\x00\x00",  # nor arrays
        b"/bandsync/tempo\x00,i\x00\x00\x00\x01",  # an int cut short
        b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xfc",  # element size -4
        b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x06abcdef",  # not a multiple of 4
        b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x01\x00",  # past the end
        b"#bundle\x00\x00\x00",
    ]:
        with pytest.raises(MalformedPacket):
            parse_packet(bad)
    assert time.monotonic() - started < 0.05


async def test_messages_encode_as_documented() -> None:
    message = encode(
        Outgoing("/bandsync/beat", ((2, "i"), (3, "i"), (6, "i"), (0, "i"), (T0, "d")))
    )
    assert message.dgram.startswith(b"/bandsync/beat\x00\x00,iiiid\x00\x00")
    assert list(message.params) == [2, 3, 6, 0, T0]


# -- out ----------------------------------------------------------------------------------------


async def test_beats_arrive_at_tempo_with_bar_and_beat_numbers(
    start_server: Any, receiver: Receiver
) -> None:
    bridge = OscBridge([("127.0.0.1", receiver.port)])
    server = await band(start_server, bridge)
    host = server.actors.host
    await host.submit("play", {})
    beats = await receiver.wait_for("beat", 7, timeout=4.0)
    timeline = host.timeline
    assert [m.params[:4] for m in beats] == [
        (1, 1, 0, 0),
        (1, 2, 1, 0),
        (1, 3, 2, 0),
        (1, 4, 3, 0),
        (2, 1, 4, 0),
        (2, 2, 5, 0),
        (2, 3, 6, 0),
    ]
    lateness = []
    for message in beats:
        ideal = timeline.segment_at(message.params[4]).time_of_beat(message.params[2])
        assert message.params[4] == pytest.approx(ideal, abs=1e-3)  # the beat's server time
        lateness.append(message.at - mono_of(ideal, server))
    assert_on_time(lateness)
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats)]
    assert statistics.median(gaps) == pytest.approx(0.25, abs=0.003), gaps
    bars = receiver.of("bar")
    assert [m.params for m in bars[:2]] == [(1, 4, 4, 0), (2, 4, 4, 0)]
    assert abs(bars[1].at - beats[4].at) < 0.002  # with the downbeat
    status = bridge.status()
    assert status["state"] == "running" and status["targets"] == [f"127.0.0.1:{receiver.port}"]
    assert status["sent"] >= 9 and status["listening"] is None


async def test_a_tempo_change_alters_the_beat_interval_at_its_beat(
    start_server: Any, receiver: Receiver, make_client: Any
) -> None:
    bridge = OscBridge([("127.0.0.1", receiver.port)])
    server = await band(start_server, bridge)
    host = server.actors.host
    phone = await make_client("phone", url=server.url)
    await phone.call("join_session", {"sessionId": "band"})
    await host.submit("play", {})
    await receiver.wait_for("beat", 2)
    changed = phone.next("tempo_changed")
    await host.submit("set_tempo", {"tempo": 120})
    notice = await asyncio.wait_for(changed, 2.0)
    switch = notice["effectiveAt"]
    beats = await receiver.wait_for("beat", 3, where=lambda m: m.params[4] > switch + 1)
    all_beats = receiver.of("beat")
    times = [m.params[4] for m in all_beats]
    at_switch = [m for m in all_beats if abs(m.params[4] - switch) < 0.01]
    assert len(at_switch) == 1  # the beat of the switch, once
    index = all_beats.index(at_switch[0])
    before = [b - a for a, b in itertools.pairwise(times[: index + 1])]
    after = [b - a for a, b in itertools.pairwise(times[index:])]
    assert before and all(gap == pytest.approx(250.0, abs=1e-3) for gap in before)
    assert after and all(gap == pytest.approx(500.0, abs=1e-3) for gap in after)
    assert_on_time([m.at - mono_of(m.params[4], server) for m in all_beats])
    arrivals = [m.at for m in all_beats[index:]]
    assert statistics.median(b - a for a, b in itertools.pairwise(arrivals)) == pytest.approx(
        0.5, abs=0.003
    )
    assert [m.params for m in receiver.of("tempo")] == [(120.0,), (240.0,), (120.0,)]
    tempo = receiver.of("tempo")[-1]
    assert abs(tempo.at - at_switch[0].at) < 0.002  # told on the beat of the switch
    assert beats


async def test_transport_tempo_meter_and_song_are_sent_on_change(
    start_server: Any, receiver: Receiver
) -> None:
    bridge = OscBridge([("127.0.0.1", receiver.port)], server_time=False)
    server = await band(start_server, bridge, tempo=None)
    host = server.actors.host
    first = await receiver.wait_for("song")
    assert first[0].params == ("",)
    assert [m.params for m in receiver.of("transport")] == [(0, "stopped", 0.0)]
    assert [m.params for m in receiver.of("meter")] == [(4, 4)]
    await host.submit("set_tempo", {"tempo": 240})
    await receiver.wait_for("tempo", 2)
    assert [m.params for m in receiver.of("tempo")] == [(120.0,), (240.0,)]
    await host.submit("set_song", {"song": {"title": "Intro <b>", "chart": "C G"}})
    assert (await receiver.wait_for("song", 2))[1].params == ("Intro <b>",)
    await host.submit("set_meter", {"beatsPerBar": 3})
    assert (await receiver.wait_for("meter", 2))[1].params == (3, 4)
    await host.submit("set_count_in", {"bars": 1})
    await host.submit("play", {})
    playing = await receiver.wait_for("transport", 3, timeout=3.0)
    assert [m.params[:2] for m in playing[1:]] == [(0, "count-in"), (1, "playing")]
    beats = await receiver.wait_for("beat", 5)
    assert abs(playing[2].at - beats[3].at) < 0.002  # "playing" with the downbeat
    assert [m.params for m in beats] == [
        (-1, 1, -3, 1),
        (-1, 2, -2, 1),
        (-1, 3, -1, 1),
        (1, 1, 0, 0),
        (1, 2, 1, 0),
    ]
    assert [m.params for m in receiver.of("bar")[:2]] == [(-1, 3, 4, 1), (1, 3, 4, 0)]
    await host.submit("pause", {})
    paused = (await receiver.wait_for("transport", 4))[3]
    assert paused.params[:2] == (0, "paused") and paused.params[2] > 0
    await host.submit("seek", {"position": 12_000})
    sought = (await receiver.wait_for("transport", 5))[4]
    assert sought.params == (0, "paused", 12_000.0)
    await host.submit("stop", {})
    assert (await receiver.wait_for("transport", 6))[5].params == (0, "stopped", 0.0)
    await asyncio.sleep(0.3)
    # Each change once: nothing repeated, no beat after the pause.
    assert len(receiver.of("transport")) == 6 and len(receiver.of("song")) == 2
    assert len(receiver.of("tempo")) == 2 and len(receiver.of("meter")) == 2
    assert all(m.at < paused.at for m in receiver.of("beat"))


async def test_timetagged_bundles_leave_ahead_of_the_beat(
    start_server: Any, receiver: Receiver
) -> None:
    bridge = OscBridge([("127.0.0.1", receiver.port)], timetag_ahead_ms=40.0)
    server = await band(start_server, bridge)
    await server.actors.host.submit("play", {})
    beats = await receiver.wait_for("beat", 3)
    lateness = []
    for message in beats:
        assert message.timetag is not None
        ideal = mono_of(message.params[4], server)
        lateness.append(message.at - (ideal - 0.040))  # to arrive 40 ms ahead
        wall_of_beat = ideal + bracket(time.time)
        assert message.timetag == pytest.approx(wall_of_beat, abs=0.002)
    assert_on_time(lateness)


# -- in -----------------------------------------------------------------------------------------


async def test_commands_from_an_allowed_address_reach_the_phones(
    start_server: Any, make_client: Any
) -> None:
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.1"])
    server = await band(start_server, bridge, tempo=None)
    phone: Recorder = await make_client("phone", url=server.url)
    await phone.call("join_session", {"sessionId": "band"})
    desk = Sender("127.0.0.1", await listening(bridge))
    try:
        changed = phone.next("tempo_changed")
        desk.cmd("tempo", 133.5)
        assert (await asyncio.wait_for(changed, 2.0))["tempoBpm"] == 133.5
        for address, args, event, check in [
            ("message", ("Break <i>2</i>",), "message_updated", ("message", "Break <i>2</i>")),
            ("meter", (3, 8), "meter_changed", ("beatUnit", 8)),
            ("play", (1.0,), "play", ("countInBars", 0)),
            ("seek", (5000.0,), "seek", ("positionMs", 5000.0)),
            ("pause", (), "pause", ("isPlaying", False)),
            ("stop", (1,), "seek", ("positionMs", 0.0)),
        ]:
            notice = phone.next(event)
            desk.cmd(address, *args)
            payload = await asyncio.wait_for(notice, 2.0)
            key, value = check
            assert payload[key] == value, (address, payload)
        desk.cmd("count_in", 2)
        await until(lambda: server.service.sessions["band"].count_in_bars == 2)
        # A button's release (0) is not a press.
        desk.cmd("play", 0.0)
        await asyncio.sleep(0.2)
        assert not server.service.sessions["band"].timeline.latest.playing
        assert bridge.status()["commands"] == 8 and desk.replies() == []
    finally:
        desk.close()


async def test_a_refused_command_is_answered_and_changes_nothing(start_server: Any) -> None:
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.0/8"])
    server = await band(start_server, bridge, tempo=None)
    session = server.service.sessions["band"]
    version = session.version
    desk = Sender("127.0.0.1", await listening(bridge))
    try:
        for address, args in [
            ("tempo", (300.0,)),
            ("tempo", ("120",)),
            ("tempo", (math.nan,)),
            ("tempo", (math.inf,)),
            ("tempo", ()),
            ("seek", (-5.0,)),
            ("seek", (True,)),
            ("meter", (0, 4)),
            ("meter", (4.5, 4)),
            ("count_in", (9,)),
            ("message", ("x" * 501,)),
            ("message", ("bell\x07",)),
        ]:
            desk.cmd(address, *args)
        replies: list[tuple[str, list[Any]]] = []
        await until(lambda: bool(replies.extend(desk.replies())) or len(replies) >= 12)
        assert {address for address, _ in replies} == {"/bandsync/error"}
        codes = [args[0] for _, args in replies]
        assert codes[:5] == ["INVALID_TEMPO"] * 5
        assert set(codes[5:7]) == {"INVALID_POSITION"}
        assert all(isinstance(args[1], str) and args[1] for _, args in replies)
        assert server.service.sessions["band"].version == version
        assert bridge.status()["rejected"] == 12
    finally:
        desk.close()


async def test_wrong_typed_arguments_are_refused_by_the_commands_own_rules(
    start_server: Any,
) -> None:
    """Every OSC type a sender may use, in the wrong place: each one refused, answered, and
    nothing changed. (Names alternate, so no two are merged as a fader's stream.)"""
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.1"])
    server = await band(start_server, bridge, tempo=None)
    session = server.service.sessions["band"]
    version, tempo = session.version, session.timeline.latest.tempo_bpm
    desk = Sender("127.0.0.1", await listening(bridge))
    cases: list[tuple[bytes, str]] = [
        (osc("/bandsync/tempo", True), "INVALID_TEMPO"),  # T: a bool is not a number
        (osc("/bandsync/seek", "5000"), "INVALID_POSITION"),
        (osc("/bandsync/meter", "3", "8"), "INVALID_METER"),
        (osc("/bandsync/count_in", 1.5), "INVALID_COUNT_IN"),
        (osc("/bandsync/message", 42), "INVALID_MESSAGE"),
        (osc("/bandsync/tempo", None), "INVALID_TEMPO"),  # N
        (typed("seek", (2**62, "h")), "INVALID_POSITION"),  # 64 bits: beyond any song
        (osc("/bandsync/meter", 4, 7), "INVALID_METER"),
        (osc("/bandsync/count_in", -1), "INVALID_COUNT_IN"),
        (typed("message", (0.5, "d")), "INVALID_MESSAGE"),  # (N: clears it, as from a phone)
        (typed("tempo", (-1e308, "d")), "INVALID_TEMPO"),
        (typed("seek", (1e300, "d")), "INVALID_POSITION"),
        (osc("/bandsync/meter", 2**31 - 1, 4), "INVALID_METER"),
        (osc("/bandsync/count_in", "two"), "INVALID_COUNT_IN"),
        (osc("/bandsync/message", False), "INVALID_MESSAGE"),
    ]
    try:
        for data, _ in cases:
            desk.send(data)
        replies: list[tuple[str, list[Any]]] = []
        await until(lambda: bool(replies.extend(desk.replies())) or len(replies) >= len(cases))
        assert [args[0] for _, args in replies] == [code for _, code in cases]
        assert {address for address, _ in replies} == {"/bandsync/error"}
        session = server.service.sessions["band"]
        assert session.version == version and session.timeline.latest.tempo_bpm == tempo
        status = bridge.status()
        assert status["rejected"] == len(cases) and status["commands"] == 0
        # The listener still takes a good command from the same desk.
        desk.cmd("tempo", 111.0)
        await until(lambda: server.service.sessions["band"].timeline.latest.tempo_bpm == 111.0)
        assert bridge.status()["state"] == "running"
    finally:
        desk.close()


@pytest.mark.expect_log("not in --osc-allow")
async def test_commands_from_another_address_change_nothing(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.1"])
    server = await band(start_server, bridge, tempo=None)
    version = server.service.sessions["band"].version
    port = await listening(bridge)
    stranger = Sender("127.0.0.2", port)
    desk = Sender("127.0.0.1", port)
    try:
        with caplog.at_level(logging.WARNING, logger="bandsync.server.osc"):
            for _ in range(50):
                stranger.cmd("tempo", 99.0)
                stranger.cmd("play")
            # What would be refused or malformed from the desk is not even read from him.
            stranger.send(b"\xff" * (MAX_DATAGRAM + 1))
            stranger.send(b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xfc")
            stranger.cmd("tempo", "fast")
            await until(lambda: bridge.status()["refused"] == 103)
        assert server.service.sessions["band"].version == version
        status = bridge.status()
        assert status["received"] == 0 and status["rejected"] == 0 and status["ignored"] == 0
        assert stranger.replies() == []  # not even an error: a stranger is not answered
        refusals = [r for r in caplog.records if "not in --osc-allow" in r.getMessage()]
        assert len(refusals) == 1 and "127.0.0.2" in refusals[0].getMessage()
        # The allowed desk is still heard.
        desk.cmd("tempo", 99.0)
        await until(lambda: server.service.sessions["band"].timeline.latest.tempo_bpm == 99.0)
    finally:
        stranger.close()
        desk.close()


@pytest.mark.expect_log("dropped")
async def test_hostile_datagrams_change_nothing_and_the_server_still_answers(
    start_server: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.1"])
    server = await band(start_server, bridge, tempo=None)
    version = server.service.sessions["band"].version
    phone: Recorder = await make_client("phone", url=server.url)
    await phone.call("join_session", {"sessionId": "band"})
    desk = Sender("127.0.0.1", await listening(bridge))

    def nested(depth: int) -> bytes:
        data = osc("/bandsync/play")
        for _ in range(depth):
            data = b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", len(data)) + data
        return data

    future = OscBundleBuilder(time.time() + 7 * 86400)  # next week: must not stall the loop
    future.add_content(OscMessageBuilder("/bandsync/tempo").build())
    many = OscBundleBuilder(0)
    for _ in range(200):
        many.add_content(OscMessageBuilder("/bandsync/nothing").build())
    attacks = [
        b"",
        b"\x00",
        b"garbage that is no OSC at all",
        b"/bandsync/play",  # no terminator, no type tags
        b"/bandsync/tempo\x00,f\x00\x00",  # a float promised, none given
        b"/bandsync/tempo\x00,s\x00\x00" + b"A" * 64,  # an unterminated string
        b"/bandsync/message\x00\x00\x00,s\x00\x00\xff\xfe\x00\x00",  # not UTF-8
        b"/bandsync/tempo\x00,qqqqqqqqqqqqq\x00\x00",  # unknown types (python-osc logs each)
        b"/bandsync/tempo\x00," + b"s" * 2000 + b"\x00" * 3,  # 2,000 arguments
        b"#bundle\x00" + b"\xff" * 12,  # a bundle whose element size lies
        b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xfc",  # size -4: python-osc loops forever
        b"\xff" * (MAX_DATAGRAM + 1),
        b"/bandsync/message\x00\x00\x00,s\x00\x00" + b"x" * 60_000 + b"\x00\x00\x00\x00",
        nested(3),  # a real play, three bundles deep: the one command in this list
        nested(150),
        nested(3000)[:MAX_DATAGRAM],
        future.build().dgram,
        many.build().dgram,
        osc("/bandsync/*", 1.0),  # a pattern: matched exactly, so nothing
        osc("/bandsync/{play,stop}"),
        osc("/bandsync/tempo", "fast"),
        osc("/bandsync/unknown", 1),
        osc("/bandsync/play", "now"),
        osc("/bandsync/play", math.nan),
    ]
    try:
        with caplog.at_level(logging.INFO, logger="bandsync.server.osc"):
            for data in attacks:
                if len(data) <= 65_000:
                    desk.send(data)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await phone.call("sync_request", {"sessionId": "band"}, timeout=2.0)
            assert time.monotonic() - started < 0.5  # the loop was never put to sleep
            await until(lambda: server.service.sessions["band"].timeline.latest.playing)
            await server.actors.host.submit("stop", {})
            version = server.service.sessions["band"].version
            # A flood from the allowed address: refused values and garbage, 10,000 datagrams.
            before = bridge.status()
            started = time.monotonic()
            for i in range(10_000):
                desk.send(osc("/bandsync/tempo", 300.0 + i) if i % 2 else b"\x00garbage")
                if i % 20 == 19:
                    # (asyncio reads one datagram per loop pass; the kernel drops what the
                    # socket's buffer cannot hold: let the loop read them all)
                    await asyncio.sleep(0.002)
            flood_s = time.monotonic() - started
            started = time.monotonic()
            ack = await phone.call("sync_request", {"sessionId": "band"}, timeout=2.0)
            assert ack is not None and time.monotonic() - started < 0.5
            await asyncio.sleep(1.0)  # the refused commands drain at the command pace
        assert server.service.sessions["band"].version == version
        status = bridge.status()
        arrived = status["received"] + status["refused"] - before["received"] - before["refused"]
        assert arrived > 9000
        parsed = status["received"] - before["received"]
        assert parsed <= DATAGRAM_BURST + DATAGRAMS_PER_S * (flood_s + 0.5)  # the rest unread
        assert status["commands"] == 1 and status["rejected"] <= parsed
        records = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert 1 <= len(records) <= 3, [r.getMessage() for r in records]  # once per kind
        # Replies went only to the sender, at the command pace: no amplification.
        assert len(desk.replies()) <= status["rejected"]
        # The desk is heard again once it is quiet.
        await asyncio.sleep(0.5)
        changed = phone.next("tempo_changed")
        desk.cmd("tempo", 101.0)
        assert (await asyncio.wait_for(changed, 3.0))["tempoBpm"] == 101.0
    finally:
        desk.close()


async def test_a_faders_stream_ends_at_its_last_value(start_server: Any) -> None:
    bridge = OscBridge([], listen=("127.0.0.1", 0), allowed=["127.0.0.1"])
    server = await band(start_server, bridge, tempo=None)
    desk = Sender("127.0.0.1", await listening(bridge))
    try:
        values = [100.0 + i * 0.5 for i in range(120)]
        for value in values:
            desk.cmd("tempo", value)
        await until(lambda: server.service.sessions["band"].timeline.latest.tempo_bpm == values[-1])
        assert bridge.status()["commands"] <= 40  # merged, not 120 snapshots to every phone
    finally:
        desk.close()


# -- configuration and lifecycle ----------------------------------------------------------------


async def test_bad_addresses_are_actor_errors(start_server: Any) -> None:
    for kwargs in (
        {"targets": [("127.0.0.1", 0)]},
        {"targets": [("127.0.0.1", 70000)]},
        {"targets": [("", 9000)]},
        {"targets": [], "listen": ("127.0.0.1", -1)},
        {"targets": [], "allowed": ["desk.local"]},
        {"targets": [], "timetag_ahead_ms": -5.0},
    ):
        with pytest.raises(ActorError):
            OscBridge(**kwargs)
    server = await start_server(band_session=True)
    actors = server.actors
    with pytest.raises(ActorError, match=r"no-such-host\.invalid"):
        await actors.start(OscBridge([("no-such-host.invalid", 9000)]))
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        busy = OscBridge([], listen=taken.getsockname(), allowed=["127.0.0.1"])
        with pytest.raises(ActorError, match="cannot listen"):
            await actors.start(busy)
        assert "osc" not in actors
        with pytest.raises(ActorError, match="cannot listen"):
            await actors.start(OscBridge([], listen=("192.0.2.1", 9000)))
    finally:
        taken.close()


async def test_stop_closes_everything_and_is_safe_twice(
    start_server: Any, receiver: Receiver
) -> None:
    bridge = OscBridge([("127.0.0.1", receiver.port)], listen=("127.0.0.1", 0))
    server = await band(start_server, bridge)
    port = await listening(bridge)
    await server.actors.host.submit("play", {})
    await receiver.wait_for("beat", 1)
    threads = {t.name for t in threading.enumerate()}
    assert "osc-sender" in threads
    await server.actors.stop("osc")
    await bridge.stop()
    assert bridge.status()["state"] == "stopped" and bridge.status()["listening"] is None
    assert "osc-sender" not in {t.name for t in threading.enumerate()}
    count = len(receiver.messages)
    await asyncio.sleep(0.4)
    assert len(receiver.messages) == count  # nothing after the stop
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(("127.0.0.1", port))  # the listening port was released
    again.close()


async def test_the_actors_package_imports_no_osc_library() -> None:
    code = (
        "import sys, bandsync_desktop.actors, bandsync_desktop.server.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pythonosc', 'aalink', 'rtmidi')))"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and out.decode().strip() == "[]"
