"""A Wi-Fi emulator: an asyncio TCP proxy that delays each direction like a busy Wi-Fi link.

Every chunk read from one side is held for a delay drawn from ``LinkProfile`` before it is
written to the other side. The release time of a chunk is never earlier than that of the chunk
before it in the same direction, so the byte stream keeps its order, as TCP does: a chunk
that draws a long delay holds up the ones behind it (head-of-line blocking, which is what a
retransmission on real Wi-Fi looks like to the application).

The delay is ``base + jitter``: ``base`` uniform in [``base_min_ms``, ``base_max_ms``]
(the air time and the access point's queue on a good day), ``jitter`` log-normal, its
parameters solved so that its p90 and p99 are ``jitter_p90_ms`` and ``jitter_p99_ms``
(defaults 20 ms and 250 ms: the heavy tail of a crowded 2.4 GHz band), capped at
``jitter_cap_ms``. Optionally a direction *stalls* (loss and retransmission, a roaming or
power-save hiccup) at ``stall_rate_per_s`` times a second on average, for a uniform
``stall_min_ms``..``stall_max_ms``: nothing passes until the stall ends.

Run it by hand in front of a real server to try phones against a bad link::

    python bench/wifi_emulator.py --target 127.0.0.1:3001 --listen 0.0.0.0:3101
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import selectors
import socket
import statistics
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

_Z90 = 1.2815515655446004  # standard normal quantiles
_Z99 = 2.3263478740408408


@dataclass(frozen=True)
class LinkProfile:
    """How one direction of the link delays data (all times in ms)."""

    base_min_ms: float = 2.0
    base_max_ms: float = 5.0
    jitter_p90_ms: float = 20.0
    jitter_p99_ms: float = 250.0
    jitter_cap_ms: float = 2000.0
    stall_rate_per_s: float = 0.0
    stall_min_ms: float = 200.0
    stall_max_ms: float = 800.0

    @classmethod
    def none(cls) -> LinkProfile:
        """No added delay at all (the proxy still costs its own hop)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def lognormal(self) -> tuple[float, float] | None:
        """``(mu, sigma)`` of the jitter's log-normal, or ``None`` for no jitter."""
        if self.jitter_p90_ms <= 0 or self.jitter_p99_ms <= 0:
            return None
        if self.jitter_p99_ms <= self.jitter_p90_ms:
            raise ValueError("jitter p99 must be above p90")
        sigma = (math.log(self.jitter_p99_ms) - math.log(self.jitter_p90_ms)) / (_Z99 - _Z90)
        mu = math.log(self.jitter_p90_ms) - _Z90 * sigma
        return mu, sigma

    def draw(self, rng: random.Random) -> float:
        """One chunk's delay in ms (without stalls)."""
        delay = rng.uniform(self.base_min_ms, self.base_max_ms)
        params = self.lognormal()
        if params is not None:
            delay += min(self.jitter_cap_ms, rng.lognormvariate(*params))
        return delay


@dataclass
class DirectionStats:
    """Delays actually applied to one direction (ms, including order holds and stalls)."""

    delays_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # how late each held chunk went out
    chunks: int = 0
    bytes: int = 0
    stalls: int = 0

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "chunks": self.chunks,
            "bytes": self.bytes,
            "stalls": self.stalls,
        }
        if len(self.delays_ms) >= 2:
            q = statistics.quantiles(self.delays_ms, n=100, method="inclusive")
            out.update(
                p50_ms=round(q[49], 2),
                p90_ms=round(q[89], 2),
                p99_ms=round(q[98], 2),
                max_ms=round(max(self.delays_ms), 2),
            )
        if len(self.late_ms) >= 2:
            q = statistics.quantiles(self.late_ms, n=100, method="inclusive")
            out.update(late_p50_ms=round(q[49], 3), late_p99_ms=round(q[98], 3))
        return out


