"""The Ableton Link bridge against a real, independent Link peer in another process.

The peer is this module run as a program (``python -m tests.actors.test_link``): an
``aalink.Link`` of its own that prints JSON lines, its beat sampled at instants it reads from
``time.monotonic()`` (the clock the server's is a constant shift of, so the test maps them
to server time exactly), and takes commands (a tempo, a quantum) on stdin. It knows nothing
of the bridge: what it sees is what Live would see. ``bench/link_bench.py`` uses it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bandsync_desktop.actors.link import LinkBridge, LinkClock, link_clock_reader, link_tempo
from bandsync_desktop.core.clock import MonotonicClock
from bandsync_desktop.core.timeline import MS_PER_MINUTE, Segment
from bandsync_desktop.server.peers import ActorError, ActorHost
from tests.helpers.clients import expect_ok

ROOT = Path(__file__).resolve().parent.parent.parent


# -- the independent peer (a program of its own) ---------------------------------------------


async def _peer_main(quantum: float, period_s: float, tempo: float) -> None:
    import aalink

    loop = asyncio.get_running_loop()
    link = aalink.Link(tempo)
    link.quantum = quantum
    link.start_stop_sync_enabled = True

    def emit(kind: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"kind": kind, "m": time.monotonic(), **fields}) + "\n")
        sys.stdout.flush()

    link.add_tempo_callback(lambda bpm: emit("tempo", tempo=bpm))
    link.add_start_stop_callback(lambda playing: emit("playing", playing=playing))
    link.add_num_peers_callback(lambda peers: emit("peers", peers=peers))
    link.enabled = True

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands() -> None:
        while line := await reader.readline():
            command = json.loads(line)
            if "tempo" in command:
                link.tempo = float(command["tempo"])
            if "quantum" in command:
                link.quantum = float(command["quantum"])
            if "playing" in command:
                link.playing = bool(command["playing"])
            if command.get("quit"):
                return

    emit("ready")
    listener = asyncio.ensure_future(commands())
    rng = random.Random(0)
    while not listener.done():
        before = time.monotonic()
        beat = link.beat
        after = time.monotonic()
        emit(
            "sample",
            at=(before + after) / 2.0,
            width_us=(after - before) * 1e6,
            beat=beat,
            tempo=link.tempo,
            playing=link.playing,
            peers=link.num_peers,
            quantum=link.quantum,
        )
        # jittered, so the samples do not alias with the beat
        await asyncio.wait([listener], timeout=period_s * rng.uniform(0.7, 1.3))
    link.enabled = False


# -- driving it from a test or a benchmark ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerSample:
    """The peer's beat at the server instant ``server_ms``."""

    server_ms: float
    width_us: float  # how long reading the beat took: the instant's uncertainty
    beat: float
    tempo: float
    playing: bool
    peers: int
    quantum: float


def server_offset_ms(server_now_ms: Callable[[], float]) -> float:
    """Server time minus ``time.monotonic()`` (ms): a constant (``core/clock.py``)."""
    best = (float("inf"), 0.0)
    for _ in range(5):
        before = time.monotonic() * 1000.0
        server = server_now_ms()
        after = time.monotonic() * 1000.0
        best = min(best, (after - before, server - (before + after) / 2.0))
    return best[1]


