"""The server under test for the load benchmarks: the product's app, headless, in its own process.

Run by ``load_bench.py`` and ``soak.py`` as a subprocess so that its CPU time and RSS are
measured apart from the clients'. Prints ``READY <port>`` once it listens. ``--variant``
switches one efficiency measure off again, to measure it both ways:

* ``product``: the server exactly as shipped;
* ``deflate``: the websocket accepts permessage-deflate when a client offers it (as
  python-engineio's stock aiohttp driver does);
* ``socketio-ticks``: ticks go through ``AsyncServer.emit`` to the tick room (python-socketio's
  generic path: one task and one queue hop per recipient) instead of the product's
  fan-out (``server/fanout.py``);
* ``stock``: both of the above: python-socketio and python-engineio as they come.
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

VARIANTS = ("product", "deflate", "socketio-ticks", "stock")


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
    if variant in ("deflate", "stock"):
        fanout.compress = True
    if variant in ("socketio-ticks", "stock"):
        fanout.enabled = False


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


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
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
    arguments = parser.parse_args()
    log.configure(getattr(logging, arguments.log_level.upper(), logging.WARNING))
    asyncio.run(main(arguments))
