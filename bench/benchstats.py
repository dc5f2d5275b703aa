"""What the benchmarks share: summary statistics, the server clock read from outside, the
helper processes they talk to, and where their figures go.

The timing benches (``midi_clock_bench.py``, ``osc_bench.py``) also share the load they put
on the server (``under_load``): phones of another session in a process of their own (this
file run as ``benchstats.py --load URL``) and the console's own publications.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile (``q`` in 0..1) of ``values``; ``None`` for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Iterable[float], suffix: str = "", digits: int = 4) -> dict[str, float | None]:
    """p50, p99, max and min of ``values`` (``None`` for none), rounded to ``digits``; each
    key ends in ``suffix`` (``"Ms"``: ``p50Ms``, ...)."""
    ordered = sorted(values)

    def rounded(q: float) -> float | None:
        value = percentile(ordered, q)
        return None if value is None else round(value, digits)

    return {
        f"p50{suffix}": rounded(0.5),
        f"p99{suffix}": rounded(0.99),
        f"max{suffix}": rounded(1.0),
        f"min{suffix}": rounded(0.0),
    }


def monotonic_offset_ms(now_ms: Callable[[], float], tries: int = 200) -> float:
    """``now_ms()`` (the server clock) minus CLOCK_MONOTONIC, in ms: read between two
    readings of ``time.monotonic()``, the tightest of ``tries`` brackets."""
    best = (math.inf, 0.0)
    for _ in range(tries):
        before = time.monotonic()
        server = now_ms()
        after = time.monotonic()
        if after - before < best[0]:
            best = (after - before, server - (before + after) * 500.0)
    return best[1]


async def readline(process: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The next line a helper process prints (that it is ready, its port)."""
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout)
    if not line:
        raise RuntimeError("the helper process ended before it was ready")
    return line.strip()


#: Server settings for the load's phones: many from a few addresses, faster than a phone.
LOAD_OVERRIDES: dict[str, Any] = {
    "rate_limit_per_s": 1000.0,
    "rate_limit_burst": 1000,
    "max_members_per_address": 64,
}


def load_main(url: str, clients: int, seconds: float) -> int:
    """The load process: ``clients`` phones of another session (on 127.0.0.2 and up), its
    leader changing tempo 30 times a second, every phone syncing its clock 20 times a
    second, for ``seconds``. Prints ``ready`` once they have joined."""
    from tests.helpers.clients import Recorder

    async def run() -> None:
        phones = [Recorder(url, f"load{i}", source=f"127.0.0.{2 + i}") for i in range(clients)]
        for i, phone in enumerate(phones):
            await phone.connect()
            role = {"role": "leader"} if i == 0 else {}
            await phone.call("join_session", {"sessionId": "load", "displayName": f"p{i}", **role})
        print("ready", flush=True)

        async def leader() -> None:
            for k in range(int(seconds * 30)):
                await phones[0].emit("set_tempo", {"sessionId": "load", "tempo": 100 + k % 40})
                await asyncio.sleep(1 / 30)

        async def syncing(phone: Recorder) -> None:
            for _ in range(int(seconds * 20)):
                await phone.emit("clock_sync", {"t0": time.monotonic() * 1000.0})
                await asyncio.sleep(1 / 20)

        await asyncio.gather(leader(), *(syncing(p) for p in phones))
        for phone in phones:
            await phone.close()

    asyncio.run(run())
    return 0


@contextlib.asynccontextmanager
async def under_load(host: Any, url: str, clients: int, seconds: float) -> AsyncIterator[None]:
    """While the block runs (at most ``seconds``): the load process (``load_main``) on the
    server at ``url``, and the console (``host``, an ``ActorHost``) changing the band's stage
    message 10 times a second, a publication every actor hears. The server's loop is busy
    and the GIL contended."""
    command = [sys.executable, __file__, "--load", url, "--clients", str(clients)]
    load = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
        [*command, "--seconds", str(seconds + 5)], stdout=subprocess.PIPE, text=True
    )
    try:
        await readline(load)

        async def messages() -> None:
            for k in range(int((seconds + 2) * 10)):
                await host.submit("update_message", {"message": f"bar {k}"})
                await asyncio.sleep(0.1)

        writer = asyncio.ensure_future(messages())
        try:
            yield
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
    finally:
        load.terminate()
        load.wait(10)


def loop_lag(host: Any) -> dict[str, float]:
    """The server loop's lag figures (``host.view.loop_lag()``) as the JSON has them."""
    lag = host.view.loop_lag()
    return {"p50Ms": lag.p50_ms, "p99Ms": lag.p99_ms, "maxMs": lag.max_ms}


def write_results(path: Path, result: dict[str, Any]) -> None:
    """Write a bench's figures as JSON (``bench/results/<bench>.json``) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _load_cli() -> int:
    parser = argparse.ArgumentParser(description="the load process (see load_main)")
    parser.add_argument("--load", metavar="URL", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (tests.helpers)
    return load_main(args.load, args.clients, args.seconds)


if __name__ == "__main__":
    sys.exit(_load_cli())