class LinkPeer:
    """The peer program in a subprocess; its samples mapped to server time.

    Args:
        offset_ms: ``server_offset_ms`` of the server the samples are compared with.
        quantum: the peer's quantum (the band's beats per bar, as Live would be set).
        period_s: time between samples.
        tempo: the peer's tempo before it joins a session.
    """

    def __init__(
        self, offset_ms: float, *, quantum: float = 4, period_s: float = 0.01, tempo: float = 97
    ) -> None:
        self.offset_ms = offset_ms
        self.args = ["--quantum", str(quantum), "--period", str(period_s), "--tempo", str(tempo)]
        self.samples: list[PeerSample] = []
        self.tempo_events: list[tuple[float, float]] = []  # (server ms, tempo) as it heard them
        self.playing_events: list[tuple[float, bool]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()

    async def start(self) -> LinkPeer:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.actors.test_link",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 20)
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            data = json.loads(line)
            at = data["m"] * 1000.0 + self.offset_ms
            kind = data["kind"]
            if kind == "sample":
                self.samples.append(
                    PeerSample(
                        data["at"] * 1000.0 + self.offset_ms,
                        data["width_us"],
                        data["beat"],
                        data["tempo"],
                        data["playing"],
                        data["peers"],
                        data["quantum"],
                    )
                )
            elif kind == "tempo":
                self.tempo_events.append((at, data["tempo"]))
            elif kind == "playing":
                self.playing_events.append((at, data["playing"]))
            elif kind == "ready":
                self._ready.set()
            self._changed.set()

    async def send(self, **command: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())
        await self._proc.stdin.drain()

    async def wait_for(
        self, predicate: Callable[[PeerSample], bool], timeout: float = 5.0
    ) -> PeerSample:
        """The first sample from now on for which ``predicate`` holds."""
        start = len(self.samples)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for sample in self.samples[start:]:
                if predicate(sample):
                    return sample
            start = len(self.samples)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                last = self.samples[-1] if self.samples else None
                raise AssertionError(f"the Link peer never got there; last sample {last}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def since(self, server_ms: float) -> list[PeerSample]:
        return [s for s in self.samples if s.server_ms >= server_ms]

    async def close(self) -> None:
        """Ask the peer to leave; kill it if it does not within 5 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                await self.send(quit=True)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._proc = None
        if self._reader is not None:
            await self._reader


class TimelineHistory:
    """Every segment the band's timeline has had, from its publications (a timeline itself
    drops the segments it has left behind)."""

    def __init__(self, host: ActorHost) -> None:
        timeline = host.timeline
        assert timeline is not None
        self.segments: list[Segment] = list(timeline.segments)
        host.subscribe(self._on_publication)

    def _on_publication(self, event: str, payload: Mapping[str, Any]) -> None:
        if event != "snapshot" or not payload.get("segments"):
            return
        fresh = [Segment.from_wire(item) for item in payload["segments"]]
        self.segments = [s for s in self.segments if s.start_ms < fresh[0].start_ms] + fresh

    def segment_at(self, t_ms: float) -> Segment:
        found = self.segments[0]
        for segment in self.segments[1:]:
            if segment.start_ms > t_ms:
                break
            found = segment
        return found

    def phase_error_ms(self, sample: PeerSample, grid: Segment | None = None) -> float | None:
        """The peer's beat minus the band's (modulo the peer's quantum), in ms; ``None``
        while the band is stopped (its grid is then nowhere). With ``grid``: against that
        segment's beats, extrapolated."""
        segment = grid or self.segment_at(sample.server_ms)
        if not segment.playing:
            return None
        band_beat = segment.beat_at(sample.server_ms)
        q = sample.quantum
        beats = (sample.beat - band_beat + q / 2.0) % q - q / 2.0
        tempo_at = getattr(segment, "tempo_at", None)
        tempo = tempo_at(sample.server_ms) if tempo_at is not None else segment.tempo_bpm
        return float(beats * MS_PER_MINUTE / tempo)


def _main() -> None:
    parser = argparse.ArgumentParser(description="an independent Ableton Link peer")
    parser.add_argument("--quantum", type=float, default=4.0)
    parser.add_argument("--period", type=float, default=0.01)
    parser.add_argument("--tempo", type=float, default=97.0)
    args = parser.parse_args()
    asyncio.run(_peer_main(args.quantum, args.period, args.tempo))


# -- the tests --------------------------------------------------------------------------------

pytestmark = pytest.mark.asyncio

#: A sample whose instant the peer could not read within this is not a measurement.
MAX_WIDTH_US = 200.0
#: The tests' bound on the peer's phase error (the benchmark measures the real figure).
TOLERANCE_MS = 1.5
#: How long a change may take to reach the peer: Link sends a peer at most one state message
#: per 50 ms (``UdpMessenger``: ``minBroadcastPeriod``), so a change made just after one
#: waits for the next; on a loaded test machine, some more.
PROPAGATION_MS = 150.0


@dataclass
class Band:
    server: Any
    bridge: LinkBridge
    host: ActorHost
    history: TimelineHistory
    peer: LinkPeer

    def errors(
        self, since_ms: float, until_ms: float = float("inf"), grid: Segment | None = None
    ) -> list[float]:
        """The peer's phase errors while the band played in ``[since_ms, until_ms)`` (or
        against ``grid``'s beats, extrapolated)."""
        found = []
        for sample in self.peer.since(since_ms):
            if sample.server_ms >= until_ms:
                break
            error = self.history.phase_error_ms(sample, grid)
            if error is not None and sample.width_us <= MAX_WIDTH_US:
                found.append(error)
        return found

    async def assert_bridge_switches(self, at_ms: float, old: float, new: float) -> None:
        """The bridge's own Link changes tempo at the band's instant ``at_ms`` (not before,
        and by the time the loop runs anything scheduled after it: the bridge's wake-up for
        ``at_ms`` comes first)."""
        await asyncio.sleep((at_ms - 20 - self.host.now_ms()) / 1000)
        assert self.bridge.status()["tempo"] == pytest.approx(old, abs=0.01)
        await asyncio.sleep((at_ms + 5 - self.host.now_ms()) / 1000)
        assert self.bridge.status()["tempo"] == pytest.approx(new, abs=0.01)

    def assert_switched(self, at_ms: float, old: float, new: float) -> None:
        """The peer went from tempo ``old`` to ``new`` at the band's instant ``at_ms``,
        staying on the band's beat: before it, at the old tempo; once Link has had time to
        tell it, at the new one; in between, it may still extrapolate the old tempo, never
        anything else."""
        rate = abs(new - old) / new  # ms of phase per ms the peer extrapolates the old tempo
        checked = {"before": 0, "between": 0, "after": 0}
        for sample in self.peer.since(at_ms - 500):
            error = self.history.phase_error_ms(sample)
            if error is None or sample.width_us > MAX_WIDTH_US:
                continue
            late = sample.server_ms - at_ms
            tempos: tuple[float, ...]
            if late < 0:
                where, tempos, bound = "before", (old,), TOLERANCE_MS
            elif late < PROPAGATION_MS:
                where, tempos, bound = "between", (old, new), TOLERANCE_MS + late * rate
            else:
                where, tempos, bound = "after", (new,), TOLERANCE_MS
            assert any(sample.tempo == pytest.approx(t, abs=0.01) for t in tempos), (where, sample)
            assert abs(error) <= bound, (where, late, error, sample)
            checked[where] += 1
        assert checked["before"] > 20 and checked["after"] > 20, checked

    async def sample_until(self, server_ms: float) -> PeerSample:
        return await self.peer.wait_for(lambda s: s.server_ms >= server_ms, timeout=10)


@pytest_asyncio.fixture
async def link_band(start_server: Any) -> AsyncIterator[Callable[..., Awaitable[Band]]]:
    """``await link_band(mode)``: a band server with a Link bridge, and a Link peer in
    another process that has joined the bridge's Link session at the band's tempo."""
    peers: list[LinkPeer] = []

    async def make(mode: str, **peer_options: Any) -> Band:
        bridge = LinkBridge(mode)  # type: ignore[arg-type]
        server = await start_server(band_session=True, actors=[bridge])
        host = server.actors.host
        history = TimelineHistory(host)
        tempo = host.timeline.latest.tempo_bpm
        # (at the band's tempo: following, the band would take the peer's if its session won)
        peer = LinkPeer(server_offset_ms(host.now_ms), tempo=tempo, **peer_options)
        peers.append(peer)
        await peer.start()
        await peer.wait_for(lambda s: s.peers >= 1 and abs(s.tempo - tempo) < 0.01)
        await _until(lambda: bridge.status()["peers"] >= 1, timeout=5)
        return Band(server, bridge, host, history, peer)

    yield make
    for peer in peers:
        await peer.close()


def _max_abs(values: list[float]) -> float:
    assert values, "no samples"
    return max(abs(v) for v in values)


@pytest.mark.slow
async def test_lead_a_link_peer_plays_on_the_bands_beat_and_transport(
    link_band: Callable[..., Awaitable[Band]],
) -> None:
    band = await link_band("lead")
    host, peer = band.host, band.peer
    assert band.bridge.status()["peers"] == 1
    assert peer.samples[-1].playing is False
    await host.submit("set_count_in", {"bars": 1})
    session = await host.submit("play", {})
    play = session.timeline.latest
    assert play.anchor_ms - play.start_ms == pytest.approx(2000)  # a bar at 120
    # Link is told at once; its transport starts at the downbeat, after the count-in.
    await peer.wait_for(lambda s: s.playing, timeout=1)
    # Link takes the play's grid before it starts (the band is stopped until then).
    await band.sample_until(play.start_ms)
    assert _max_abs(band.errors(play.start_ms - 100, play.start_ms, grid=play)) <= TOLERANCE_MS
    await band.sample_until(play.anchor_ms + 800)
    # The count-in's beats too fall on Link's beats (and bars: 1 bar, quantum 4).
    counting = band.errors(play.start_ms, play.anchor_ms)
    playing = band.errors(play.anchor_ms)
    assert len(counting) > 50 and len(playing) > 30
    assert _max_abs(counting + playing) <= TOLERANCE_MS, (counting, playing)

    # A tempo change from the console reaches Link at the band's instant, on the same beat.
    session = await host.submit("set_tempo", {"tempo": 150})
    change = session.timeline.latest
    assert change.tempo_bpm == 150 and change.start_ms > host.now_ms()
    await band.assert_bridge_switches(change.start_ms, 120, 150)
    await band.sample_until(change.start_ms + 600)
    band.assert_switched(change.start_ms, 120, 150)

    # Pause stops Link's transport; Link keeps the band's tempo.
    await host.submit("pause", {})
    stopped = await peer.wait_for(lambda s: not s.playing, timeout=1)
    assert stopped.tempo == pytest.approx(150, abs=0.01)
    assert band.bridge.status()["playing"] is False


async def test_lead_puts_a_peers_tempo_back_and_takes_the_bands_meter_and_seeks(
    link_band: Callable[..., Awaitable[Band]],
) -> None:
    band = await link_band("lead")
    host, peer = band.host, band.peer
    session = await host.submit("play", {"countInBars": 0})
    await band.sample_until(session.timeline.latest.start_ms + 300)
    version = host.session.version  # type: ignore[union-attr]

    # Another peer's tempo does not move the band; Link gets the band's back.
    await peer.send(tempo=90)
    await peer.wait_for(lambda s: s.tempo == pytest.approx(90, abs=0.01), timeout=2)
    back = await peer.wait_for(lambda s: s.tempo == pytest.approx(120, abs=0.01), timeout=2)
    assert host.timeline.latest.tempo_bpm == 120  # type: ignore[union-attr]
    assert host.session.version == version  # type: ignore[union-attr]
    # (the tempo and the grid it puts back are two of Link's messages, 50 ms apart)
    await band.sample_until(back.server_ms + PROPAGATION_MS + 200)
    assert _max_abs(band.errors(back.server_ms + PROPAGATION_MS)) <= TOLERANCE_MS

    # A meter change renumbers the band's beats at a bar: Link's quantum and bar follow.
    session = await host.submit("set_meter", {"beatsPerBar": 3})
    meter = session.timeline.latest
    assert band.bridge.status()["quantum"] == 4
    await band.sample_until(meter.start_ms)
    await peer.send(quantum=3)
    await peer.wait_for(lambda s: s.quantum == 3, timeout=2)
    await band.sample_until(host.now_ms() + 400)
    assert band.bridge.status()["quantum"] == 3
    assert _max_abs(band.errors(meter.start_ms + PROPAGATION_MS)) <= TOLERANCE_MS

    # A seek moves the band's beat: Link's grid jumps with it.
    session = await host.submit("seek", {"position": 1234.5})
    seek = session.timeline.latest
    assert seek.beat % 1 != 0  # off the beat grid it was on
    await band.sample_until(seek.start_ms + 500)
    assert _max_abs(band.errors(seek.start_ms + PROPAGATION_MS)) <= TOLERANCE_MS
    assert _max_abs(band.errors(seek.start_ms - 500, seek.start_ms)) <= TOLERANCE_MS


@pytest.mark.slow
async def test_follow_a_peers_tempo_becomes_the_bands_on_the_next_beat(
    link_band: Callable[..., Awaitable[Band]], make_client: Any
) -> None:
    band = await link_band("follow")
    host, peer, bridge = band.host, band.peer, band.bridge
    phone = await make_client("phone", url=band.server.url)
    await expect_ok(phone, "join_session", {"sessionId": "band", "displayName": "Bass"})
    session = await host.submit("play", {"countInBars": 0})
    await band.sample_until(session.timeline.latest.start_ms + 200)

    # Live sets 133: the band takes it (as a set_tempo, quantised to a beat) and tells phones.
    heard = phone.next("tempo_changed")
    await peer.send(tempo=133)
    changed = await asyncio.wait_for(heard, 3)
    assert changed["tempoBpm"] == 133
    change = host.timeline.latest  # type: ignore[union-attr]
    assert change.tempo_bpm == 133 and change.start_ms == changed["effectiveAt"]
    # Once the band switches, Link's grid is the band's again, at the band's new tempo.
    await band.sample_until(change.start_ms + 500)
    assert _max_abs(band.errors(change.start_ms + PROPAGATION_MS)) <= TOLERANCE_MS
    assert peer.samples[-1].tempo == pytest.approx(133, abs=0.01)
    assert bridge.status()["tempo"] == pytest.approx(133, abs=0.01)

    # Out of the band's range: not followed, said so, and Link gets the band's tempo back.
    await peer.send(tempo=300)
    await peer.wait_for(lambda s: s.tempo == pytest.approx(133, abs=0.01), timeout=3)
    assert "300" in bridge.status()["error"]
    assert host.timeline.latest.tempo_bpm == 133  # type: ignore[union-attr]

    # Dragging the tempo (20 steps in 0.3 s) is one or two changes, not twenty.
    first = len(phone.payloads("tempo_changed"))
    for step in range(1, 21):
        await peer.send(tempo=133 + step * 0.5)
        await asyncio.sleep(0.015)
    await _until(lambda: host.timeline.latest.tempo_bpm == 143, timeout=3)  # type: ignore[union-attr]
    await asyncio.sleep(0.3)
    drag = phone.payloads("tempo_changed")[first:]
    assert 1 <= len(drag) <= 2 and drag[-1]["tempoBpm"] == 143, drag
    assert "error" not in bridge.status()

    # The console's own tempos reach Link and do not come back as commands, not even the
    # first of two pending ones (Link hears 100 while the band's latest tempo is 104).
    session = await host.submit("set_tempo", {"tempo": 100})
    first_change = session.timeline.latest
    session = await host.submit("set_tempo", {"tempo": 104, "quantize": "bar"})
    assert session.timeline.latest.start_ms > first_change.start_ms
    await band.assert_bridge_switches(first_change.start_ms, 143, 100)
    await band.sample_until(first_change.start_ms + 100)
    assert peer.samples[-1].tempo == pytest.approx(100, abs=0.01)
    await band.sample_until(session.timeline.latest.start_ms + 500)
    assert peer.samples[-1].tempo == pytest.approx(104, abs=0.01)
    console = phone.payloads("tempo_changed")[first + len(drag) :]
    assert [p["tempoBpm"] for p in console] == [100, 104]
    assert host.timeline.latest.tempo_bpm == 104  # type: ignore[union-attr]

    # The leader's word after a peer's supersedes it, even where it replaces the peer's
    # tempo before the band ever switched to it.
    await peer.send(tempo=110)
    await _until(lambda: host.timeline.latest.tempo_bpm == 110, timeout=2)  # type: ignore[union-attr]
    session = await host.submit("set_tempo", {"tempo": 125})
    leader = session.timeline.latest
    assert all(s.tempo_bpm != 110 or s.start_ms < host.now_ms() for s in session.timeline.segments)
    await band.sample_until(leader.start_ms + PROPAGATION_MS + 300)
    assert peer.samples[-1].tempo == pytest.approx(125, abs=0.01)
    assert _max_abs(band.errors(leader.start_ms + PROPAGATION_MS)) <= TOLERANCE_MS
    assert host.timeline.latest.tempo_bpm == 125  # type: ignore[union-attr]

    # Switched to lead, the bridge no longer lets a peer change the band's tempo.
    bridge.mode = "lead"
    await peer.send(tempo=90)
    await peer.wait_for(lambda s: s.tempo == pytest.approx(90, abs=0.01), timeout=2)
    await peer.wait_for(lambda s: s.tempo == pytest.approx(125, abs=0.01), timeout=2)
    assert host.timeline.latest.tempo_bpm == 125  # type: ignore[union-attr]


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_without_aalink_the_bridge_cannot_start_and_says_why(
    start_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(band_session=True)
    monkeypatch.setitem(sys.modules, "aalink", None)  # as if the extra were not installed
    bridge = LinkBridge("follow")
    with pytest.raises(ActorError, match="'gear' extra"):
        await server.actors.start(bridge)
    assert "link" not in server.actors
    assert bridge.status() == {
        "state": "off",
        "mode": "follow",
        "peers": 0,
        "tempo": None,
        "playing": False,
    }
    await bridge.stop()  # safe again


async def test_stop_leaves_the_link_session_and_is_safe_twice(start_server: Any) -> None:
    bridge = LinkBridge()
    server = await start_server(band_session=True, actors=[bridge])
    assert bridge.status()["state"] == "running"
    assert bridge.status()["tempo"] == pytest.approx(120, abs=0.01)
    await server.actors.stop("link")
    assert bridge.status()["state"] == "off"
    await bridge.stop()
    assert bridge.status()["state"] == "off"
    with pytest.raises(ValueError, match="lead"):
        LinkBridge("solo")  # type: ignore[arg-type]


async def test_link_clock_maps_server_time_to_links_clock() -> None:
    import aalink

    link = aalink.Link(120)
    clock = MonotonicClock()
    mapping = LinkClock(clock.now_ms, link_clock_reader(link))
    for _ in range(20):
        before = mapping.to_link_us(clock.now_ms())
        reading = link.time / timedelta(microseconds=1)
        after = mapping.to_link_us(clock.now_ms())
        # link.time has whole microseconds and costs ~10 us to read
        assert before - 1 <= reading <= after + 1, (before, reading, after)
    if sys.platform == "linux":
        # Link's clock there is CLOCK_MONOTONIC_RAW, not time.monotonic()'s: no constant
        # offset to assume (NTP slews one and not the other).
        raw = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW) / 1000.0
        assert link_clock_reader(link)() == pytest.approx(raw, abs=1000)
    assert mapping.to_server_ms(mapping.to_link_us(12345.0)) == pytest.approx(12345.0, abs=1e-3)


async def test_link_tempo_is_what_links_wire_carries() -> None:
    # Link sends whole microseconds per beat: a peer hears 130 BPM as 130.00013.
    assert 60e6 / link_tempo(130) == pytest.approx(461538, abs=1e-6)
    assert link_tempo(120) == 120
    assert link_tempo(130) == pytest.approx(130.00013, abs=1e-5)
    assert abs(link_tempo(279.99) - 279.99) < 0.001


async def test_follow_leaves_a_playing_link_session_playing_lead_stops_it(
    start_server: Any,
) -> None:
    """Following, joining Link stops nobody's transport; leading, Link plays as the band."""
    peer = LinkPeer(0.0)  # (no samples compared with the band here)
    await peer.start()
    try:
        await peer.send(playing=True)
        await peer.wait_for(lambda s: s.playing)
        for mode, playing in (("follow", True), ("lead", False)):
            bridge = LinkBridge(mode)  # type: ignore[arg-type]
            server = await start_server(band_session=True, actors=[bridge])
            await _until(lambda b=bridge: b.status()["peers"] >= 1, timeout=5)  # type: ignore[misc]
            await asyncio.sleep(0.4)  # (Link's state messages: 50 ms apart at least)
            assert peer.samples[-1].playing is playing, mode
            await server.stop()
    finally:
        await peer.close()


if __name__ == "__main__":
    _main()
