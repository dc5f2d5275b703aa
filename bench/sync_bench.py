"""Timing benchmark of the follower page: clock-offset error, beat spread, tempo-change instants.

Two phases, each with the same followers:

* ``loopback``: followers talk to the server directly on 127.0.0.1;
* ``wifi``: every follower talks through ``wifi_emulator.py`` (a TCP proxy in its own process
  that delays each direction: base 2-5 ms plus log-normal jitter with p90 20 ms and p99
  250 ms, order kept per direction as TCP does; ``--stall-rate`` adds loss/stall bursts).

Followers: pages running the follower page itself (``/s/<id>?name=``, its own ``sync.js``
and ``app.js``) in headless Chromium, or with ``--engine firefox|webkit`` in Firefox or WebKit
through ``tests/helpers/engines.py`` (one browser process per page), or with ``--engine mixed``
pages of all three in one session; and Python clients running the same algorithm with
``core/clocksync.OffsetEstimator`` (same burst/periodic schedule, each on a local clock shifted
by a random amount so that its offset is not trivial).

The truth: the server runs in its own process (``sync_server.py``) and reports how its clock
relates to the host's ``CLOCK_MONOTONIC`` (``server = monotonic_ms + O``). Python followers
read ``time.monotonic()`` (the same clock), so their error is exact. Chromium's
``performance.now()`` counts ``base::TimeTicks`` (``CLOCK_MONOTONIC`` on Linux) from the page's
time origin; the benchmark finds that origin by bracketing ``performance.now()`` between two
``time.monotonic()`` readings, many times, keeping the tightest bracket (its half-width is
the calibration uncertainty, reported; calibrated before and after each phase to show it does
not drift). Firefox and WebKit count CLOCK_MONOTONIC too, but give whole milliseconds (WebKit
floors, Firefox rounds at a random point in each millisecond): there the origin is the
intersection of what every bracketed reading allows, and the errors are taken against the
clock the page's readings give on average (``origin_from_readings``). Per engine the output
gives offset error and beat spread, and for ``mixed`` the spread across engines.

A follower's *offset error* is its estimate of server time minus the true server time at the
same instant. A follower sounds beat k when its estimate reaches the beat's server time, i.e.
at true time ``T_k - error``; so the *beat spread* at an instant is max - min of the errors
of all followers sampled in the same round (a round reads every follower within a few ms).
The leader (a Python client connected directly, as the console is in-process) changes tempo
a few times while playing; each follower switches when its estimate reaches the change's
server instant S, or when the change reaches it if it came late: the benchmark reports that
true instant minus S per follower.

With ``--calls`` the leader plays a song with sections instead (no tempo changes of its own)
and makes the leader's calls through each phase: jumps at the next bar and at the section's
end, a vamp and its release, segues (the next song, of the same form, from its top at the
next bar or the section's end), an end. For each call the benchmark takes its instant S from the
leader's snapshots (``show.call.atServerTime`` for a jump or an end, where the timeline enters
the section for a vamp) and reports per follower the true instant it switches, as for a tempo
change, minus S; and whether the follower's own timeline puts the intended bar there (the
target's first bar, playing; the end's bar, stopped).

Usage: ``.venv/bin/python bench/sync_bench.py [--engine chromium|firefox|webkit|mixed]
[--pages 3 --python 5 --loopback-s 25 --wifi-s 60] [--calls --call-every-s 4]``
Writes ``bench/results/sync_bench.json`` (other engines: ``sync_bench_<engine>.json``) and,
with ``--plot``, ``docs/timing.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bandsync_desktop.core.clocksync import OffsetEstimator, SyncSample  # noqa: E402
from bandsync_desktop.core.conductor import song_bar_at  # noqa: E402
from bandsync_desktop.core.song import SongMap  # noqa: E402
from bandsync_desktop.core.timeline import Timeline  # noqa: E402
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.helpers.engines import (  # noqa: E402
    ENGINES,
    ChromiumPage,
    FirefoxBrowser,
    Page,
    ThreadedBrowser,
    ThreadedPage,
    WebKitBrowser,
    missing_reason,
)

# The page's schedule (web/app.js): a burst at join, then one exchange every half second.
BURST_AT_JOIN, BURST_GAP_S = 16, 0.050
PERIODIC_EVERY_S, PERIODIC_SAMPLES, PERIODIC_GAP_S = 0.5, 1, 0.0
WINDOW = 32  # samples the estimator keeps (OffsetEstimator's default, as on the page)
SERVER_NICE = -15  # the server's and the emulator's priority (start_process)
SAMPLE_EVERY_S = 0.2
TEMPOS = (120.0, 132.0, 90.0, 144.0, 110.0, 126.0)


def mono_ms() -> float:
    return time.monotonic() * 1000.0


def percentiles(values: list[float]) -> dict[str, float | int]:
    if len(values) < 2:
        return {"n": len(values)}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "max": round(max(values), 3),
    }


def tightest_offset(samples: Sequence[SyncSample], local_now: float) -> float:
    """The previous rule, kept for comparison: the offset of the single sample with the
    tightest bound now. The product intersects the intervals of the newest agreeing samples
    (``core/clocksync.py``), which is never looser."""
    return min(samples, key=lambda s: s.bound_at(local_now)).offset


# -- the truth for a page: its performance.now() against CLOCK_MONOTONIC ---------------------

#: How each engine's ``performance.now()`` steps on a page that is not cross-origin isolated
#: (a plain-HTTP LAN page never is). All three count CLOCK_MONOTONIC on Linux (Chromium's
#: base::TimeTicks, Firefox's TimeStamp, WebKit's MonotonicTime), so one origin per page maps
#: them; only the rounding differs:
#:
#: - ``fine``: Chromium, 5-100 us steps: a reading is the clock (the bracket's width dominates);
#: - ``floor-1ms``: WebKit floors to whole milliseconds: reading ``R`` means ``R <= t < R + 1``;
#: - ``jittered-1ms``: Firefox rounds to whole milliseconds at a random point inside each
#:   millisecond (privacy.resistFingerprinting.reduceTimerPrecision.jitter, on by default):
#:   ``R`` is ``floor(t)`` or ``floor(t) + 1``, so ``R - 1 <= t < R + 1``.
#:
#: (A spin loop in the page shows which: WebKit's ticks come at an even pace, Firefox's at
#: random gaps of 0-2 ms.)
CLOCK_MODELS = {"chromium": "fine", "firefox": "jittered-1ms", "webkit": "floor-1ms"}
#: Readings per calibration; the coarse clocks need more to catch readings near a tick.
CALIBRATION_READINGS = {"chromium": 150, "firefox": 400, "webkit": 400}
#: A reading's interval, [reading + low, reading + high) in the continuous clock, and the mean
#: of (reading - continuous clock) over a millisecond's phases.
MODEL_BOUNDS = {"floor-1ms": (0.0, 1.0, -0.5), "jittered-1ms": (-1.0, 1.0, 0.0)}


def perf_reader(browser: ThreadedBrowser) -> tuple[Callable[[], float], Callable[[], None]]:
    """The quickest way to read the page's ``performance.now()`` through a driver (a shorter
    round trip, a narrower bracket): Marionette in the script sandbox it already has (the page's
    own ``performance`` object, so the page's rounding), WebKitWebDriver over one kept-alive
    HTTP connection instead of Selenium's client. Returns the reader and what closes it."""
    if isinstance(browser, FirefoxBrowser):
        client = browser.client

        def firefox() -> float:
            script = "return window.wrappedJSObject.performance.now();"
            return float(client.execute_script(script, new_sandbox=False))

        return firefox, lambda: None
    if isinstance(browser, WebKitBrowser):
        driver = browser.driver
        url = urllib.parse.urlsplit(driver.command_executor._client_config.remote_server_addr)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
        path = f"/session/{driver.session_id}/execute/sync"
        body = json.dumps({"script": "return performance.now();", "args": []})

        def webkit() -> float:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            return float(json.loads(connection.getresponse().read())["value"])

        return webkit, connection.close
    return lambda: float(browser.evaluate("performance.now()")), lambda: None


def bracket_readings(browser: ThreadedBrowser, rounds: int) -> list[tuple[float, float, float]]:
    """``rounds`` times (monotonic ms before, performance.now(), monotonic ms after), in the
    calling (worker) thread."""
    read, close = perf_reader(browser)
    readings = []
    try:
        for _ in range(rounds):
            before = mono_ms()
            perf = read()
            after = mono_ms()
            readings.append((before, perf, after))
    finally:
        close()
    return readings


def origin_from_readings(readings: list[tuple[float, float, float]], model: str) -> dict[str, Any]:
    """The page's origin (``performance.now() + origin = monotonic ms``) and its uncertainty.

    ``fine``: the tightest bracket's middle, ± its half-width. A coarse clock: every reading
    ``R`` taken at monotonic ``m`` in ``[before, after]`` says ``R + low <= m - origin_c <
    R + high`` for the continuous clock ``origin_c`` counts from; the intersection over all
    readings bounds ``origin_c`` (readings just before and just after a tick make it narrow),
    and the middle ± half of it is taken. The page's timestamps are coarse readings, so its
    clock as its estimator sees it is the continuous one shifted by the rounding's mean
    (``-0.5`` ms for a floor); ``originMs`` includes that shift, so that an error is measured
    against what the page's clock reads on average, not against a clock the page never sees.
    """
    if model == "fine":
        width, mid, perf = min((a - b, (a + b) / 2, r) for b, r, a in readings)
        return {"model": model, "originMs": mid - perf, "halfWidthMs": width / 2}
    low, high, bias = MODEL_BOUNDS[model]
    lo = max(b - r - high for b, r, a in readings)  # origin_c > before - R - high
    hi = min(a - r - low for b, r, a in readings)  # origin_c <= after - R - low
    result: dict[str, Any] = {
        "model": model,
        "readings": len(readings),
        "nonIntegerReadings": sum(abs(r - round(r)) > 1e-6 for _, r, _ in readings),
        "tightestBracketMs": round(min(a - b for b, _, a in readings), 4),
    }
    if lo > hi:  # no origin agrees with every reading: the model is wrong for this engine
        raise RuntimeError(f"clock model {model} contradicts the readings ({lo} > {hi})")
    if result["nonIntegerReadings"] > len(readings) // 20:
        # A finer clock fits the bounds too, but the rounding's mean would be wrong.
        raise RuntimeError(f"clock model {model}: the readings are not whole milliseconds")
    return {
        **result,
        "originMs": (lo + hi) / 2 - bias,
        "halfWidthMs": (hi - lo) / 2,
    }


# -- processes ------------------------------------------------------------------------------


async def start_process(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT)
    )
    # The server and the link emulator before the pages: on a band's LAN the browsers run on
    # the phones, not on the cores the server has (and a link model should not be starved by
    # what it carries). Needs root; without it they share the CPU as before.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, proc.pid, SERVER_NICE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    return proc, line


