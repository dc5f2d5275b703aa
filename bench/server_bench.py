"""Server benchmark: join latency, tempo-change propagation, tick drift, server CPU and RSS.

Starts the headless server as a separate process (so its CPU and memory are its own), drives
N sessions x M followers with real socket.io clients on loopback, and prints and writes JSON
(``bench/results/server_bench.json``).

Tick accuracy is measured against the truth, not against the server's own arithmetic: the
benchmark estimates the server clock with ``clock_sync`` exchanges before and after the play
(on loopback the bound is a fraction of a millisecond), notes each tick's arrival on that
clock, and compares the tick's ``positionMs`` with the true elapsed play time at arrival. That
error is delivery latency (including this process's own queueing, many clients in one Python
process) plus any position error. Its floor (the fastest-delivered tick) in the first and the
last two seconds bounds the position error itself; drift is how the median error changes
from the first two seconds to the last two.

Usage::

    .venv/bin/python bench/server_bench.py --sessions 10 --followers 8 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchstats import percentile  # noqa: E402

from bandsync_desktop.core.clocksync import OffsetEstimator, SyncSample  # noqa: E402
from bandsync_desktop.server.net import free_port  # noqa: E402
from tests.helpers.procs import start_headless  # noqa: E402


def now_ms() -> float:
    return time.monotonic() * 1000.0


def start_server(port: int) -> subprocess.Popen[bytes]:
    return start_headless(
        port,
        "--log-level",
        "WARNING",
        env={"BANDSYNC_RATE_LIMIT_BURST": "1000", "BANDSYNC_MAX_MEMBERS": "256"},
        stderr=subprocess.PIPE,
    )


class Follower:
    def __init__(self, url: str, session_id: str, index: int) -> None:
        self.url = url
        self.session_id = session_id
        self.index = index
        self.sio = socketio.AsyncClient(reconnection=False)
        self.ticks: list[tuple[float, dict[str, Any]]] = []
        self.tempo_arrivals: list[float] = []
        self.sio.on("scroll_tick", lambda d: self.ticks.append((now_ms(), d)))
        self.sio.on("tempo_changed", lambda d: self.tempo_arrivals.append(now_ms()))

    async def join(self) -> float:
        await self.sio.connect(self.url, transports=["websocket"])
        t = now_ms()
        ack = await self.sio.call(
            "join_session",
            {"sessionId": self.session_id, "displayName": f"F{self.index}"},
            timeout=10,
        )
        if not ack.get("ok"):
            raise RuntimeError(f"join refused: {ack}")
        return now_ms() - t


async def estimate_server_offset(sio: socketio.AsyncClient, rounds: int = 100) -> OffsetEstimator:
    estimator = OffsetEstimator(window=rounds)
    for _ in range(rounds):
        t0 = now_ms()
        reply = await sio.call("clock_sync", {"t0": t0}, timeout=5)
        estimator.add(SyncSample(t0, reply["t1"], reply["t2"], now_ms()))
        await asyncio.sleep(0.01)
    return estimator


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    proc = start_server(port)
    server = psutil.Process(proc.pid)
    url = f"http://127.0.0.1:{port}"
    leaders: list[socketio.AsyncClient] = []
    followers: list[Follower] = []
    try:
        rss_idle = server.memory_info().rss
        # -- joins ----------------------------------------------------------------------
        join_ms: list[float] = []
        for s in range(args.sessions):
            session_id = f"bench-{s}"
            leader = socketio.AsyncClient(reconnection=False)
            await leader.connect(url, transports=["websocket"])
            await leader.call(
                "join_session", {"sessionId": session_id, "displayName": "L", "role": "leader"}
            )
            leaders.append(leader)
            group = [Follower(url, session_id, i) for i in range(args.followers)]
            join_ms += await asyncio.gather(*(f.join() for f in group))
            followers += group
        rss_joined = server.memory_info().rss
        estimator = await estimate_server_offset(leaders[0])
        offset = estimator.offset(now_ms()) or 0.0
        bound_start = estimator.uncertainty(now_ms())
        # -- tempo propagation ----------------------------------------------------------
        propagation: list[float] = []
        for round_ in range(args.tempo_rounds):
            for s, leader in enumerate(leaders):
                group = followers[s * args.followers : (s + 1) * args.followers]
                before = [len(f.tempo_arrivals) for f in group]
                sent = now_ms()
                await leader.call(
                    "set_tempo", {"sessionId": f"bench-{s}", "tempo": 100 + round_ % 50}
                )
                deadline = time.monotonic() + 5
                while any(len(f.tempo_arrivals) == b for f, b in zip(group, before, strict=True)):
                    if time.monotonic() > deadline:
                        raise RuntimeError("tempo change not delivered")
                    await asyncio.sleep(0.001)
                propagation += [f.tempo_arrivals[-1] - sent for f in group]
        # -- play and ticks -------------------------------------------------------------
        for f in followers:
            f.ticks.clear()
        starts = {}
        for s, leader in enumerate(leaders):
            await leader.call(
                "set_tempo", {"sessionId": f"bench-{s}", "tempo": 120, "quantize": "now"}
            )
            ack = await leader.call("play", {"sessionId": f"bench-{s}"})
            assert ack["ok"], ack
        await asyncio.sleep(0.5)
        for s, leader in enumerate(leaders):
            sync = await leader.call("sync_request", {"sessionId": f"bench-{s}"})
            starts[f"bench-{s}"] = sync["serverTime"] - sync["positionMs"]
        cpu_before = server.cpu_times()
        wall_before = time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu_after = server.cpu_times()
        wall = time.monotonic() - wall_before
        rss_playing = server.memory_info().rss
        for s, leader in enumerate(leaders):
            await leader.call("pause", {"sessionId": f"bench-{s}"})
        # re-estimate: the last ticks are judged on a fresh estimate, not a minute-old one
        estimator_end = await estimate_server_offset(leaders[0])
        offset_end = estimator_end.offset(now_ms()) or 0.0
        bound_end = estimator_end.uncertainty(now_ms())
        # -- analysis -------------------------------------------------------------------
        errors_first: list[float] = []
        errors_last: list[float] = []
        all_errors: list[float] = []
        expected_ticks = 0
        delivered = 0
        window_ms = 2_000.0
        for f in followers:
            start = starts[f.session_id]
            playing = [(arrival, tick) for arrival, tick in f.ticks if tick["positionMs"] > 0]
            if not playing:
                continue
            first_t = playing[0][0]
            last_t = playing[-1][0]
            for arrival, tick in playing:
                # the offset estimated nearer in time is the better one
                shift = offset if arrival - first_t < last_t - arrival else offset_end
                error = (arrival + shift) - start - tick["positionMs"]
                all_errors.append(error)
                if arrival - first_t <= window_ms:
                    errors_first.append(error)
                if last_t - arrival <= window_ms:
                    errors_last.append(error)
            delivered += len(f.ticks)
            expected_ticks += round(args.seconds * 10)
        cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        total_clients = len(followers) + len(leaders)
        result = {
            "bench": "server_bench",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "clients": total_clients,
            "joinLatencyMs": {"p50": percentile(join_ms, 0.5), "p99": percentile(join_ms, 0.99)},
            "tempoPropagationMs": {
                "p50": percentile(propagation, 0.5),
                "p99": percentile(propagation, 0.99),
            },
            "serverClockBoundMs": {"start": bound_start, "end": bound_end},
            "serverClockOffsetChangeMs": offset_end - offset,
            "tickErrorFloorMs": {
                "first2s": min(errors_first) if errors_first else None,
                "last2s": min(errors_last) if errors_last else None,
            },
            "tickErrorAtArrivalMs": {
                "p50": percentile(all_errors, 0.5),
                "p99": percentile(all_errors, 0.99),
                "min": min(all_errors) if all_errors else None,
                "max": max(all_errors) if all_errors else None,
            },
            "tickDriftMs": (
                statistics.median(errors_last) - statistics.median(errors_first)
                if errors_first and errors_last
                else None
            ),
            "ticks": {"delivered": delivered, "expectedApprox": expected_ticks},
            "serverCpuPercent": round(100.0 * cpu_s / wall, 2),
            "serverRssMb": {
                "idle": round(rss_idle / 2**20, 1),
                "joined": round(rss_joined / 2**20, 1),
                "playing": round(rss_playing / 2**20, 1),
            },
            "rssPerConnectionKb": round((rss_joined - rss_idle) / 1024 / total_clients, 1),
        }
        return result
    finally:
        for f in followers:
            if f.sio.connected:
                await f.sio.disconnect()
        for leader in leaders:
            if leader.connected:
                await leader.disconnect()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--followers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tempo-rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/server_bench.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key not in ("params", "machine", "bench"):
            print(f"{key:<{width}}  {value}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
