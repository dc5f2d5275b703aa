"""Findings 7 and 9: what one address can make the server hold.

* 7: sessions outlive their connections, so one phone could create thousands (15,207 in
  20 s), and every expiry sweep and ``/health`` then walked all of them. Sessions are capped
  per address and in all; the sweep yields to the loop; ``/health`` counts without listing.
* 9: refused joins left something behind each (~300 B, never freed).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import aiohttp
import pytest

from bandsync_desktop.core.errors import ErrorCode
from bandsync_desktop.core.session import Session
from tests.helpers.clients import Recorder, expect_ok, expect_refused

pytestmark = pytest.mark.asyncio

ATTACKER = "127.0.0.66"
NEIGHBOUR = "127.0.0.67"


async def test_one_address_holds_a_few_sessions_and_no_more(start_server: Any) -> None:
    server = await start_server(max_sessions_per_address=3)
    attacker = await Recorder(server.url, "attacker", source=ATTACKER).connect()
    neighbour = await Recorder(server.url, "neighbour", source=NEIGHBOUR).connect()
    try:
        for i in range(3):  # switching sessions leaves each behind, as a script would
            await expect_ok(attacker, "join_session", {"sessionId": f"junk-{i}"})
        before = sorted(await server.service.store.session_ids())
        await expect_refused(
            attacker, "join_session", {"sessionId": "junk-3"}, ErrorCode.TOO_MANY_SESSIONS
        )
        await expect_refused(
            attacker, "create_session", {"sessionId": "junk-4"}, ErrorCode.TOO_MANY_SESSIONS
        )
        await expect_refused(attacker, "create_session", {}, ErrorCode.TOO_MANY_SESSIONS)
        assert sorted(await server.service.store.session_ids()) == before  # nothing made
        # joining sessions that exist is not capped, and other phones are not affected
        await expect_ok(attacker, "join_session", {"sessionId": "junk-0"})
        await expect_ok(neighbour, "create_session", {"sessionId": "real-band"})
    finally:
        await attacker.close()
        await neighbour.close()


async def test_a_session_that_expired_gives_its_slot_back(start_server: Any) -> None:
    server = await start_server(max_sessions_per_address=1, idle_expiry_s=0.05)
    attacker = await Recorder(server.url, "attacker", source=ATTACKER).connect()
    try:
        await expect_ok(attacker, "join_session", {"sessionId": "first"})
        await expect_ok(attacker, "leave_session", {"sessionId": "first"})
        await expect_refused(
            attacker, "join_session", {"sessionId": "second"}, ErrorCode.TOO_MANY_SESSIONS
        )
        await asyncio.sleep(0.1)
        assert await server.service.expire_idle() == ["first"]
        await expect_ok(attacker, "join_session", {"sessionId": "second"})
    finally:
        await attacker.close()


async def test_the_server_holds_at_most_its_cap_of_sessions(start_server: Any) -> None:
    server = await start_server(max_sessions=4, band_session=True)  # the band's counts too
    phones = [
        await Recorder(server.url, f"p{i}", source=f"127.0.0.{70 + i}").connect() for i in range(4)
    ]
    try:
        for i, phone in enumerate(phones[:3]):
            await expect_ok(phone, "join_session", {"sessionId": f"s-{i}"})
        await expect_refused(
            phones[3], "join_session", {"sessionId": "s-3"}, ErrorCode.TOO_MANY_SESSIONS
        )
        await expect_ok(phones[3], "join_session", {"sessionId": "band"})  # the band: always
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/health") as answer,
        ):
            assert (await answer.json())["sessions"] == 4
    finally:
        for phone in phones:
            await phone.close()


async def test_the_expiry_sweep_lets_the_band_play_on_between_batches(
    start_server: Any,
) -> None:
    """15k sessions stalled ticks for 180-280 ms per sweep: it now yields every batch."""
    server = await start_server(max_sessions=0)
    service = server.service
    now = service.clock.now_ms()
    for i in range(3000):  # straight into the store: as if many phones had made them
        await service.store.create(Session.create(f"idle-{i}", now))
    turns = 0
    stop = asyncio.Event()

    async def band() -> None:  # stands for the ticker: counts how often it gets the loop
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(band())
    await asyncio.sleep(0)
    turns = 0
    assert await service.expire_idle() == []  # none idle long enough yet
    stop.set()
    await task
    assert turns >= 3000 // 100 - 1, turns


async def test_refused_joins_leave_nothing_behind(start_server: Any) -> None:
    server = await start_server(
        max_sessions_per_address=2, rate_limit_per_s=1e6, rate_limit_burst=1_000_000
    )
    service = server.service
    leader = await Recorder(server.url, "leader").connect()
    attacker = await Recorder(server.url, "attacker", source=ATTACKER).connect()
    try:
        await expect_ok(leader, "create_session", {"sessionId": "locked"})
        for i in range(2):
            await expect_ok(attacker, "join_session", {"sessionId": f"mine-{i}"})
        kinds = {
            "key": lambda i: ({"sessionId": "locked", "role": "leader"}, "LEADER_KEY_REQUIRED"),
            "name": lambda i: ({"sessionId": f"new-{i}", "displayName": " "}, "INVALID_NAME"),
            "cap": lambda i: ({"sessionId": f"new-{i}"}, "TOO_MANY_SESSIONS"),
            "badkey": lambda i: (
                {"sessionId": f"new-{i}", "leaderKey": "x" * 200},
                "INVALID_PAYLOAD",
            ),
        }

        async def refusals(kind: str, first: int, count: int) -> None:
            for i in range(first, first + count):
                payload, code = kinds[kind](i)
                await expect_refused(attacker, "join_session", payload, code)
                attacker.events.clear()  # the attacker's own log of errors is not the server's

        def held() -> tuple[Any, ...]:
            return (
                sorted(service.sessions),
                len(service._locks),
                dict(service._created_count),
                sorted(service._room_versions),
                len(service.connections),
            )

        await asyncio.sleep(0.4)  # the joins' coalesced room snapshots have gone out
        before = held()
        for kind in kinds:
            await refusals(kind, 0, 300)
        await asyncio.sleep(0.4)
        assert held() == before
        assert sorted(await service.store.session_ids()) == ["locked", "mine-0", "mine-1"]

        # What a refused join of a fresh id cost before: a lock per id, never freed.
        await refusals("name", 1000, 100)
        gc.collect()
        tracemalloc.start()
        try:
            ours = [tracemalloc.Filter(True, "*bandsync_desktop*")]
            start = tracemalloc.take_snapshot().filter_traces(ours)
            await refusals("name", 2000, 500)
            gc.collect()
            end = tracemalloc.take_snapshot().filter_traces(ours)
        finally:
            tracemalloc.stop()
        stats = end.compare_to(start, "lineno")
        grown = sum(stat.size_diff for stat in stats)
        assert grown < 20_000, [str(stat) for stat in stats[:5]]  # before: ~65 kB
    finally:
        await leader.close()
        await attacker.close()
