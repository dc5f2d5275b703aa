"""Load benchmark: hold thousands of phones, fan ticks out to legacy followers, measure it all.

Starts the headless server in its own process (``load_server.py``; loopback only), so its CPU
time and RSS are measured apart from the clients'. Then:

1. estimates the server clock's offset from this process's monotonic clock with
   ``clock_sync`` (the sample with the smallest round trip), so tick latency is
   ``receive time + offset - serverTimestamp``, both on this host's monotonic clock;
2. sets up the fan-out: ``--sessions`` sessions, each with a leader (a timeline client: no
   ticks) and ``--followers`` legacy followers (no ``timeline`` capability: they get
   ``scroll_tick`` at 10 Hz), and starts playback in every session;
3. ramps the number of held connections in ``--steps``: the extra connections are timeline
   followers (they get snapshots, heartbeats and Engine.IO pings, no ticks) joined to
   sessions of 40;
4. per step, over a ``--window`` of seconds: connections held, failures, ticks delivered vs
   expected, delivery latency p50/p99/max, server CPU % (of one core), server CPU per
   delivered tick, server RSS per held connection, the server's event-loop lag.

Expected ticks are counted from what the server sent, not assumed: the ticker stamps every
session's tick of one step with the same ``serverTimestamp``, so the distinct timestamps seen
are the steps taken, and a gap of more than 1.5 intervals between them is a step the server
skipped (it never bursts to catch up). Each legacy follower should get every step's tick.

Usage (about 2-3 minutes)::

    .venv/bin/python bench/load_bench.py --steps 500,1000,2000,5000
    .venv/bin/python bench/load_bench.py --variant deflate   # measure a measure both ways

Writes ``bench/results/load_bench[-<variant>].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchstats import percentile
from load_client import SioClient, clock_offset, connect, now_ms
from load_server import VARIANTS, raise_fd_limit
from server_process import LoadServerProcess

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TICK_INTERVAL_MS = 100.0
IDLE_SESSION_SIZE = 40


@dataclass
class Step:
    target: int
    held_client_side: int = 0
    held_server_side: int = 0
    failures: int = 0
    connect_seconds: float = 0.0
    window_s: float = 0.0
    ticks_expected: int = 0
    ticks_delivered: int = 0
    ticks_skipped_by_server: int = 0
    delivery_ratio: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    server_cpu_percent: float = 0.0
    server_cpu_us_per_tick: float = 0.0
    server_rss_mb: float = 0.0
    server_rss_kb_per_connection: float = 0.0
    bench_cpu_percent: float = 0.0
    loop_lag_ms: dict[str, Any] = field(default_factory=dict)


def _rounded(value: float | None) -> float:
    return math.nan if value is None else round(value, 2)


class Bench(LoadServerProcess):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host = "127.0.0.1"
        self.port = 0
        self.server: subprocess.Popen[str] | None = None
        self.proc: psutil.Process | None = None
        self.rss_idle = 0
        self.offset_ms = 0.0
        self.sync_rtt_ms = 0.0
        self.leaders: list[SioClient] = []
        self.followers: list[SioClient] = []
        self.idle: list[SioClient] = []
        self.failures = 0
        self.failure_reasons: dict[str, int] = {}
        self.semaphore = asyncio.Semaphore(args.concurrency)

    # -- server process -------------------------------------------------------------------

    def start_server(self) -> None:
        extra = ["--variant", self.args.variant]
        if self.args.gc_log_ms is not None:
            extra += ["--gc-log-ms", str(self.args.gc_log_ms)]
        self.launch_server(extra)
        time.sleep(0.5)
        self.rss_idle = self.proc.memory_info().rss

    # -- clients --------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self.failures += 1
        self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + 1

    async def _join(self, payload: dict[str, Any], *, record_ticks: bool) -> SioClient | None:
        async with self.semaphore:
            try:
                client = await connect(
                    self.host,
                    self.port,
                    offer_deflate=self.args.offer_deflate,
                    record_ticks=record_ticks,
                )
            except (OSError, TimeoutError) as exc:
                self._fail(f"connect: {type(exc).__name__}")
                return None
            try:
                ack = await client.call("join_session", payload, timeout=20)
            except (OSError, TimeoutError) as exc:
                self._fail(f"join: {type(exc).__name__}")
                client.close()
                return None
            if not ack or not ack.get("ok"):
                self._fail(f"join refused: {(ack or {}).get('error', {}).get('code')}")
                client.close()
                return None
            return client

    async def setup_fanout(self) -> None:
        args = self.args

        async def one_session(index: int) -> None:
            session_id = f"fan-{index}"
            leader = await self._join(
                {
                    "sessionId": session_id,
                    "displayName": "Leader",
                    "role": "leader",
                    "capabilities": ["timeline"],
                },
                record_ticks=False,
            )
            if leader is None:
                return
            self.leaders.append(leader)
            joined = await asyncio.gather(
                *(
                    self._join({"sessionId": session_id, "displayName": f"F{k}"}, record_ticks=True)
                    for k in range(args.followers)
                )
            )
            self.followers.extend(c for c in joined if c is not None)
            ack = await leader.call("play", {"sessionId": session_id})
            if not ack.get("ok"):
                self._fail(f"play refused: {ack}")

        await asyncio.gather(*(one_session(i) for i in range(args.sessions)))

    async def add_idle(self, count: int) -> None:
        start = len(self.idle)

        async def one(index: int) -> None:
            payload = {
                "sessionId": f"idle-{index // IDLE_SESSION_SIZE}",
                "displayName": f"P{index}",
                "capabilities": ["timeline"],
            }
            client = await self._join(payload, record_ticks=False)
            if client is not None:
                self.idle.append(client)

        await asyncio.gather(*(one(start + i) for i in range(count)))

    def held(self) -> int:
        return sum(c.is_open for c in (*self.leaders, *self.followers, *self.idle))

    # -- a measured window ----------------------------------------------------------------

    async def measure(self, step: Step) -> None:
        assert self.proc is not None
        me = psutil.Process()
        await asyncio.sleep(self.args.settle)
        for client in self.followers:
            client.ticks.clear()
        spy = None
        if self.args.py_spy and step.target == self.args.steps[-1]:
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(self.proc.pid),
                "--duration",
                str(int(self.args.window)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                self.args.py_spy,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu0 = self.proc.cpu_times()
        bench0 = me.cpu_times()
        t0 = now_ms()
        await asyncio.sleep(self.args.window)
        if spy is not None:
            await spy.wait()
        t1 = now_ms()
        cpu1 = self.proc.cpu_times()
        bench1 = me.cpu_times()
        wall_s = (t1 - t0) / 1000.0
        server_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        bench_cpu = (bench1.user - bench0.user) + (bench1.system - bench0.system)

        # Ticks the server stamped inside the window (less a margin at the end, so a late
        # tick still counts as late rather than missing).
        lo = t0 + self.offset_ms
        hi = t1 + self.offset_ms - self.args.late_margin_ms
        steps_seen: set[float] = set()
        received_in_window = 0
        per_client: list[list[tuple[float, float]]] = []
        for client in self.followers:
            mine = []
            for received, stamp, _ in client.ticks:
                if t0 <= received <= t1:
                    received_in_window += 1
                if lo <= stamp <= hi:
                    mine.append((received, stamp))
                    steps_seen.add(stamp)
            per_client.append(mine)
        ordered_steps = sorted(steps_seen)
        skipped = 0
        for a, b in itertools.pairwise(ordered_steps):
            gap = b - a
            if gap > 1.5 * TICK_INTERVAL_MS:
                skipped += round(gap / TICK_INTERVAL_MS) - 1
        open_followers = [i for i, c in enumerate(self.followers) if c.is_open]
        expected = len(open_followers) * (len(ordered_steps) + skipped)
        delivered = sum(len(per_client[i]) for i in open_followers)
        latencies = sorted(
            received + self.offset_ms - stamp for mine in per_client for received, stamp in mine
        )
        health = await self.health()
        rss = self.proc.memory_info().rss
        held = self.held()
        step.held_client_side = held
        step.held_server_side = int(health["connections"])
        step.failures = self.failures
        step.window_s = round(wall_s, 3)
        step.ticks_expected = expected
        step.ticks_delivered = delivered
        step.ticks_skipped_by_server = skipped * len(open_followers)
        step.delivery_ratio = round(delivered / expected, 6) if expected else 0.0
        step.latency_ms = {
            "p50": _rounded(percentile(latencies, 0.5)),
            "p99": _rounded(percentile(latencies, 0.99)),
            "max": round(latencies[-1], 2) if latencies else float("nan"),
            "mean": round(statistics.fmean(latencies), 2) if latencies else float("nan"),
        }
        step.server_cpu_percent = round(100.0 * server_cpu / wall_s, 1)
        step.server_cpu_us_per_tick = (
            round(server_cpu / received_in_window * 1e6, 1) if received_in_window else 0.0
        )
        step.server_rss_mb = round(rss / 2**20, 1)
        step.server_rss_kb_per_connection = round((rss - self.rss_idle) / 1024 / max(held, 1), 1)
        step.bench_cpu_percent = round(100.0 * bench_cpu / wall_s, 1)
        step.loop_lag_ms = health.get("eventLoopLag", {})

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        deadline = time.monotonic() + args.max_seconds
        self.start_server()
        steps: list[Step] = []
        try:
            probe = await connect(self.host, self.port, offer_deflate=args.offer_deflate)
            self.offset_ms, self.sync_rtt_ms = await clock_offset(probe)
            probe.close()
            started = time.monotonic()
            await self.setup_fanout()
            fanout_s = time.monotonic() - started
            print(
                f"fan-out: {len(self.leaders)} sessions, {len(self.followers)} legacy followers"
                f" in {fanout_s:.1f} s; clock offset {self.offset_ms:.3f} ms"
                f" (rtt {self.sync_rtt_ms:.3f} ms)",
                flush=True,
            )
            print(
                f"{'target':>6} {'held':>6} {'fail':>4} {'ticks':>13} {'ratio':>8}"
                f" {'p50ms':>6} {'p99ms':>6} {'maxms':>6} {'cpu%':>5} {'us/tick':>7}"
                f" {'RSS MB':>7} {'kB/conn':>7} {'bench%':>6}",
                flush=True,
            )
            for target in args.steps:
                if time.monotonic() > deadline:
                    print(f"time budget spent: stopping before {target}", flush=True)
                    break
                step = Step(target)
                started = time.monotonic()
                need = target - self.held()
                if need > 0:
                    await self.add_idle(need)
                step.connect_seconds = round(time.monotonic() - started, 2)
                await self.measure(step)
                steps.append(step)
                print(
                    f"{step.target:>6} {step.held_client_side:>6} {step.failures:>4}"
                    f" {step.ticks_delivered:>6}/{step.ticks_expected:<6}"
                    f" {step.delivery_ratio:>8.4f} {step.latency_ms['p50']:>6}"
                    f" {step.latency_ms['p99']:>6} {step.latency_ms['max']:>6}"
                    f" {step.server_cpu_percent:>5} {step.server_cpu_us_per_tick:>7}"
                    f" {step.server_rss_mb:>7} {step.server_rss_kb_per_connection:>7}"
                    f" {step.bench_cpu_percent:>6}",
                    flush=True,
                )
        finally:
            for client in (*self.leaders, *self.followers, *self.idle):
                client.close()
            await asyncio.sleep(0.2)
            self.stop_server()
        return {
            "benchmark": "load_bench",
            "variant": args.variant,
            "client_offers_deflate": args.offer_deflate,
            "sessions": args.sessions,
            "legacy_followers_per_session": args.followers,
            "tick_hz": 1000.0 / TICK_INTERVAL_MS,
            "window_s": args.window,
            "server_rss_idle_mb": round(self.rss_idle / 2**20, 1),
            "clock_offset_ms": round(self.offset_ms, 3),
            "clock_sync_rtt_ms": round(self.sync_rtt_ms, 3),
            "failure_reasons": self.failure_reasons,
            "steps": [asdict(s) for s in steps],
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_avg_at_end": os.getloadavg(),
                "note": "shared 2-core machine: other engineers' tests ran at the same time",
            },
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="500,1000,2000,5000", help="connections to hold")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--followers", type=int, default=4, help="legacy followers per session")
    parser.add_argument("--window", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--late-margin-ms", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight")
    parser.add_argument("--variant", choices=VARIANTS, default="product")
    parser.add_argument(
        "--no-offer-deflate",
        dest="offer_deflate",
        action="store_false",
        help="clients do not offer permessage-deflate (browsers do)",
    )
    parser.add_argument(
        "--py-spy", metavar="PATH", help="profile the server during the last step (collapsed)"
    )
    parser.add_argument(
        "--gc-log-ms", type=float, help="server prints GC passes longer than this (stderr)"
    )
    parser.add_argument("--max-seconds", type=float, default=600.0, help="time budget")
    parser.add_argument("--out", help="JSON path (default bench/results/load_bench*.json)")
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in str(args.steps).split(",") if s]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit()
    if limit < max(args.steps) + 200:
        print(f"open-files limit {limit} is too low for {max(args.steps)} connections")
        return 2
    result = asyncio.run(Bench(args).run())
    suffix = "" if args.variant == "product" else f"-{args.variant}"
    out = Path(args.out) if args.out else RESULTS / f"load_bench{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