class WifiEmulator:
    """Listens on ``listen_host:listen_port`` and forwards each connection to the target."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        profile: LinkProfile | None = None,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.profile = profile or LinkProfile()
        self.listen = (listen_host, listen_port)
        self.rng = random.Random(seed)
        self.up = DirectionStats()  # client -> server
        self.down = DirectionStats()  # server -> client
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, *self.listen)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stats(self) -> dict[str, object]:
        return {
            "profile": asdict(self.profile),
            "up": self.up.summary(),
            "down": self.down.summary(),
        }

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for sock_writer in (writer, up_writer):
            sock = sock_writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._spawn(self._pipe(reader, up_writer, self.up))
        self._spawn(self._pipe(up_reader, writer, self.down))

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, stats: DirectionStats
    ) -> None:
        queue: asyncio.Queue[tuple[float, float, bytes] | None] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, dst, stats))
        last_release = 0.0
        stalled_until = 0.0
        last_check = time.monotonic()
        profile = self.profile
        try:
            while True:
                data = await src.read(65536)
                now = time.monotonic()
                if not data:
                    break
                if profile.stall_rate_per_s > 0:
                    elapsed = now - last_check
                    if self.rng.random() < 1.0 - math.exp(-profile.stall_rate_per_s * elapsed):
                        stall = self.rng.uniform(profile.stall_min_ms, profile.stall_max_ms)
                        stalled_until = max(stalled_until, now + stall / 1000.0)
                        stats.stalls += 1
                last_check = now
                release = max(now + profile.draw(self.rng) / 1000.0, last_release, stalled_until)
                last_release = release
                queue.put_nowait((now, release, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender

    async def _send(
        self,
        queue: asyncio.Queue[tuple[float, float, bytes] | None],
        dst: asyncio.StreamWriter,
        stats: DirectionStats,
    ) -> None:
        try:
            while (item := await queue.get()) is not None:
                arrived, release, data = item
                wait = release - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    stats.late_ms.append((time.monotonic() - release) * 1000.0)
                dst.write(data)
                await dst.drain()
                stats.chunks += 1
                stats.bytes += len(data)
                stats.delays_ms.append((time.monotonic() - arrived) * 1000.0)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _main(args: argparse.Namespace) -> None:
    profile = LinkProfile(
        base_min_ms=args.base_min,
        base_max_ms=args.base_max,
        jitter_p90_ms=args.p90,
        jitter_p99_ms=args.p99,
        stall_rate_per_s=args.stall_rate,
    )
    target = _host_port(args.target)
    listen = _host_port(args.listen)
    emulator = WifiEmulator(
        *target, profile, listen_host=listen[0], listen_port=listen[1], seed=args.seed
    )
    await emulator.start()
    print(json.dumps({"listening": emulator.port, "target": list(target)}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
        print(json.dumps(emulator.stats()), flush=True)


def precise_loop() -> asyncio.AbstractEventLoop:
    """An event loop that waits in ``select``, whose timeout is in microseconds: held chunks
    went out 0.20 ms late at the median (p99 1.0 ms, idle). asyncio's default loop on Linux
    waits in ``epoll_wait``, whose timeout is whole milliseconds, and rounds every wait up to
    the next one: 0.77 ms (p99 2.3 ms), a jitter the profile does not have, both ways. (A
    proxy has far fewer than ``select``'s 1024 sockets.)"""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:3001", help="server host:port")
    parser.add_argument("--listen", default="127.0.0.1:0", help="proxy host:port")
    parser.add_argument("--base-min", type=float, default=2.0)
    parser.add_argument("--base-max", type=float, default=5.0)
    parser.add_argument("--p90", type=float, default=20.0, help="jitter p90 (ms)")
    parser.add_argument("--p99", type=float, default=250.0, help="jitter p99 (ms)")
    parser.add_argument("--stall-rate", type=float, default=0.0, help="stalls per second")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=precise_loop) as run:
        run.run(_main(args))


if __name__ == "__main__":
    main()
