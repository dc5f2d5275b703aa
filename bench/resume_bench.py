"""Resume-to-beat: how soon a follower page is back on the beat after sleeping or a network cut.

Two ways a phone falls off the beat, each emulated on a real follower page (any engine of
``tests/helpers/engines.py``) joined to a real server on loopback, while a leader plays:

* **asleep** (``visibility``): the page's ``document.visibilityState`` is overridden
  (``Object.defineProperty``) to ``hidden`` and a ``visibilitychange`` dispatched; then the
  page's main thread is held in a busy loop for ``--freeze-s`` (no timer, socket event or
  frame runs: what a backgrounded tab or a locked phone does to it), and the page's clock
  loses 90 % of that time (its ``performance.now`` is wrapped to step back: a phone's
  monotonic clock stops in deep sleep, Linux's ``CLOCK_MONOTONIC`` and iOS's alike). The
  leader changes tempo during the freeze. Then ``visible`` and a second ``visibilitychange``:
  the instant measured from.
* **network cut** (``cut``): the page reaches the server through a proxy (``CutProxy``) that
  closes every connection and refuses new ones for ``--cut-s`` (Wi-Fi gone), then forwards
  again; the leader changes tempo during the cut. Measured from the instant the network
  returns.

**Locked on the beat within 2 ms**, checked in the page every few ms: the page's estimate of
server time (``bandsync.serverNow()``) is within 2 ms of the true server clock, the beat the
page places at that estimate is within 2 ms (in time, at the tempo then) of the server's own
timeline's beat at the true instant, the page is joined and connected, and it is sounding
the beat (``bandsync.lockedIn``: not waiting for a bar line). The lock instant is the first
check from which every check holds for ``HOLD_MS`` (0.5 s); the share of later checks that
miss is reported apart (``missedAfterLockPct``: the engine's own clock noise).

The truth: the server's clock is ``CLOCK_MONOTONIC`` plus a constant read in this process;
the page's unwrapped ``performance.now()`` is mapped to ``CLOCK_MONOTONIC`` by bracketing it
between two readings of ``time.monotonic()`` (the intersection of many brackets; its half-width is
reported). The page records what it shows; the server's timeline after the trial judges it.

Usage: ``.venv/bin/python bench/resume_bench.py [--engine chromium] [--trials 20]
[--freeze-s 3] [--cut-s 3] [--wifi]``; prints p50/p95/max per scenario and writes
``bench/results/resume_bench.json``. ``tests/web/test_resume.py`` runs the same probe.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.clients import Recorder  # noqa: E402

#: "Locked on the beat": clock and beat within this of the server's.
TOLERANCE_MS = 2.0
#: Target: back on the beat within this, p95.
TARGET_MS = 1000.0
#: Locked means holding for this long (a later miss is the engine's clock noise, counted apart).
HOLD_MS = 500.0
SESSION = "jam"
TEMPOS = (120.0, 132.0)

# Run in the page's own world: Playwright's evaluate and WebDriver's execute_script do so;
# Firefox's Marionette scripts run in an Xray sandbox that cannot replace the page's
# functions, so there the probe goes through Marionette's unsandboxed scope (sandbox=None).
# (An inline <script> would do for all, but the page's Content-Security-Policy forbids it.)
PROBE_JS = r"""
(() => {
  if (window.__resume) { return; }
  const realNow = performance.now.bind(performance);
  let lost = 0;
  // the page's clock: the engine's, less what a deep sleep took from it
  performance.now = () => realNow() - lost;
  let visibility = null; // null: as the engine says
  const engineState = Object.getOwnPropertyDescriptor(Document.prototype, 'visibilityState');
  const shown = () => visibility ?? engineState.get.call(document);
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: shown });
  const hidden = () => shown() === 'hidden';
  Object.defineProperty(document, 'hidden', { configurable: true, get: hidden });
  const probe = { realNow, checks: [], resumedAt: null, watching: false };
  // what the page shows now: [its clock unwrapped, its server time, its beat then, joined
  // and connected, sounding the beat]; the truth is worked out afterwards, in Python
  probe.check = () => {
    const real = realNow();
    // one reading of the clock for both (two could straddle a tick of a 1 ms clock)
    const offset = bandsync.offsetMs;
    const estimate = offset === null ? null : real - lost + offset;
    const beat = estimate === null ? null : bandsync.beat(estimate);
    probe.checks.push([real, estimate, beat, bandsync.connected, bandsync.lockedIn,
      bandsync.offsetUncertaintyMs, bandsync.syncSampleCount]);
  };
  probe.watch = (ms) => {
    probe.checks = [];
    const end = realNow() + ms;
    const step = () => {
      probe.check();
      if (realNow() < end) { window.setTimeout(step, 2); } else { probe.watching = false; }
    };
    probe.watching = true;
    step();
    return true;
  };
  probe.sleep = (freezeMs, lostMs, watchMs) => {
    probe.resumedAt = null;
    probe.watching = true;
    window.setTimeout(() => {
      visibility = 'hidden';
      document.dispatchEvent(new Event('visibilitychange'));
      const until = realNow() + freezeMs;
      while (realNow() < until) { /* the main thread is frozen */ }
      lost += lostMs;
      visibility = 'visible';
      probe.resumedAt = realNow();
      document.dispatchEvent(new Event('visibilitychange'));
      probe.watch(watchMs);
    }, 0);
    return true;
  };
  probe.result = () => JSON.stringify({ checks: probe.checks, resumedAt: probe.resumedAt });
  window.__resume = probe;
})();
"""


# -- the network cut -------------------------------------------------------------------------


class CutProxy:
    """A TCP proxy on loopback that can drop every connection and refuse new ones, then
    forward again: the Wi-Fi going away and coming back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut = False
        #: connections opened to the proxy, and those of them refused while cut (each one is
        #: an attempt of the page to get back)
        self.connections = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop(self) -> None:
        """Close every connection; until ``restore()`` new ones are closed at once."""
        self.cut = True
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()  # a reset, not a goodbye: the link is gone
        self._writers.clear()

    def restore(self) -> None:
        self.cut = False

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._writers.add(w)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(dst)
            with contextlib.suppress(Exception):
                dst.close()


