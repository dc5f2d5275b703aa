"""Findings 6 and 8: nobody keeps a seat they should not have.

* 8: the leader's seat of a protected session is held for the grace period, then released,
  and the release is stored: the old leader coming back later needs the key.
* 6: a socket that asks to join two sessions at once and drops leaves no ghost member in
  either (ghosts filled a session until real phones got ``SESSION_FULL``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bandsync_desktop.core.errors import ErrorCode
from tests.helpers.clients import Recorder, expect_ok, expect_refused

pytestmark = pytest.mark.asyncio


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def test_a_released_seat_is_stored_and_the_old_leader_needs_the_key(
    start_server: Any,
) -> None:
    server = await start_server(leader_grace_s=0.3, housekeeping_interval_s=0.05)
    leader = await Recorder(server.url, "leader").connect()
    created = await expect_ok(
        leader, "create_session", {"sessionId": "locked", "clientId": "lead-1"}
    )
    await leader.close()  # the leader drops: its seat is held for 0.3 s
    store = server.service.store
    await _until(lambda: server.service.sessions["locked"].held_leader_id == "lead-1")
    await asyncio.sleep(0.6)  # past the grace: housekeeping releases the seat
    stored = await store.get("locked")
    assert stored is not None and stored.held_leader_id is None  # the store has it too
    back = await Recorder(server.url, "back").connect()
    try:
        ack = await expect_ok(back, "join_session", {"sessionId": "locked", "clientId": "lead-1"})
        assert ack["role"] == "follower"
        await expect_refused(
            back,
            "set_role",
            {"sessionId": "locked", "role": "leader"},
            ErrorCode.LEADER_KEY_REQUIRED,
        )
        await expect_refused(
            back, "set_tempo", {"sessionId": "locked", "tempo": 99}, ErrorCode.NOT_LEADER
        )
        await expect_ok(
            back,
            "set_role",
            {"sessionId": "locked", "role": "leader", "leaderKey": created["leaderKey"]},
        )
    finally:
        await back.close()


async def _ghost_storm(url: str, sockets: int) -> None:
    """Each socket asks for two sessions in one breath (no waiting for either answer), then
    drops at once: raw Engine.IO frames, as a script would send them."""
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        for i in range(sockets):
            ws = await http.ws_connect(ws_url)
            assert (await ws.receive_str()).startswith("0")  # Engine.IO open
            await ws.send_str("40")
            assert (await ws.receive_str()).startswith("40")  # Socket.IO connected
            for session_id in ("A", "B"):
                join = {"sessionId": session_id, "clientId": f"ghost-{i}"}
                await ws.send_str("42" + json.dumps(["join_session", join]))
            await asyncio.sleep((0.0, 0.0005, 0.002, 0.01)[i % 4])  # drop mid-join, or after
            await ws.close()


async def test_joining_two_sessions_at_once_then_dropping_leaves_no_ghost(
    start_server: Any,
) -> None:
    await _no_ghosts(await start_server())


@pytest.mark.redis
async def test_no_ghost_with_redis_either(redis_server: Any, start_server: Any) -> None:
    # (redis_server first: it must outlive the server)
    await _no_ghosts(await start_server(redis_url=redis_server.url))


async def _no_ghosts(server: Any) -> None:
    band = await Recorder(server.url, "band").connect()
    try:
        await expect_ok(band, "join_session", {"sessionId": "A", "clientId": "real-phone"})
        await _ghost_storm(server.url, 40)
        service = server.service

        async def members(session_id: str) -> list[str]:
            session = await service.store.get(session_id)
            return [] if session is None else sorted(session.members)

        async def settled() -> bool:
            return await members("A") == ["real-phone"] and await members("B") == []

        deadline = asyncio.get_running_loop().time() + 5.0
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, (
                await members("A"),
                await members("B"),
            )
            await asyncio.sleep(0.05)
        # and a latecomer still finds room
        late = await Recorder(server.url, "late").connect()
        try:
            await expect_ok(late, "join_session", {"sessionId": "A", "clientId": "late"})
        finally:
            await late.close()
    finally:
        await band.close()


async def test_one_address_cannot_fill_the_bands_session(start_server: Any) -> None:
    """64 connections from one phone used to take all 64 places; real phones got
    SESSION_FULL. One address holds at most max_members_per_address places."""
    server = await start_server(band_session=True, max_members_per_address=3)
    attackers = [
        await Recorder(server.url, f"a{i}", source="127.0.0.66").connect() for i in range(5)
    ]
    phone = await Recorder(server.url, "phone", source="127.0.0.67").connect()
    try:
        for i, attacker in enumerate(attackers[:3]):
            await expect_ok(attacker, "join_session", {"sessionId": "band", "clientId": f"x{i}"})
        for i, attacker in enumerate(attackers[3:], start=3):
            await expect_refused(
                attacker,
                "join_session",
                {"sessionId": "band", "clientId": f"x{i}"},
                ErrorCode.SESSION_FULL,
            )
        # taking back one's own place is not a new one
        await expect_ok(attackers[4], "join_session", {"sessionId": "band", "clientId": "x0"})
        await expect_ok(phone, "join_session", {"sessionId": "band", "clientId": "real"})
        members = server.service.sessions["band"].members
        assert sorted(members) == ["real", "x0", "x1", "x2"]
    finally:
        for client in (*attackers, phone):
            await client.close()
