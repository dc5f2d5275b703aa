"""Smoke test of the benchmark's Wi-Fi emulator (bench/wifi_emulator.py): it delays, it keeps
each direction in order, and its jitter has the tail it claims."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "wifi_emulator.py"
_SPEC = importlib.util.spec_from_file_location("wifi_emulator", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
wifi = importlib.util.module_from_spec(_SPEC)
sys.modules["wifi_emulator"] = wifi
_SPEC.loader.exec_module(wifi)


def test_jitter_has_the_configured_tail():
    profile = wifi.LinkProfile(base_min_ms=0, base_max_ms=0)
    rng = random.Random(7)
    draws = [profile.draw(rng) for _ in range(40_000)]
    q = statistics.quantiles(draws, n=100)
    assert q[89] == pytest.approx(20.0, rel=0.1)
    assert q[98] == pytest.approx(250.0, rel=0.2)
    assert max(draws) <= profile.jitter_cap_ms


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.asyncio
async def test_proxy_delays_both_ways_and_keeps_order():
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    profile = wifi.LinkProfile(
        base_min_ms=10, base_max_ms=15, jitter_p90_ms=20, jitter_p99_ms=60, jitter_cap_ms=100
    )
    emulator = wifi.WifiEmulator("127.0.0.1", port, profile, seed=3)
    await emulator.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        start = time.monotonic()
        writer.write(b"ping\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"ping\n"
        assert time.monotonic() - start >= 0.020  # at least the base delay, both ways
        expected = b"".join(f"{i:05d}\n".encode() for i in range(300))
        for i in range(300):
            writer.write(f"{i:05d}\n".encode())
            if i % 10 == 0:
                await writer.drain()
                await asyncio.sleep(0.001)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(expected)), 10)
        assert got == expected
        writer.close()
        stats = emulator.stats()
        assert stats["up"]["chunks"] >= 2 and stats["down"]["chunks"] >= 2
        assert stats["up"]["p50_ms"] >= 10
    finally:
        await emulator.stop()
        echo.close()
        await echo.wait_closed()


def test_the_precise_loop_waits_in_select_and_never_sends_a_chunk_early():
    """The emulator's command runs on ``precise_loop``: it waits in ``select``, not in
    asyncio's default ``epoll`` loop, whose whole-millisecond timeouts made every held chunk
    later than the profile says. No held chunk goes out before its release time, and how late
    each went out is in the stats."""

    async def run() -> tuple[dict[str, list[float]], dict[str, object]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop._selector, wifi.selectors.SelectSelector)  # type: ignore[attr-defined]
        echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
        profile = wifi.LinkProfile(base_min_ms=2, base_max_ms=5, jitter_p90_ms=0, jitter_p99_ms=0)
        emulator = wifi.WifiEmulator("127.0.0.1", echo.sockets[0].getsockname()[1], profile)
        await emulator.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
            for i in range(60):
                writer.write(f"{i:05d}\n".encode())
                await writer.drain()
                await asyncio.sleep(0.004)
            await asyncio.wait_for(reader.readexactly(6 * 60), 10)
            writer.close()
            late = {"up": emulator.up.late_ms, "down": emulator.down.late_ms}
            return late, emulator.stats()
        finally:
            await emulator.stop()
            echo.close()
            await echo.wait_closed()

    with asyncio.Runner(loop_factory=wifi.precise_loop) as runner:
        late, stats = runner.run(run())
    for direction in ("up", "down"):
        assert len(late[direction]) >= 30  # chunks were held (the base is 2-5 ms each way)
        assert min(late[direction]) >= 0.0
        summary = stats[direction]
        assert isinstance(summary, dict) and {"late_p50_ms", "late_p99_ms"} <= summary.keys()