# -- the probe -------------------------------------------------------------------------------


@dataclass
class Calibration:
    """``page real perf ms + shift = true server ms``; ``half_width_ms``: its uncertainty."""

    shift: float
    half_width_ms: float


def monotonic_offset_ms(server: Any) -> float:
    """The server's clock minus CLOCK_MONOTONIC (ms), read in this process."""
    best = (float("inf"), 0.0)
    for _ in range(200):
        before = time.monotonic()
        now = server.service.clock.now_ms()
        after = time.monotonic()
        if after - before < best[0]:
            best = (after - before, now - (before + after) * 500.0)
    return best[1]


async def calibrate(page: Any, server: Any, rounds: int = 150) -> Calibration:
    """Map the page's unwrapped performance.now() to the server's clock: each reading lies
    between two host clock readings, so the page clock's origin on the host clock lies in the
    intersection of all those brackets. (Firefox and WebKit round their readings to ~1 ms,
    which can empty it: then the tightest bracket alone.)"""
    server_minus_mono = monotonic_offset_ms(server)
    readings = []
    for _ in range(rounds):
        before = time.monotonic() * 1000.0
        real = await page.js("window.__resume.realNow()")
        after = time.monotonic() * 1000.0
        readings.append((before, float(real), after))
    lo = max(before - real for before, real, _ in readings)
    hi = min(after - real for _, real, after in readings)
    if lo > hi:
        before, real, after = min(readings, key=lambda r: r[2] - r[0])
        lo, hi = before - real, after - real
    return Calibration((lo + hi) / 2 + server_minus_mono, (hi - lo) / 2)


def page_real_of_mono(calibration: Calibration, server: Any, mono_ms: float) -> float:
    return mono_ms + monotonic_offset_ms(server) - calibration.shift


