"""The server under test for the load benchmarks: the product's app, headless, in its own process.

Run by ``load_bench.py`` and ``soak.py`` as a subprocess so that its CPU time and RSS are
measured apart from the clients'. Prints ``READY <port>`` once it listens; on ``SIGUSR1`` it
prints the objects the garbage collector tracks, by type (what a full collection walks); on
``SIGUSR2``, with ``PYTHONTRACEMALLOC=1``, the Python heap grown since the first ``SIGUSR2``.
``--variant`` switches one efficiency measure off again, to measure it both ways:

* ``product``: the server exactly as shipped;
* ``deflate``: the websocket accepts permessage-deflate when a client offers it (as
  python-engineio's stock aiohttp driver does);
* ``engineio-socket``: python-engineio's own socket class (a queue and writer task per
  socket, a task per message read, a ping task per socket) instead of ours
  (``server/engine.py``), websockets still without permessage-deflate; the fan-out still
  encodes once per room and hands the packet to each socket's queue;
* ``socketio-ticks``: ticks go through ``AsyncServer.emit`` to the tick room (python-socketio's
  generic path: one task per recipient) instead of the product's fan-out
  (``server/fanout.py``);
* ``stock``: python-socketio and python-engineio as they come (their socket, their aiohttp
  driver accepting permessage-deflate, ticks through ``AsyncServer.emit``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import resource
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bandsync_desktop import log
from bandsync_desktop.config import Settings
from bandsync_desktop.server.app import ServerRunner, create_app

VARIANTS = ("product", "deflate", "engineio-socket", "socketio-ticks", "stock")


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def apply_variant(app: object, variant: str) -> None:
    """Undo one measure on a built app (benchmark only: reaches into the parts on purpose)."""
    from bandsync_desktop.server import app as app_module

    fanout = app[app_module.FANOUT]  # type: ignore[index]
    engine = app[app_module.SIO].eio  # type: ignore[index]
    if variant == "deflate":
        engine.compress = True
    if variant in ("engineio-socket", "stock"):
        engine.lean = False
    if variant == "engineio-socket":  # its socket, but websockets still without deflate
        engine._async = {**engine._async, "websocket": _driver_without_deflate()}
    if variant in ("socketio-ticks", "stock"):
        fanout.enabled = False


def _driver_without_deflate() -> type:
    """python-engineio's aiohttp websocket driver, creating websockets with ``compress=False``."""
    from aiohttp import web
    from engineio.async_drivers import aiohttp as engineio_aiohttp

    class Driver(engineio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, object]) -> web.WebSocketResponse:
            request = environ["aiohttp.request"]
            assert isinstance(request, web.Request)
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False
            )
            await self._sock.prepare(request)
            self.environ = environ
            await self.handler(self)
            return self._sock

    return Driver


def log_gc_pauses(threshold_ms: float) -> None:
    """Print every garbage-collection pass longer than ``threshold_ms`` to stderr."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - started[0]) * 1000.0
        if pause_ms >= threshold_ms:
            print(
                f"gc: generation {info['generation']} pass took {pause_ms:.0f} ms"
                f" ({len(gc.get_objects())} objects tracked)",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(callback)


def print_census(top: int = 100) -> None:
    """Print the objects the garbage collector tracks, counted by type, to stderr."""
    gc.collect()
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        if isinstance(obj, asyncio.Task):  # which tasks: by their coroutine
            name = f"Task[{getattr(obj.get_coro(), '__qualname__', '?')}]"
        counts[name] = counts.get(name, 0) + 1
    total = sum(counts.values())
    lines = [f"census: {total} objects tracked"]
    for name, count in sorted(counts.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"census: {count:9d} {name}")
    print("\n".join(lines), file=sys.stderr, flush=True)


class HeapDiff:
    """``SIGUSR2`` with tracemalloc on (``PYTHONTRACEMALLOC=1``): the first signal takes a
    baseline, each later one prints the Python heap grown since, by package."""

    def __init__(self) -> None:
        self.baseline: object = None

    def __call__(self) -> None:
        import tracemalloc

        if not tracemalloc.is_tracing():
            print("heap: tracemalloc is off (PYTHONTRACEMALLOC=1)", file=sys.stderr, flush=True)
            return
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        if self.baseline is None:
            self.baseline = snapshot
            print("heap: baseline taken", file=sys.stderr, flush=True)
            return
        by_package: dict[str, int] = {}
        for stat in snapshot.compare_to(self.baseline, "filename"):  # type: ignore[arg-type]
            path = stat.traceback[0].filename
            parts = Path(path).parts
            if "site-packages" in parts:
                package = parts[parts.index("site-packages") + 1]
            elif "bandsync_desktop" in parts:
                package = "bandsync_desktop/" + "/".join(
                    parts[parts.index("bandsync_desktop") + 1 :]
                )
            else:
                package = "stdlib/" + Path(path).name
            by_package[package] = by_package.get(package, 0) + stat.size_diff
        total = sum(by_package.values())
        lines = [f"heap: {total} bytes grown"]
        for package, size in sorted(by_package.items(), key=lambda item: -item[1])[:25]:
            lines.append(f"heap: {size:10d} {package}")
        for stat in snapshot.compare_to(self.baseline, "lineno")[:30]:  # type: ignore[arg-type]
            frame = stat.traceback[0]
            where = "/".join(Path(frame.filename).parts[-2:])
            lines.append(f"heap: {stat.size_diff:10d} {stat.count_diff:7d} {where}:{frame.lineno}")
        print("\n".join(lines), file=sys.stderr, flush=True)


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    if args.gc_threshold:
        gc.set_threshold(*args.gc_threshold)
    if args.gc_log_ms is not None:
        log_gc_pauses(args.gc_log_ms)
    settings = Settings(host="127.0.0.1", port=args.port, redis_url=args.redis_url)
    app = create_app(settings)
    apply_variant(app, args.variant)
    runner = ServerRunner(app)
    await runner.start("127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, print_census)
    loop.add_signal_handler(signal.SIGUSR2, HeapDiff())
    print(f"READY {runner.port}", flush=True)
    await stop.wait()
    await runner.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--variant", choices=VARIANTS, default="product")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--gc-log-ms", type=float, help="print garbage-collection passes longer than this"
    )
    parser.add_argument(
        "--gc-threshold", type=int, nargs=3, help="the collector's thresholds (gc.set_threshold)"
    )
    arguments = parser.parse_args()
    log.configure(getattr(logging, arguments.log_level.upper(), logging.WARNING))
    asyncio.run(main(arguments))
