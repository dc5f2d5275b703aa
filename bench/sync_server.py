"""The server under test for ``sync_bench.py``: the product's app, headless, in its own process.

Prints one line ``READY {"port": P, "clockOffsetMs": O}`` once it listens. ``O`` is how the
server's clock (``MonotonicClock``: ``time.monotonic()`` shifted to epoch ms) relates to the
host's ``CLOCK_MONOTONIC``: ``server_time = time.monotonic() * 1000 + O`` in *any* process on
this host, since every process reads the same ``CLOCK_MONOTONIC``. The benchmark uses that as
the truth. ``O`` is taken between two monotonic readings (well under a microsecond apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bandsync_desktop import log
from bandsync_desktop.config import Settings
from bandsync_desktop.core.clock import MonotonicClock
from bandsync_desktop.server.app import ServerRunner, create_app


def clock_offset_ms(clock: MonotonicClock) -> tuple[float, float]:
    """``(offset, bracket)``: server time minus monotonic ms, and the bracket width in ms."""
    best = (0.0, float("inf"))
    for _ in range(200):
        before = time.monotonic()
        server = clock.now_ms()
        after = time.monotonic()
        width = (after - before) * 1000.0
        if width < best[1]:
            best = (server - (before + after) * 500.0, width)
    return best


async def serve(lead_ms: float) -> None:
    clock = MonotonicClock()
    settings = Settings(host="127.0.0.1", port=0, lead_ms=lead_ms)
    runner = ServerRunner(create_app(settings, clock=clock))
    await runner.start("127.0.0.1", 0)
    offset, width = clock_offset_ms(clock)
    ready = {"port": runner.port, "clockOffsetMs": offset, "bracketMs": width}
    print("READY " + json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="server for bench/sync_bench.py")
    parser.add_argument("--lead-ms", type=float, default=200.0)
    args = parser.parse_args()
    log.configure(logging.WARNING)
    asyncio.run(serve(args.lead_ms))


if __name__ == "__main__":
    main()