async def run_in_page(page: Any, source: str) -> None:
    """Run the statements ``source`` in the page's own world (see ``PROBE_JS``)."""
    if page.engine == "firefox":
        client = page.browser.client
        await asyncio.to_thread(client.execute_script, source, sandbox=None)
    else:
        await page.js(f"(() => {{ {source} }})() ?? true")


async def install(page: Any) -> None:
    """Put the probe into the page (once)."""
    await run_in_page(page, PROBE_JS)
    assert await page.js("Boolean(window.__resume)") is True, "the probe did not install"


def judge(checks: list[list[Any]], timeline: Any, shift: float) -> list[dict[str, Any]]:
    """Each check against the truth: clock and beat errors (ms) and whether it is locked."""
    out = []
    for real, estimate, beat, connected, locked_in, uncertainty, count in checks:
        truth = real + shift
        clock_err = None if estimate is None else estimate - truth
        beat_err = None
        if beat is not None and timeline.is_playing_at(truth):
            beat_err = (beat - timeline.beat_at(truth)) * 60_000.0 / timeline.tempo_at(truth)
        why = [
            name
            for name, bad in (
                ("clock", clock_err is None or abs(clock_err) > TOLERANCE_MS),
                ("beat", beat_err is None or abs(beat_err) > TOLERANCE_MS),
                ("connected", not connected),
                ("lockedIn", not locked_in),
            )
            if bad
        ]
        out.append(
            {
                "t": real,
                "clock": clock_err,
                "beat": beat_err,
                "ok": not why,
                "why": why,
                "connected": connected,
                "uncertainty": uncertainty,
                "samples": count,
            }
        )
    return out


def lock_time(judged: list[dict[str, Any]], since: float) -> float | None:
    """ms from ``since`` to the first check from which every check holds for ``HOLD_MS``;
    None if there is none in the window."""
    after = [j for j in judged if j["t"] >= since]
    for i, first in enumerate(after):
        if not first["ok"]:
            continue
        held = True
        for later in after[i:]:
            if later["t"] > first["t"] + HOLD_MS:
                break
            if not later["ok"]:
                held = False
                break
        else:
            held = False  # the window ended before HOLD_MS had passed
        if held:
            return max(0.0, first["t"] - since)
    return None


async def change_tempo(leader: Recorder, tempo: float) -> None:
    ack = await leader.call("set_tempo", {"sessionId": SESSION, "tempo": tempo})
    assert ack["ok"] is True, ack


async def wait_until_applied(server: Any, tempo: float, timeout: float = 3.0) -> None:
    """Until the server's timeline runs at ``tempo`` (a change takes effect after its lead)."""
    deadline = time.monotonic() + timeout
    while True:
        timeline = server.service.sessions[SESSION].timeline
        if timeline.tempo_at(server.service.clock.now_ms()) == tempo:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"tempo {tempo} not in force within {timeout} s")
        await asyncio.sleep(0.02)


async def wait_watch_done(page: Any, timeout: float) -> dict[str, Any]:
    await page.wait("window.__resume.resumedAt !== null && !window.__resume.watching", timeout)
    result: dict[str, Any] = json.loads(await page.js("window.__resume.result()"))
    return result


