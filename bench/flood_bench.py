"""Flood benchmark: what event floods cost a playing band (issue 11, finding 4).

Starts the headless server as a subprocess (its CPU and RSS its own), then a band of four:
a leader changing tempo every 200 ms and three legacy followers receiving ``scroll_tick``.
Four phases: quiet; one flooding websocket; sixteen flooding websockets (each from its own
loopback address, 127.0.0.2 and up); quiet again. A flooder speaks Engine.IO by hand and
writes ``latency_probe`` frames in bulk, as fast as its socket takes them; when the server
cuts it off it reconnects at once and floods again, for the whole phase. Per phase it prints
the leader's ``set_tempo`` ack p50/p99/max, the longest gap between two ticks at a follower,
``/health``'s event-loop lag (its window is the last 60 s: cumulative here) and the server's
RSS at the end of the phase (and its peak during the phase); and for the attackers, frames
written, connections opened and ``RATE_LIMITED`` errors received.

Usage::

    .venv/bin/python bench/flood_bench.py                # 5 s quiet, 10 s per flood phase
    .venv/bin/python bench/flood_bench.py --seconds 5 --quiet-seconds 3
    .venv/bin/python bench/flood_bench.py --unguarded    # the frame meter off (before)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchstats import percentile  # noqa: E402

from bandsync_desktop.server.net import free_port  # noqa: E402
from tests.helpers.procs import start_headless  # noqa: E402

SESSION = "band"
PROBE = b'42["latency_probe",{"timestamp":1}]'
FRAME = struct.pack("!BB", 0x81, 0x80 | len(PROBE)) + b"\0\0\0\0" + PROBE  # masked, key 0
CHUNK = FRAME * 500


@dataclass
class Attack:
    """What the flooders did in one phase."""

    frames: int = 0
    connections: int = 0
    rate_limited: int = 0
    refused: int = 0  # connections the server would not open (429 while cooling down)


@dataclass
class Phase:
    name: str
    acks_ms: list[float] = field(default_factory=list)
    tick_gap_ms: float = 0.0
    lag: dict[str, Any] = field(default_factory=dict)
    rss_mb: float = 0.0
    rss_peak_mb: float = 0.0
    attack: Attack = field(default_factory=Attack)


def now_ms() -> float:
    return time.monotonic() * 1000.0


def start_server(port: int, unguarded: bool) -> subprocess.Popen[bytes]:
    env = {}
    if unguarded:
        env = {
            "BANDSYNC_FRAME_RATE_FACTOR": "0",
            "BANDSYNC_MEMBERSHIP_RATE_PER_S": "1000000",
            "BANDSYNC_MEMBERSHIP_BURST": "1000000",
        }
    return start_headless(port, "--log-level", "ERROR", env=env)


async def flood(port: int, local: str, stop: float, attack: Attack) -> None:
    """One attacker: a raw websocket from ``local`` flooding until ``stop`` (monotonic),
    reconnecting whenever the server hangs up."""
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0)), 5
            )
        except (OSError, TimeoutError):
            attack.refused += 1
            await asyncio.sleep(0.05)
            continue
        receiving: asyncio.Task[None] | None = None
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if not head.startswith(b"HTTP/1.1 101"):
                attack.refused += 1
                await asyncio.sleep(0.05)
                continue
            attack.connections += 1
            writer.write(struct.pack("!BB", 0x81, 0x82) + b"\0\0\0\0" + b"40")  # Socket.IO connect
            receiving = asyncio.ensure_future(count_errors(reader, attack))
            while time.monotonic() < stop and not receiving.done():
                writer.write(CHUNK)
                await writer.drain()
                attack.frames += 500
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            if receiving is not None:
                receiving.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def count_errors(reader: asyncio.StreamReader, attack: Attack) -> None:
    """Read the server's frames until it hangs up, counting ``error RATE_LIMITED``."""
    with contextlib.suppress(asyncio.IncompleteReadError, OSError):
        while True:
            first, second = await reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await reader.readexactly(8))
            data = await reader.readexactly(n)
            if first & 0x0F == 0x8:
                return
            if data.startswith(b'42["error"') and b"RATE_LIMITED" in data:
                attack.rate_limited += 1


