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