def summarize(judged: list[dict[str, Any]], since: float) -> dict[str, Any]:
    after = [j for j in judged if j["t"] >= since]
    settled = [abs(j["clock"]) for j in after[-20:] if j["clock"] is not None]
    locked = lock_time(judged, since)
    held = [j for j in after if locked is not None and j["t"] >= since + locked]
    return {
        "lockMs": None if locked is None else round(locked, 1),
        # checks after the lock that missed 2 ms (clock noise of the engine, not the resume)
        "missedAfterLockPct": (
            round(100.0 * sum(not j["ok"] for j in held) / len(held), 2) if held else None
        ),
        "checks": len(after),
        # the page's clock error when it woke or the network came back
        "firstClockErrMs": next(
            (round(j["clock"], 3) for j in after if j["clock"] is not None), None
        ),
        "connectedMs": next((round(j["t"] - since, 1) for j in after if j["connected"]), None),
        "firstClockOkMs": next(
            (
                round(j["t"] - since, 1)
                for j in after
                if j["clock"] is not None and abs(j["clock"]) <= TOLERANCE_MS
            ),
            None,
        ),
        "settledClockErrMs": round(max(settled), 3) if settled else None,
        # the last check that did not hold: when, and what failed (clock, beat, ...)
        "lastMiss": next(
            (
                {
                    "atMs": round(j["t"] - since, 1),
                    "why": j["why"],
                    "clockErrMs": None if j["clock"] is None else round(j["clock"], 3),
                    "beatErrMs": None if j["beat"] is None else round(j["beat"], 3),
                    "uncertaintyMs": j["uncertainty"],
                    "samplesSinceResume": j["samples"] - after[0]["samples"],
                }
                for j in reversed(after)
                if not j["ok"]
            ),
            None,
        ),
    }


async def trial_visibility(
    page: Any,
    server: Any,
    leader: Recorder,
    calibration: Calibration,
    tempo: float,
    *,
    freeze_s: float,
    watch_s: float,
) -> dict[str, Any]:
    """One sleep: hidden, frozen, clock stepped, tempo changed meanwhile; then visible."""
    freeze_ms = freeze_s * 1000.0
    await page.js(
        f"window.__resume.sleep({freeze_ms!r}, {0.9 * freeze_ms!r}, {watch_s * 1000.0!r})"
    )
    await asyncio.sleep(min(0.3, freeze_s / 4))
    await change_tempo(leader, tempo)
    await wait_until_applied(server, tempo)
    result = await wait_watch_done(page, freeze_s + watch_s + 10.0)
    timeline = server.service.sessions[SESSION].timeline
    return summarize(judge(result["checks"], timeline, calibration.shift), result["resumedAt"])


async def trial_cut(
    page: Any,
    server: Any,
    proxy: CutProxy,
    leader: Recorder,
    calibration: Calibration,
    tempo: float,
    *,
    cut_s: float,
    watch_s: float,
) -> dict[str, Any]:
    """One network cut: every connection dropped, tempo changed meanwhile; then restored."""
    proxy.drop()
    await page.wait("!bandsync.socketConnected", 5.0)
    await change_tempo(leader, tempo)
    await wait_until_applied(server, tempo)
    await asyncio.sleep(max(0.0, cut_s - 0.2))
    await page.js(f"window.__resume.watch({(watch_s + 0.3) * 1000.0!r})")
    await asyncio.sleep(0.2)
    proxy.restore()
    since = page_real_of_mono(calibration, server, time.monotonic() * 1000.0)
    await page.wait("!window.__resume.watching", watch_s + 10.0)
    result = json.loads(await page.js("window.__resume.result()"))
    timeline = server.service.sessions[SESSION].timeline
    return summarize(judge(result["checks"], timeline, calibration.shift), since)


async def join_page(engine: Any, url: str, timeout: float = 15.0) -> Any:
    page = await engine.open(f"{url}/s/{SESSION}?name=Sleeper")
    await page.wait(
        "bandsync.connected && bandsync.syncSampleCount >= 5 && bandsync.isPlaying"
        " && bandsync.lockedIn",
        timeout,
    )
    await install(page)
    return page


async def leader_of(url: str) -> Recorder:
    leader = Recorder(url, "leader")
    await leader.connect()
    ack = await leader.call(
        "join_session", {"sessionId": SESSION, "displayName": "Lead", "role": "leader"}
    )
    assert ack["ok"] is True, ack
    for event, payload in (("set_tempo", {"tempo": TEMPOS[0]}), ("play", {})):
        ack = await leader.call(event, {"sessionId": SESSION, **payload})
        assert ack["ok"] is True, ack
    return leader