class Band:
    """A leader (timeline client) and three legacy followers, playing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.leader = socketio.AsyncClient(reconnection=False)
        self.followers = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
        self.ticks: list[list[float]] = [[] for _ in self.followers]

    async def start(self) -> None:
        await self.leader.connect(self.url, transports=["websocket"])
        ack = await self.leader.call(
            "join_session",
            {"sessionId": SESSION, "role": "leader", "capabilities": ["timeline"]},
        )
        assert ack["ok"], ack
        for i, follower in enumerate(self.followers):
            follower.on("scroll_tick", lambda _d, i=i: self.ticks[i].append(now_ms()))
            await follower.connect(self.url, transports=["websocket"])
            assert (await follower.call("join_session", {"sessionId": SESSION}))["ok"]
        assert (await self.leader.call("play", {"sessionId": SESSION}))["ok"]

    async def change_tempo(self, stop: float, acks: list[float]) -> None:
        tempo = 100
        while time.monotonic() < stop:
            tempo = 100 + (tempo + 7) % 60
            sent = now_ms()
            try:
                ack = await self.leader.call(
                    "set_tempo", {"sessionId": SESSION, "tempo": tempo}, timeout=30
                )
                assert ack["ok"], ack
                acks.append(now_ms() - sent)
            except socketio.exceptions.TimeoutError:
                acks.append(30_000.0)
            await asyncio.sleep(max(0.0, 0.2 - (now_ms() - sent) / 1000))

    def longest_gap(self, since: float, until: float) -> float:
        gaps = [0.0]
        for times in self.ticks:
            window = [t for t in times if since <= t <= until]
            gaps += [b - a for a, b in itertools.pairwise(window)]
        return max(gaps)

    async def stop(self) -> None:
        for client in (self.leader, *self.followers):
            with contextlib.suppress(Exception):
                await client.disconnect()


async def health(port: int) -> dict[str, Any]:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"http://127.0.0.1:{port}/health") as response,
        ):
            data: dict[str, Any] = await response.json()
            return dict(data.get("eventLoopLag") or {})
    except (aiohttp.ClientError, TimeoutError):
        return {"p50Ms": "timeout", "p99Ms": "timeout", "maxMs": "timeout"}


async def run_phase(
    band: Band, port: int, server: psutil.Process, phase: Phase, seconds: float, flooders: int
) -> None:
    started = now_ms()
    stop = time.monotonic() + seconds
    peak = [server.memory_info().rss]

    async def sample_rss() -> None:
        while time.monotonic() < stop:
            peak.append(server.memory_info().rss)
            await asyncio.sleep(0.5)

    jobs = [band.change_tempo(stop, phase.acks_ms), sample_rss()]
    jobs += [flood(port, f"127.0.0.{2 + i}", stop, phase.attack) for i in range(flooders)]
    await asyncio.gather(*jobs)
    phase.tick_gap_ms = band.longest_gap(started + 300, now_ms())
    phase.lag = await health(port)
    phase.rss_mb = server.memory_info().rss / 2**20
    phase.rss_peak_mb = max(peak) / 2**20


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"flood_bench: band of 4 (leader set_tempo every 200 ms), {args.seconds:g} s per "
        f"flood phase, {'UNGUARDED (frame meter off)' if args.unguarded else 'product'}"
    )
    print(
        f"{'phase':<12}{'ack p50':>9}{'ack p99':>9}{'ack max':>9}{'tick gap':>10}"
        f"{'lag p99':>9}{'lag max':>9}{'RSS':>8}{'peak':>8}"
        f"{'frames':>10}{'conns':>7}{'refused':>8}{'errors':>8}"
    )
    for p in phases:
        a = p.attack
        print(
            f"{p.name:<12}{fmt(percentile(p.acks_ms, 0.5)):>9}{fmt(percentile(p.acks_ms, 0.99)):>9}"
            f"{fmt(max(p.acks_ms) if p.acks_ms else None):>9}{p.tick_gap_ms:>10.1f}"
            f"{p.lag.get('p99Ms')!s:>9}{p.lag.get('maxMs')!s:>9}"
            f"{p.rss_mb:>8.1f}{p.rss_peak_mb:>8.1f}"
            f"{a.frames:>10}{a.connections:>7}{a.refused:>8}{a.rate_limited:>8}"
        )
    print("(ms; RSS in MB at the end of the phase and its peak; lag from /health, last 60 s)")


async def main(args: argparse.Namespace) -> list[Phase]:
    port = free_port()
    proc = start_server(port, args.unguarded)
    server = psutil.Process(proc.pid)
    band = Band(f"http://127.0.0.1:{port}")
    phases = [
        Phase("quiet"),
        Phase("1 flooder"),
        Phase("16 flooders"),
        Phase("after"),
    ]
    try:
        await band.start()
        await asyncio.sleep(1.0)
        await run_phase(band, port, server, phases[0], args.quiet_seconds, 0)
        await run_phase(band, port, server, phases[1], args.seconds, 1)
        await run_phase(band, port, server, phases[2], args.seconds, 16)
        await run_phase(band, port, server, phases[3], args.quiet_seconds, 0)
    finally:
        await band.stop()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return phases


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per flood phase")
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    parser.add_argument("--unguarded", action="store_true", help="frame meter off (before)")
    arguments = parser.parse_args()
    if arguments.seconds > 60 or arguments.quiet_seconds > 60:
        parser.error("keep it bounded: at most 60 s a phase")
    report(asyncio.run(main(arguments)), arguments)