async def stop_process(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    rest = await asyncio.wait_for(proc.stdout.read(), 20)
    await proc.wait()
    return rest.decode()


# -- the song's form and the leader's calls (--calls) ---------------------------------------

# 8 sections of 2 bars: every neighbour differs in tempo (so each boundary is a change on the
# timeline), three meters, one ramp.
SONG_SECTIONS: tuple[dict[str, Any], ...] = (
    {"name": "Intro", "bars": 2, "tempoBpm": 120},
    {"name": "Verse", "bars": 2, "tempoBpm": 128, "beatsPerBar": 3},
    {"name": "Pre", "bars": 2, "tempoBpm": 150, "beatsPerBar": 7, "beatUnit": 8},
    {"name": "Chorus", "bars": 2, "tempoBpm": 140},
    {"name": "Verse 2", "bars": 2, "tempoBpm": 124, "beatsPerBar": 3},
    {"name": "Bridge", "bars": 2, "tempoBpm": 146, "beatsPerBar": 7, "beatUnit": 8},
    {"name": "Solo", "bars": 2, "tempoBpm": 132, "rampToBpm": 144},
    {"name": "Outro", "bars": 2, "tempoBpm": 136, "beatsPerBar": 3},
)
CALL_CYCLE = ("jump-bar", "vamp-on", "vamp-off", "jump-section", "segue-bar", "segue-section")
JUMP_TARGETS = (2, 0, 4, 1, 3)  # early sections, so that the song never runs out
LANDED_AFTER_MS = 300.0  # a call is over this long after its instant
RESOLVE_TIMEOUT_MS = 12_000.0


def bar_at(timeline: Timeline, t_ms: float) -> int:
    """The song's bar (1-based) at ``t_ms``, as the conductor counts it."""
    return song_bar_at(timeline, t_ms)


@dataclass
class CallRecord:
    """One leader's call and what each follower did with it.

    ``bar`` is the song's bar the follower must be in from ``instant`` on: the target
    section's first bar for a jump (and for a vamp's repeat), the next section's first bar
    for a vamp's release, the call's bar for an end (stopped there).
    """

    kind: str
    sent_ms: float  # true server time when the leader sent it
    bar: int
    section: int
    playing: bool  # the transport plays on from the instant (False for an end)
    show_bar: int | None = None  # show.call.bar: the downbeat it lands on (jump, end)
    at_server: float | None = None  # show.call.atServerTime (jump, end)
    instant: float | None = None  # S: where the leader's timeline switches
    version: int | None = None  # the first snapshot that carries it
    failed: str | None = None
    applied: dict[str, float] = field(default_factory=dict)  # follower -> true - S (ms)
    late: list[str] = field(default_factory=list)
    on_bar: dict[str, bool] = field(default_factory=dict)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each follower read

    def landed(self, server_now: float) -> bool:
        return self.failed is not None or (
            self.instant is not None and server_now > self.instant + LANDED_AFTER_MS
        )


def switch_in(timeline: Timeline, call: CallRecord) -> float | None:
    """The start of the first segment, after the call was sent, where ``timeline`` enters the
    call's bar (playing on, or stopped there as the call says)."""
    segments = timeline.segments
    for i, seg in enumerate(segments):
        if seg.start_ms <= call.sent_ms or seg.playing != call.playing:
            continue
        if bar_at(timeline, seg.start_ms + 1.0) != call.bar:
            continue
        if i > 0 and call.playing and bar_at(timeline, seg.start_ms - 1.0) == call.bar:
            continue  # already in that bar: not the switch
        return seg.start_ms
    return None


class CallProgram:
    """The leader's side: the song, the calls spaced through the phase, and for each call the
    instant and the first snapshot version at which the leader's timeline switches."""

    def __init__(
        self,
        leader: socketio.AsyncClient,
        session: str,
        snapshots: list[dict[str, Any]],
        server_offset: float,
        duration_s: float,
        every_s: float,
    ) -> None:
        self.leader = leader
        self.session = session
        self.snapshots = snapshots
        self.server_offset = server_offset
        self.duration_s = duration_s
        self.every_s = every_s
        self.form = SongMap.from_dict({"sections": list(SONG_SECTIONS)})
        self.calls: list[CallRecord] = []
        self.cycle = 0
        self.targets = 0
        self.vamp: int | None = None
        self.segues = 0
        self.next_at = 0.0
        self.ended = False
        self.scanned: dict[int, int] = {}  # call index -> leader snapshots already scanned

    def server_now(self) -> float:
        return mono_ms() + self.server_offset

    def song(self, number: int) -> dict[str, Any]:
        """The bench's song; a segue goes straight on into another of the same form."""
        title = "Bench form" if number == 0 else f"Bench form {number + 1}"
        return {"title": title, "countInBars": 0, "sections": list(SONG_SECTIONS)}

    def done(self) -> bool:
        return self.ended and all(c.landed(self.server_now()) for c in self.calls)

    async def start(self) -> None:
        await self._send("set_song", {"song": self.song(0)})
        await self._send("play", {})
        self.next_at = time.monotonic() + min(2.0, self.every_s)

    async def _send(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a leader's command; the snapshot that follows it."""
        before = len(self.snapshots)
        ack = await self.leader.call(event, {"sessionId": self.session, **payload}, timeout=10)
        assert ack["ok"], (event, ack)
        for _ in range(400):
            if len(self.snapshots) > before:
                break
            await asyncio.sleep(0.005)
        return self.snapshots[-1]

    async def step(self, phase_start: float) -> None:
        """Send the next call when it is due and the one before it has landed."""
        self.resolve()
        now, server_now = time.monotonic(), self.server_now()
        if self.ended or now < self.next_at:
            return
        if self.calls and not self.calls[-1].landed(server_now):
            return
        timeline = Timeline.from_wire(self.snapshots[-1]["segments"])
        segment = timeline.segment_at(server_now)
        if not segment.playing:
            return  # (stopped: the song ran out; there is nothing to call)
        section = self.form.section_of_bar(max(bar_at(timeline, server_now), 1))
        if now - phase_start >= self.duration_s - 3.0:
            call = (await self._send("end", {"at": "bar"}))["show"]["call"]
            bar = call["bar"]
            self.calls.append(
                CallRecord("end", server_now, bar, self.form.section_of_bar(bar), False)
            )
            self.calls[-1].show_bar = bar
            self.ended = True
            return
        kind = CALL_CYCLE[self.cycle % len(CALL_CYCLE)]
        if kind == "vamp-on" and section >= 6:
            kind = "jump-bar"  # near the end of the song: back to an early section first
        elif kind == "vamp-on":
            end_beat = (self.form.section_start_bar(section + 1) - 1) * segment.beats_per_bar
            if segment.time_of_beat(end_beat) - server_now < 1000.0:
                return  # the section ends too soon for its repeat to be placed: next round
        elif kind == "segue-bar" and bar_at(timeline, server_now) <= 1:
            return  # (from bar 1 the next song's bar 1 follows bar 1: no switch to see)
        if kind == CALL_CYCLE[self.cycle % len(CALL_CYCLE)]:
            self.cycle += 1
        if kind.startswith("jump"):
            target = JUMP_TARGETS[self.targets % len(JUMP_TARGETS)]
            self.targets += 1
            while target in (section, section + 1):  # a jump that changes nothing is no test
                target = (target + 1) % len(JUMP_TARGETS)
            at = "bar" if kind == "jump-bar" else "section"
            call = (await self._send("jump", {"section": target, "at": at}))["show"]["call"]
            assert call["kind"] == "jump" and call["section"] == target, call
            record = CallRecord(kind, server_now, self.form.section_start_bar(target), target, True)
            record.show_bar = call["bar"]
            self.calls.append(record)
            self.vamp = None  # a jump ends the vamp
        elif kind == "vamp-on":
            self.vamp = (await self._send("vamp", {"on": True}))["show"]["vamp"]
            assert self.vamp is not None
            bar = self.form.section_start_bar(self.vamp)
            self.calls.append(CallRecord(kind, server_now, bar, self.vamp, True))
        elif kind.startswith("segue"):  # the next song from its top: its bar 1
            at = "bar" if kind == "segue-bar" else "section"
            self.segues += 1
            await self._send("segue", {"song": self.song(self.segues), "at": at})
            self.calls.append(CallRecord(kind, server_now, 1, 0, True))
            self.vamp = None  # (the next song starts with no vamp)
        elif self.vamp is not None:  # vamp-off: the song goes on to the next section
            await self._send("vamp", {"on": False})
            following = self.vamp + 1
            bar = self.form.section_start_bar(following)
            self.calls.append(CallRecord(kind, server_now, bar, following, True))
            self.vamp = None
        self.next_at = time.monotonic() + self.every_s

    def resolve(self) -> None:
        """Find each call's instant and the first version that carries it, in the leader's
        snapshots; for a jump or an end, its ``atServerTime`` as the show last gave it."""
        for index, call in enumerate(self.calls):
            if call.version is not None or call.failed is not None:
                continue
            start = self.scanned.get(index, 0)
            for snap in self.snapshots[start:]:
                if snap["serverTime"] < call.sent_ms:
                    continue
                coming = (snap.get("show") or {}).get("call")
                if coming and coming.get("bar") == call.show_bar and coming.get("atServerTime"):
                    call.at_server = coming["atServerTime"]
                found = switch_in(Timeline.from_wire(snap["segments"]), call)
                if found is not None:
                    call.instant, call.version = found, snap["version"]
                    break
            self.scanned[index] = len(self.snapshots)
            if call.instant is not None and call.at_server is not None:
                if abs(call.instant - call.at_server) > 1e-3:
                    call.failed = f"timeline switches at {call.instant}, show: {call.at_server}"
            elif call.instant is not None and call.show_bar is not None:
                call.failed = "no atServerTime in the show"
            if call.instant is None and self.server_now() - call.sent_ms > RESOLVE_TIMEOUT_MS:
                call.failed = "the leader's timeline never switched to the call's bar"


# -- followers -------------------------------------------------------------------------------


@dataclass
class Follower:
    name: str
    kind: str
    errors: list[tuple[float, float]] = field(default_factory=list)  # (true ms, error ms)
    bounds: list[float] = field(default_factory=list)  # the follower's own uncertainty (ms)
    rtts: list[float] = field(default_factory=list)  # rtt of its chosen sample (ms)
    applied: list[float] = field(default_factory=list)  # per tempo change: true - S (ms)
    late: int = 0

    def error_near(self, true_ms: float) -> float | None:
        if not self.errors:
            return None
        return min(self.errors, key=lambda e: abs(e[0] - true_ms))[1]


class PyFollower(Follower):
    """A Python follower with the page's algorithm on a shifted local clock."""

    def __init__(self, name: str, server_offset: float, shift_ms: float) -> None:
        super().__init__(name, "python")
        self.server_offset = server_offset
        self.shift = shift_ms
        self.estimator = OffsetEstimator(WINDOW)
        self.raw: list[SyncSample] = []  # every sample taken, to replay other estimators on
        self.errors_tightest: list[float] = []
        self.pending: set[float] = set()
        self.snapshots: list[tuple[float, list[float]]] = []  # (local arrival, starts)
        self.received: list[tuple[float, int, list[dict[str, Any]]]] = []  # (local, version, segs)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("clock_sync", self._on_clock_sync)
        self.sio.on("snapshot", self._on_snapshot)
        self.sio.on("heartbeat", self._on_heartbeat)
        self.task: asyncio.Task[None] | None = None

    def local(self) -> float:
        return mono_ms() + self.shift

    def true_of_local(self, local_ms: float) -> float:
        return local_ms - self.shift + self.server_offset

    async def _on_clock_sync(self, data: dict[str, Any]) -> None:
        t3 = self.local()
        t0 = data.get("t0")
        if t0 in self.pending:
            self.pending.discard(t0)
            sample = SyncSample(t0, data["t1"], data["t2"], t3)
            self.estimator.add(sample)
            self.raw.append(sample)

    async def _on_snapshot(self, data: dict[str, Any]) -> None:
        local = self.local()
        segments = data.get("segments", [])
        self.snapshots.append((local, [s["startServerTime"] for s in segments]))
        self.received.append((local, data.get("version", -1), segments))

    async def _on_heartbeat(self, data: dict[str, Any]) -> None:
        await self.sio.emit("heartbeat_response", {"timestamp": data.get("timestamp")})

    async def start(self, url: str, session: str) -> None:
        await self.sio.connect(url, transports=["websocket"])
        ack = await self.sio.call(
            "join_session",
            {
                "sessionId": session,
                "displayName": self.name,
                "clientId": self.name,
                "capabilities": ["timeline"],
            },
            timeout=20,
        )
        assert ack["ok"], ack
        self.task = asyncio.create_task(self._sync_loop())

    async def _burst(self, count: int, gap: float) -> None:
        for _ in range(count):
            t0 = self.local()
            self.pending.add(t0)
            await self.sio.emit("clock_sync", {"t0": t0})
            await asyncio.sleep(gap)

    async def _sync_loop(self) -> None:
        await self._burst(BURST_AT_JOIN, BURST_GAP_S)
        while True:
            await asyncio.sleep(PERIODIC_EVERY_S)
            await self._burst(PERIODIC_SAMPLES, PERIODIC_GAP_S)

    def sample(self) -> None:
        local = self.local()
        offset = self.estimator.offset(local)
        if offset is not None:
            truth = self.true_of_local(local)
            self.errors.append((truth, local + offset - truth))
            self.bounds.append(self.estimator.uncertainty(local) or 0.0)
            self.rtts.append(self.estimator.rtt(local) or 0.0)
            # the previous rule on the same window of samples
            tightest = tightest_offset(self.raw[-WINDOW:], local)
            self.errors_tightest.append(local + tightest - truth)

    def arrival_true(self, start: float) -> float | None:
        for local, starts in self.snapshots:
            if start in starts:
                return self.true_of_local(local)
        return None

    def call_seen(self, call: CallRecord) -> tuple[float | None, dict[str, Any]]:
        """When the call reached this follower (true ms: the first snapshot from the call's
        version on with its segment) and what its own timeline reads at the instant."""
        assert call.instant is not None and call.version is not None
        for local, version, segments in self.received:
            if version < call.version:
                continue
            if not any(s["startServerTime"] == call.instant for s in segments):
                continue
            timeline = Timeline.from_wire(segments)
            at = call.instant + 1.0
            return self.true_of_local(local), {
                "version": version,
                "bar": bar_at(timeline, at),
                "playing": timeline.segment_at(at).playing,
                "barBefore": (  # the bar just before, while the timeline still holds it
                    bar_at(timeline, call.instant - 1.0)
                    if timeline.segments[0].start_ms < call.instant
                    else None
                ),
            }
        return None, {}

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.sio.disconnect()


class PageFollower(Follower):
    """The follower page in one engine, driven through ``tests/helpers/engines.py``."""

    def __init__(self, name: str, server_offset: float, driver: Page) -> None:
        super().__init__(name, "page")
        self.server_offset = server_offset
        self.driver = driver
        self.engine = driver.engine
        self.origin: float | None = None  # perf.now() + origin = monotonic ms (see calibrate)
        self.calibrations: list[dict[str, Any]] = []
        self.readings: list[tuple[float, float, float]] = []  # (before, perf, after) ms
        self.log: dict[int, tuple[float, list[float]]] = {}  # version -> (perf ms, starts)
        self.checks: dict[int, dict[str, Any]] = {}  # call index -> what the page read

    async def js(self, expression: str) -> Any:
        return await self.driver.js(expression)

    async def calibrate(self, rounds: int | None = None) -> None:
        """Bracket ``performance.now()`` readings between ``time.monotonic()`` readings and
        derive the page's origin with its engine's clock model (``origin_from_readings``)."""
        rounds = rounds or CALIBRATION_READINGS[self.engine]
        if isinstance(self.driver, ChromiumPage):
            page = self.driver.page
            readings = []
            for _ in range(rounds):
                before = mono_ms()
                perf = await page.evaluate("() => performance.now()")
                after = mono_ms()
                readings.append((before, perf, after))
        else:
            assert isinstance(self.driver, ThreadedPage)
            # The whole loop runs in the worker thread: no event-loop hop inside a bracket.
            readings = await asyncio.to_thread(bracket_readings, self.driver.browser, rounds)
        calibration = origin_from_readings(readings, CLOCK_MODELS[self.engine])
        self.calibrations.append(calibration)
        self.readings.extend(readings)
        self.origin = calibration["originMs"] if self.origin is None else self.origin

    def settle_origin(self) -> None:
        """A coarse clock: take the origin from the before and after readings together (one
        clock, no drift between them: a narrower intersection) and move the errors sampled
        with the first calibration's origin onto it. Chromium keeps its first calibration,
        as it always has."""
        if CLOCK_MODELS[self.engine] == "fine" or self.origin is None:
            return
        combined = origin_from_readings(self.readings, CLOCK_MODELS[self.engine])
        shift = combined["originMs"] - self.origin
        self.errors = [(truth + shift, error - shift) for truth, error in self.errors]
        self.origin = combined["originMs"]
        self.calibrations.append({**combined, "combined": True})

    def used_calibration(self) -> dict[str, Any]:
        """The calibration whose origin the errors are measured with."""
        combined = [c for c in self.calibrations if c.get("combined")]
        return combined[-1] if combined else self.calibrations[0]

    def true_of_perf(self, perf: float) -> float:
        assert self.origin is not None
        return perf + self.origin + self.server_offset

    async def sample(self) -> None:
        perf, offset, bound, rtt = await self.js(
            "(() => { const p = performance.now(); return [p, bandsync.offsetMs,"
            " bandsync.offsetUncertaintyMs, bandsync.rttMs]; })()"
        )
        if offset is not None:
            truth = self.true_of_perf(perf)
            self.errors.append((truth, perf + offset - truth))
            self.bounds.append(bound)
            self.rtts.append(rtt)

    async def arrival_true(self, start: float) -> float | None:
        log = await self.js("bandsync.timelineLog()")
        for entry in log:
            if start in entry["starts"]:
                return self.true_of_perf(entry["receivedPerfMs"])
        return None

    async def watch(self, calls: list[CallRecord]) -> None:
        """Keep the page's timeline log (it holds 32 entries) and, for each call the page's
        timeline has caught up with, read its bar and transport at the call's instant."""
        wanted = [
            [i, c.instant, c.version]
            for i, c in enumerate(calls)
            if c.version is not None and c.instant is not None and i not in self.checks
        ]
        result = await self.js(
            """((wanted) => {
                const version = bandsync.version;
                const segments = bandsync.segments();
                const checks = wanted.filter(([, s, v]) => version !== null && version >= v)
                    .map(([i, s]) => {
                        const at = s + 1;
                        let seg = null;
                        for (const x of segments) { if (x.start <= at) { seg = x; } }
                        const bb = bandsync.barBeat(at);
                        return [i, { version, bar: bb ? bb.bar : null,
                            playing: seg ? seg.playing : null,
                            barBefore: segments.length && segments[0].start < s
                                ? bandsync.barBeat(s - 1).bar : null,
                            hasStart: segments.some((x) => x.start === s) }];
                    });
                return { log: bandsync.timelineLog(), checks };
            })("""
            + json.dumps(wanted)
            + ")"
        )
        for entry in result["log"]:
            self.log.setdefault(entry["version"], (entry["receivedPerfMs"], entry["starts"]))
        for index, seen in result["checks"]:
            if seen["hasStart"]:
                self.checks[index] = seen

    def call_seen(self, index: int, call: CallRecord) -> tuple[float | None, dict[str, Any]]:
        """As ``PyFollower.call_seen``, from the page's log and its reading in ``watch``."""
        assert call.instant is not None and call.version is not None
        seen = self.checks.get(index, {})
        for version in sorted(self.log):
            perf, starts = self.log[version]
            if version >= call.version and call.instant in starts:
                return self.true_of_perf(perf), seen
        return None, seen


# -- one phase -------------------------------------------------------------------------------


class PagePool:
    """Follower pages of each engine. Chromium: one Playwright browser, a fresh context per
    page. Firefox and WebKit: one browser process (and its Xvfb/PulseAudio) per page, started
    on first use and reused by the next phase (a page per window, always in the foreground,
    as a phone shows it)."""

    def __init__(self, playwright: Any) -> None:
        self.playwright = playwright
        self.chromium: Any = None
        self.threaded: dict[str, list[ThreadedBrowser]] = {"firefox": [], "webkit": []}
        self.in_use: set[int] = set()
        self.versions: dict[str, str] = {}

    async def open(self, engine: str, url: str) -> Page:
        driver: Page
        if engine == "chromium":
            if self.chromium is None:
                self.chromium = await self.playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                self.versions["chromium"] = self.chromium.version
            context = await self.chromium.new_context()
            page = await context.new_page()
            await page.goto(url, timeout=30_000)
            return ChromiumPage(context, page)
        free = [b for b in self.threaded[engine] if id(b) not in self.in_use]
        if free:
            browser = free[0]
        else:
            factory = {"firefox": FirefoxBrowser, "webkit": WebKitBrowser}[engine]
            browser = await asyncio.to_thread(factory)
            self.threaded[engine].append(browser)
            self.versions.setdefault(engine, browser_version(browser))
        self.in_use.add(id(browser))
        driver = ThreadedPage(browser)
        await driver.goto(url)
        return driver

    async def release(self, driver: Page) -> None:
        await driver.close()
        if isinstance(driver, ThreadedPage):
            self.in_use.discard(id(driver.browser))

    async def close(self) -> None:
        if self.chromium is not None:
            await self.chromium.close()
        for browsers in self.threaded.values():
            for browser in browsers:
                await asyncio.to_thread(browser.close)


def browser_version(browser: ThreadedBrowser) -> str:
    with contextlib.suppress(Exception):
        if isinstance(browser, FirefoxBrowser):
            return str(browser.client.session_capabilities["browserVersion"])
        if isinstance(browser, WebKitBrowser):
            return str(browser.driver.capabilities["browserVersion"])
    return "unknown"


def page_engines(engine: str) -> tuple[str, ...]:
    return ENGINES if engine == "mixed" else (engine,)


def page_name(engine: str, index: int) -> str:
    # Chromium's pages keep the names the earlier Chromium-only runs (and docs) use.
    return f"page{index}" if engine == "chromium" else f"{engine}{index}"


async def run_phase(
    name: str,
    pool: PagePool,
    server_url: str,
    follower_url: str,
    server_offset: float,
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[str, Any]:
    session = f"bench-{name}"
    leader = socketio.AsyncClient(reconnection=False)
    leader_snapshots: list[dict[str, Any]] = []
    leader.on("snapshot", leader_snapshots.append)
    await leader.connect(server_url, transports=["websocket"])
    ack = await leader.call(
        "join_session", {"sessionId": session, "displayName": "Leader", "role": "leader"}
    )
    assert ack["ok"] and ack["role"] == "leader", ack

    followers: list[Follower] = []
    pys = [PyFollower(f"py{i}", server_offset, rng.uniform(-5e6, 5e6)) for i in range(args.python)]
    await asyncio.gather(*(p.start(follower_url, session) for p in pys))
    followers.extend(pys)
    pages: list[PageFollower] = []
    for engine in page_engines(args.engine):
        for i in range(args.pages):
            title = page_name(engine, i)
            driver = await pool.open(engine, f"{follower_url}/s/{session}?name={title}")
            pages.append(PageFollower(title, server_offset, driver))
    for p in pages:
        await p.driver.wait("bandsync.connected && bandsync.syncSampleCount >= 5", timeout=30)
        await p.calibrate()
    followers.extend(pages)

    duration: float = args.loopback_s if name == "loopback" else args.wifi_s
    program: CallProgram | None = None
    if args.calls:
        program = CallProgram(
            leader, session, leader_snapshots, server_offset, duration, args.call_every_s
        )
        await program.start()
    else:
        await leader.call("set_tempo", {"sessionId": session, "tempo": TEMPOS[0]})
        await leader.call("play", {"sessionId": session})

    round_index: list[list[int]] = []  # per round: each follower's latest error (index)
    changes: list[float] = []
    change_every = duration / (len(TEMPOS))
    start = time.monotonic()
    next_change = start + change_every
    tempo_index = 1

    def going() -> bool:
        elapsed = time.monotonic() - start
        if program is not None and not program.done():  # let the last call land
            return elapsed < duration + 15.0
        return elapsed < duration

    while going():
        # Pages of different browsers are read at once (each driver call takes a few ms);
        # an error does not depend on the instant it is read, only on the page's estimate.
        await asyncio.gather(*(p.sample() for p in pages))
        for py in pys:
            py.sample()
        if all(f.errors for f in followers):
            round_index.append([len(f.errors) - 1 for f in followers])
        if program is not None:
            await program.step(start)
            await asyncio.gather(*(p.watch(program.calls) for p in pages))
        elif time.monotonic() >= next_change and tempo_index < len(TEMPOS):
            before = len(leader_snapshots)
            tempo = TEMPOS[tempo_index]
            await leader.call("set_tempo", {"sessionId": session, "tempo": tempo})
            for _ in range(100):
                if len(leader_snapshots) > before:
                    break
                await asyncio.sleep(0.01)
            segments = leader_snapshots[-1]["segments"]
            changes.append(segments[-1]["startServerTime"])
            tempo_index += 1
            next_change += change_every
        await asyncio.sleep(SAMPLE_EVERY_S)
    await asyncio.sleep(1.0)  # let late changes arrive
    for p in pages:
        await p.calibrate()
        p.settle_origin()
    # Per round (a coarse page's errors are final only now): the errors and their spread.
    round_table = [
        {f.name: f.errors[i][1] for f, i in zip(followers, index, strict=True)}
        for index in round_index
    ]
    spreads = [
        (followers[0].errors[index[0]][0], max(r.values()) - min(r.values()))
        for index, r in zip(round_index, round_table, strict=True)
    ]
    calls: dict[str, Any] | None = None
    if program is not None:
        program.resolve()
        for p in pages:
            await p.watch(program.calls)
        calls = call_figures(program, followers)

    for s_change in changes:
        for f in followers:
            arrival = (
                await f.arrival_true(s_change)
                if isinstance(f, PageFollower)
                else f.arrival_true(s_change)  # type: ignore[attr-defined]
            )
            error = f.error_near(s_change)
            if arrival is None or error is None:
                f.late += 1
                continue
            applied = max(s_change - error, arrival)
            if arrival > s_change - error:
                f.late += 1
            f.applied.append(applied - s_change)

    for py in pys:
        await py.stop()
    for p in pages:
        await pool.release(p.driver)
    await leader.disconnect()

    per_follower = {}
    for f in followers:
        abs_errors = [abs(e) for _, e in f.errors]
        entry: dict[str, Any] = {
            "kind": f.kind,
            "absErrorMs": percentiles(abs_errors),
            "meanErrorMs": round(statistics.fmean(e for _, e in f.errors), 3) if f.errors else None,
            "tempoChangeAppliedMs": [round(a, 3) for a in f.applied],
            "tempoChangesLate": f.late,
            "ownBoundMs": percentiles(f.bounds),
            "chosenRttMs": percentiles(f.rtts),
            "withinOwnBound": round(
                sum(
                    abs(e) <= b + calibration_allowance(f)
                    for (_, e), b in zip(f.errors, f.bounds, strict=True)
                )
                / max(1, len(f.errors)),
                4,
            ),
        }
        if isinstance(f, PageFollower):
            entry["calibration"] = f.calibrations
        if isinstance(f, PyFollower):
            # The true offset is known here, so each sample's one-way delays are too.
            entry["trueOffsetMs"] = f.server_offset - f.shift
            entry["samples"] = [[s.t0, s.t1, s.t2, s.t3] for s in f.raw]
        per_follower[f.name] = entry
    rounds = min((len(p.errors) for p in pys), default=0)
    experiment = {
        "note": "Python followers only, same samples: the product's rule (intersection of "
        "the newest agreeing sample intervals) vs. the previous tightest-sample rule",
        "intersectAbsErrorMs": percentiles([abs(e) for p in pys for _, e in p.errors]),
        "tightestAbsErrorMs": percentiles([abs(e) for p in pys for e in p.errors_tightest]),
        "intersectSpreadMs": percentiles(
            [
                max(p.errors[i][1] for p in pys) - min(p.errors[i][1] for p in pys)
                for i in range(rounds)
            ]
        ),
        "tightestSpreadMs": percentiles(
            [
                max(p.errors_tightest[i] for p in pys) - min(p.errors_tightest[i] for p in pys)
                for i in range(min((len(p.errors_tightest) for p in pys), default=0))
            ]
        ),
    }
    all_abs = [abs(e) for f in followers for _, e in f.errors]
    applied_all = [a for f in followers for a in f.applied]
    extra: dict[str, Any] = {} if calls is None else {"calls": calls}
    extra["engines"] = engine_figures(pages, pys, round_table)
    if len(extra["engines"]) > 1:
        extra["acrossEngines"] = across_engines(pages, round_table)
    return {
        **extra,
        "experiment": experiment,
        "followers": per_follower,
        "allAbsErrorMs": percentiles(all_abs),
        "pageAbsErrorMs": percentiles(
            [abs(e) for f in followers if f.kind == "page" for _, e in f.errors]
        ),
        "pythonAbsErrorMs": percentiles(
            [abs(e) for f in followers if f.kind == "python" for _, e in f.errors]
        ),
        "beatSpreadMs": percentiles([s for _, s in spreads]),
        "tempoChanges": len(changes),
        "tempoChangeAppliedMs": percentiles([abs(a) for a in applied_all]),
        "tempoChangeSpreadMs": [
            round(
                max(f.applied[i] for f in followers if len(f.applied) > i)
                - min(f.applied[i] for f in followers if len(f.applied) > i),
                3,
            )
            for i in range(len(changes))
            if any(len(f.applied) > i for f in followers)
        ],
        "series": {
            "errors": {f.name: [round(e, 4) for _, e in f.errors] for f in followers},
            "spread": [[round((t - spreads[0][0]) / 1000, 3), round(s, 4)] for t, s in spreads],
        },
    }


def calibration_allowance(f: Follower) -> float:
    """The slack allowed on a follower's own bound: 0.2 ms (as before), or for a page on a
    coarse clock the calibration's half-width, if wider."""
    if not isinstance(f, PageFollower) or CLOCK_MODELS[f.engine] == "fine":
        return 0.2
    return max(0.2, float(f.used_calibration()["halfWidthMs"]))


def round_spreads(rounds: list[dict[str, float]], names: list[str]) -> list[float]:
    return [max(r[n] for n in names) - min(r[n] for n in names) for r in rounds]


def engine_figures(
    pages: list[PageFollower], pys: list[PyFollower], rounds: list[dict[str, float]]
) -> dict[str, Any]:
    """Per engine: its pages' |offset error|, and the beat spread across its pages and the
    Python followers in each round (with one engine, the phase's ``beatSpreadMs``)."""
    figures: dict[str, Any] = {}
    for engine in dict.fromkeys(p.engine for p in pages):
        own = [p for p in pages if p.engine == engine]
        names = [p.name for p in own]
        used = [p.used_calibration()["halfWidthMs"] for p in own if p.calibrations]
        drift = []
        for p in own:
            separate = [c for c in p.calibrations if not c.get("combined")]
            if len(separate) > 1:
                drift.append(abs(separate[-1]["originMs"] - separate[0]["originMs"]))
        figures[engine] = {
            "pages": names,
            "clockModel": CLOCK_MODELS[engine],
            "absErrorMs": percentiles([abs(e) for p in own for _, e in p.errors]),
            "meanErrorMs": round(statistics.fmean(e for p in own for _, e in p.errors), 3)
            if any(p.errors for p in own)
            else None,
            "beatSpreadMs": percentiles(round_spreads(rounds, names + [p.name for p in pys])),
            "pageSpreadMs": percentiles(round_spreads(rounds, names)) if len(own) > 1 else {},
            "calibrationHalfWidthMs": {  # of the origins the errors are measured with
                "max": round(max(used), 3),
                "p50": round(statistics.median(used), 3),
            },
            "calibrationDriftMs": round(max(drift), 3) if drift else None,
        }
    return figures


def across_engines(pages: list[PageFollower], rounds: list[dict[str, float]]) -> dict[str, Any]:
    """A mixed session: the beat spread across the pages of every engine in each round, and
    between the engines' mean errors (what separates the engines, not their pages)."""
    engines = list(dict.fromkeys(p.engine for p in pages))
    by_engine = {e: [p.name for p in pages if p.engine == e] for e in engines}
    means = [
        [statistics.fmean(r[n] for n in names) for names in by_engine.values()] for r in rounds
    ]
    return {
        "engines": engines,
        "pageBeatSpreadMs": percentiles(round_spreads(rounds, [p.name for p in pages])),
        "engineMeanSpreadMs": percentiles([max(m) - min(m) for m in means]),
        "calibrationHalfWidthMs": round(max(p.used_calibration()["halfWidthMs"] for p in pages), 3),
    }


def call_figures(program: CallProgram, followers: list[Follower]) -> dict[str, Any]:
    """Per call and follower: the true instant it switches (its estimate of server time
    reaching the call's instant S, or the call's snapshot arriving, if later) minus S, and
    whether its own timeline puts the intended bar (and transport) there."""
    per_call = []
    spreads: list[float] = []
    applied_all: list[float] = []
    on_bar_calls = 0
    for index, call in enumerate(program.calls):
        if call.instant is not None and call.failed is None:
            s_call = call.instant
            for f in followers:
                if isinstance(f, PageFollower):
                    arrival, seen = f.call_seen(index, call)
                else:
                    assert isinstance(f, PyFollower)
                    arrival, seen = f.call_seen(call)
                error = f.error_near(s_call)
                call.seen[f.name] = seen
                call.on_bar[f.name] = (
                    seen.get("bar") == call.bar and seen.get("playing") == call.playing
                )
                if arrival is None or error is None:
                    call.late.append(f.name)
                    continue
                if arrival > s_call - error:
                    call.late.append(f.name)
                call.applied[f.name] = max(s_call - error, arrival) - s_call
        applied = list(call.applied.values())
        spread = max(applied) - min(applied) if len(applied) == len(followers) else None
        all_on_bar = (
            call.failed is None and len(call.on_bar) == len(followers) and all(call.on_bar.values())
        )
        on_bar_calls += all_on_bar
        if spread is not None:
            spreads.append(spread)
        applied_all.extend(applied)
        per_call.append(
            {
                "kind": call.kind,
                "bar": call.bar,
                "section": call.section,
                "sectionName": program.form.sections[call.section].name,
                "landsOnBar": call.show_bar,
                "instant": call.instant,
                "atServerTime": call.at_server,
                "leadMs": None if call.instant is None else round(call.instant - call.sent_ms, 1),
                "version": call.version,
                "failed": call.failed,
                "spreadMs": None if spread is None else round(spread, 3),
                "appliedMs": {k: round(v, 3) for k, v in call.applied.items()},
                "late": call.late,
                "onIntendedBar": all_on_bar,
                "onBar": call.on_bar,
                "seen": call.seen,
            }
        )

    def summary(values: list[float]) -> dict[str, float | int]:
        p = percentiles(values)
        return {k: p[k] for k in ("n", "p50", "p95", "max") if k in p}

    return {
        "calls": per_call,
        "n": len(per_call),
        "onIntendedBar": on_bar_calls,
        "spreadMs": summary(spreads),
        "absAppliedMs": summary([abs(a) for a in applied_all]),
        "late": sum(len(c.late) for c in program.calls),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"loopback": "tab:green", "wifi": "tab:orange"}
    for phase, data in results["phases"].items():
        for name, errors in data["series"]["errors"].items():
            values = sorted(abs(e) for e in errors)
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            style = "--" if name.startswith("py") else "-"  # pages of any engine: solid
            axes[0].plot(values, ys, style, color=colors[phase], alpha=0.7, linewidth=1)
        spread = data["series"]["spread"]
        axes[1].plot(
            [t for t, _ in spread],
            [v for _, v in spread],
            color=colors[phase],
            label=f"{phase} (p95 {data['beatSpreadMs'].get('p95', float('nan')):.2f} ms)",
        )
    for phase, color in colors.items():
        axes[0].plot([], [], color=color, label=phase)
    axes[0].legend(loc="upper left")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("|clock-offset error| (ms, log)")
    axes[0].set_ylabel("fraction of samples")
    axes[0].set_title("Offset error CDF per follower (solid: page, dashed: Python)")
    axes[0].axvline(1.0, color="tab:green", linestyle=":", linewidth=1)  # loopback target
    axes[0].axvline(2.0, color="tab:orange", linestyle=":", linewidth=1)
    axes[0].grid(True, which="both", alpha=0.3)
    axes[1].set_xlabel("server time since the phase's first round (s)")
    axes[1].set_ylabel("beat spread across followers (ms)")
    axes[1].set_title("Beat-time spread (max - min error in a round)")
    axes[1].axhline(3.0, color="tab:red", linestyle=":", linewidth=1, label="3 ms target")
    axes[1].legend()
    axes[1].grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    rng = random.Random(args.seed)
    server, ready = await start_process("bench/sync_server.py", "--lead-ms", str(args.lead_ms))
    info = json.loads(ready.split(" ", 1)[1])
    server_url = f"http://127.0.0.1:{info['port']}"
    server_offset = info["clockOffsetMs"]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared 2-core machine; other engineers ran tests at the same time",
        },
        "settings": vars(args),
        "engine": args.engine,
        "loadAverageAtStart": list(os.getloadavg()),
        "serverClockBracketMs": info["bracketMs"],
        "phases": {},
    }
    emulator = None
    try:
        async with async_playwright() as pw:
            pool = PagePool(pw)
            try:
                if args.loopback_s > 0:
                    results["phases"]["loopback"] = await run_phase(
                        "loopback", pool, server_url, server_url, server_offset, args, rng
                    )
                    report("loopback", results["phases"]["loopback"])
                if args.wifi_s > 0:
                    emulator, line = await start_process(
                        "bench/wifi_emulator.py",
                        "--target",
                        f"127.0.0.1:{info['port']}",
                        "--p90",
                        str(args.p90),
                        "--p99",
                        str(args.p99),
                        "--stall-rate",
                        str(args.stall_rate),
                        "--seed",
                        str(args.seed),
                    )
                    proxy_url = f"http://127.0.0.1:{json.loads(line)['listening']}"
                    results["phases"]["wifi"] = await run_phase(
                        "wifi", pool, server_url, proxy_url, server_offset, args, rng
                    )
                    rest = await stop_process(emulator)
                    emulator = None
                    results["phases"]["wifi"]["emulator"] = json.loads(
                        rest.strip().splitlines()[-1]
                    )
                    report("wifi", results["phases"]["wifi"])
            finally:
                if "chromium" in pool.versions:
                    results["chromium"] = pool.versions["chromium"]
                results["browsers"] = dict(pool.versions)
                await pool.close()
    finally:
        if emulator is not None:
            await stop_process(emulator)
        await stop_process(server)
    return results


def report(phase: str, data: dict[str, Any]) -> None:
    print(f"\n== {phase} ==")
    print(
        f"{'follower':10} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  tempo-change (ms)"
    )
    for name, f in data["followers"].items():
        e = f["absErrorMs"]
        applied = ", ".join(f"{a:+.2f}" for a in f["tempoChangeAppliedMs"])
        print(
            f"{name:10} {e.get('n', 0):>5} {e.get('p50', 0):>8.3f} {e.get('p95', 0):>8.3f} "
            f"{e.get('p99', 0):>8.3f} {e.get('max', 0):>8.3f}  [{applied}] "
            f"late={f['tempoChangesLate']} rtt={f['chosenRttMs'].get('p50')} "
            f"within-bound={f['withinOwnBound']}"
        )
    for key in ("allAbsErrorMs", "pageAbsErrorMs", "pythonAbsErrorMs", "beatSpreadMs"):
        print(f"{key:18} {data[key]}")
    print(
        f"{'engine':9} {'|offset error| p50':>18} {'p95':>6} {'p99':>6}   "
        f"{'beat spread p50':>15} {'p95':>6}   calibration ± (max)  drift"
    )
    for engine, e in data["engines"].items():
        err, spread = e["absErrorMs"], e["beatSpreadMs"]
        print(
            f"{engine:9} {err.get('p50', float('nan')):>18.3f} {err.get('p95', float('nan')):>6.3f}"
            f" {err.get('p99', float('nan')):>6.3f}   {spread.get('p50', float('nan')):>15.3f}"
            f" {spread.get('p95', float('nan')):>6.3f}   {e['clockModel']} "
            f"±{e['calibrationHalfWidthMs']['max']:.3f}  {e['calibrationDriftMs']}"
        )
    if "acrossEngines" in data:
        across = data["acrossEngines"]
        print(f"across engines, all pages: beat spread {across['pageBeatSpreadMs']}")
        print(f"across engines, engine means: spread {across['engineMeanSpreadMs']}")
    spread = data["tempoChangeSpreadMs"]
    print(f"tempo changes: {data['tempoChanges']}, spread per change (ms): {spread}")
    print("experiment:", json.dumps(data["experiment"]))
    if "calls" in data:
        calls = data["calls"]
        print(f"{'call':13} {'bar':>4} {'section':10} {'lead':>7} {'spread':>7}  switch - S (ms)")
        for c in calls["calls"]:
            applied = ", ".join(f"{a:+.2f}" for a in c["appliedMs"].values())
            spread = "-" if c["spreadMs"] is None else f"{c['spreadMs']:.3f}"
            lead = "-" if c["leadMs"] is None else f"{c['leadMs']:.0f}"
            print(
                f"{c['kind']:13} {c['bar']:>4} {c['sectionName']:10} {lead:>7} {spread:>7}  "
                f"[{applied}] late={len(c['late'])} on-bar={c['onIntendedBar']}"
                + (f" FAILED: {c['failed']}" if c["failed"] else "")
            )
        print(
            f"calls: {calls['n']}, on the intended bar on every follower: "
            f"{calls['onIntendedBar']}/{calls['n']}, late (follower x call): {calls['late']}"
        )
        print(f"call spread across followers (ms): {calls['spreadMs']}")
        print(f"|switch - S| per follower and call (ms): {calls['absAppliedMs']}")
    if "emulator" in data:
        print("emulator up:", data["emulator"]["up"])
        print("emulator down:", data["emulator"]["down"])


def per_engine_summary(results: dict[str, Any]) -> dict[str, Any]:
    """Phase -> engine -> the headline figures (ms), and the spread across engines (mixed)."""
    keep = ("p50", "p95", "p99")
    out: dict[str, Any] = {}
    for phase, data in results["phases"].items():
        rows: dict[str, Any] = {}
        for engine, e in data["engines"].items():
            rows[engine] = {
                "offsetErrorMs": {k: e["absErrorMs"].get(k) for k in keep},
                "beatSpreadMs": {k: e["beatSpreadMs"].get(k) for k in keep[:2]},
                "calibrationHalfWidthMs": e["calibrationHalfWidthMs"]["max"],
            }
        if "acrossEngines" in data:
            rows["acrossEngines"] = {
                "beatSpreadMs": {
                    k: data["acrossEngines"]["pageBeatSpreadMs"].get(k) for k in keep[:2]
                },
                "engineMeanSpreadMs": {
                    k: data["acrossEngines"]["engineMeanSpreadMs"].get(k) for k in keep[:2]
                },
            }
        out[phase] = rows
    return out


def print_summary(results: dict[str, Any]) -> None:
    print(
        f"\n== per engine ({results['engine']}; {results['runSeconds']} s; load average "
        f"{results['loadAverageAtStart'][0]:.2f} at start, "
        f"{results['loadAverage']['end'][0]:.2f} at end) =="
    )
    print("phase     engine         offset error p50/p95/p99   beat spread p50/p95   calib ±")
    for phase, rows in results["perEngine"].items():
        for engine, row in rows.items():
            if engine == "acrossEngines":
                b, m = row["beatSpreadMs"], row["engineMeanSpreadMs"]
                print(
                    f"{phase:9} {'across':14} {'':26} {b['p50']}/{b['p95']}"
                    f"   (engine means {m['p50']}/{m['p95']})"
                )
                continue
            o, b = row["offsetErrorMs"], row["beatSpreadMs"]
            print(
                f"{phase:9} {engine:14} {o['p50']}/{o['p95']}/{o['p99']:<14} "
                f"{b['p50']}/{b['p95']:<14} {row['calibrationHalfWidthMs']}"
            )


def cli() -> None:
    parser = argparse.ArgumentParser(description="follower-page timing benchmark")
    parser.add_argument(
        "--engine",
        choices=(*ENGINES, "mixed"),
        default="chromium",
        help="the pages' browser engine; mixed: pages of all three in one session",
    )
    parser.add_argument(
        "--pages", type=int, default=None, help="pages per engine (3; mixed: 2 per engine)"
    )
    parser.add_argument("--python", type=int, default=5, help="Python followers")
    parser.add_argument("--loopback-s", type=float, default=25.0)
    parser.add_argument("--wifi-s", type=float, default=60.0)
    parser.add_argument("--p90", type=float, default=20.0, help="emulator jitter p90 (ms)")
    parser.add_argument("--p99", type=float, default=250.0, help="emulator jitter p99 (ms)")
    parser.add_argument("--stall-rate", type=float, default=0.0, help="emulator stalls per s")
    parser.add_argument("--lead-ms", type=float, default=200.0, help="server's change lead")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="play a song with sections and make jump, vamp and end calls (no tempo changes)",
    )
    parser.add_argument("--call-every-s", type=float, default=4.0, help="time between calls")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results (bench/results/sync_bench.json; other engines sync_bench_<engine>.json)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG plot here")
    args = parser.parse_args()
    if args.pages is None:
        args.pages = 2 if args.engine == "mixed" else 3
    if args.out is None:
        suffix = "" if args.engine == "chromium" else f"_{args.engine}"
        args.out = ROOT / "bench" / "results" / f"sync_bench{suffix}.json"
    for engine in page_engines(args.engine) if args.pages > 0 else ():
        reason = missing_reason(engine)
        if reason is not None:
            parser.error(f"{engine}: {reason}")
    started = time.monotonic()
    results = asyncio.run(main(args))
    results["runSeconds"] = round(time.monotonic() - started, 1)
    results["loadAverage"] = {"end": list(os.getloadavg())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results["perEngine"] = per_engine_summary(results)
    args.out.write_text(json.dumps(results, indent=1))
    print_summary(results)
    print(f"\nwrote {args.out}")
    if args.plot is not None:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    cli()