def figures(values: list[float | None]) -> dict[str, Any]:
    locked = sorted(v for v in values if v is not None)
    out: dict[str, Any] = {"n": len(values), "notLocked": len(values) - len(locked)}
    if locked:
        worst = float("inf") if out["notLocked"] else locked[-1]
        ranked = locked + [float("inf")] * out["notLocked"]
        out["p50"] = round(statistics.median(ranked), 1)
        out["p95"] = round(ranked[min(len(ranked) - 1, int(0.95 * len(ranked)))], 1)
        out["max"] = round(worst, 1)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bandsync_desktop.config import Settings
    from bandsync_desktop.server.app import ServerRunner, create_app
    from tests.helpers.engines import BrowserPool, Engine

    server = ServerRunner(create_app(Settings(host="127.0.0.1", port=0)))
    await server.start("127.0.0.1", 0)
    emulator = None
    target_port = server.port
    if args.wifi:
        from wifi_emulator import WifiEmulator  # type: ignore[import-not-found]

        emulator = WifiEmulator("127.0.0.1", server.port, seed=args.seed)
        await emulator.start()
        target_port = emulator.port
    proxy = CutProxy("127.0.0.1", target_port)
    await proxy.start()
    pool = BrowserPool()
    engine = Engine(args.engine, pool)
    leader = await leader_of(server.url)
    results: dict[str, Any] = {"visibility": [], "cut": []}
    try:
        page = await join_page(engine, proxy.url)
        calibration = await calibrate(page, server)
        results["calibrationHalfWidthMs"] = round(calibration.half_width_ms, 3)
        for i in range(args.trials):
            tempo = TEMPOS[(2 * i + 1) % len(TEMPOS)]
            record = await trial_visibility(
                page, server, leader, calibration, tempo, freeze_s=args.freeze_s, watch_s=3.0
            )
            results["visibility"].append(record)
            print("visibility", i, record, flush=True)
            await asyncio.sleep(0.5)
            tempo = TEMPOS[(2 * i + 2) % len(TEMPOS)]
            record = await trial_cut(
                page, server, proxy, leader, calibration, tempo, cut_s=args.cut_s, watch_s=4.0
            )
            results["cut"].append(record)
            print("cut", i, record, flush=True)
            await asyncio.sleep(0.5)
        after = await calibrate(page, server)
        results["calibrationDriftMs"] = round(after.shift - calibration.shift, 3)
    finally:
        await leader.close()
        await engine.close()
        await asyncio.to_thread(pool.close)
        await proxy.stop()
        if emulator is not None:
            await emulator.stop()
        await server.stop()
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description="follower page: resume-to-beat benchmark")
    parser.add_argument("--engine", default="chromium", choices=("chromium", "firefox", "webkit"))
    parser.add_argument("--trials", type=int, default=20, help="trials per scenario")
    parser.add_argument("--freeze-s", type=float, default=3.0, help="how long the page sleeps")
    parser.add_argument("--cut-s", type=float, default=3.0, help="how long the network is cut")
    parser.add_argument("--wifi", action="store_true", help="through bench/wifi_emulator.py too")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "resume_bench.json"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    results = asyncio.run(run(args))
    summary = {
        scenario: figures([r["lockMs"] for r in results[scenario]])
        for scenario in ("visibility", "cut")
    }
    for scenario, figs in summary.items():
        print(
            f"{args.engine} {scenario:10s} resume-to-beat ms: n={figs['n']} p50={figs.get('p50')}"
            f" p95={figs.get('p95')} max={figs.get('max')} not locked={figs['notLocked']}"
            f" (target p95 <= {TARGET_MS:.0f})"
        )
    print(
        f"calibration ±{results['calibrationHalfWidthMs']} ms, drift"
        f" {results['calibrationDriftMs']} ms; load {os.getloadavg()[0]:.2f}"
    )
    out = {
        "engine": args.engine,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "toleranceMs": TOLERANCE_MS,
        "targetMs": TARGET_MS,
        "summary": summary,
        "results": results,
        "host": {"python": platform.python_version(), "load": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    cli()
