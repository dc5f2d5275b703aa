"""A real server on a real Redis that dies mid-rehearsal: the band plays on, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bandsync_desktop.core.session import member_id
from bandsync_desktop.server.storage.redis import RedisStore
from tests.helpers.clients import Recorder
from tests.helpers.redis import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]

OUTAGE = r"Redis at .* is unreachable"


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
        body: dict[str, Any] = await response.json()
        return body


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met in {timeout} s")
        await asyncio.sleep(0.02)


async def ok(client: Recorder, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = await client.call(event, data)
    assert ack["ok"] is True, ack
    return ack


@pytest.mark.expect_log(OUTAGE)
async def test_commands_during_a_redis_outage_are_served_and_written_back(
    redis_server: RedisServer,  # first: it must outlive the server
    start_server: Any,
) -> None:
    server = await start_server(redis_url=redis_server.url)
    assert (await health(server.url))["store"] == {"kind": "redis", "state": "redis"}
    leader = await Recorder(server.url, "leader").connect()
    follower = await Recorder(server.url, "follower").connect()
    try:
        await ok(leader, "join_session", {"sessionId": "gig", "clientId": "lead-1"})
        await ok(leader, "set_role", {"sessionId": "gig", "role": "leader"})
        await ok(follower, "join_session", {"sessionId": "gig", "clientId": "fol-1"})
        await ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 100})

        redis_server.kill()
        acks = [
            await ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 140}),
            await ok(
                leader, "update_message", {"sessionId": "gig", "message": "no Redis, no problem"}
            ),
            await ok(leader, "seek", {"sessionId": "gig", "position": 5000}),
            await ok(leader, "play", {"sessionId": "gig"}),
        ]
        versions = [a["version"] for a in acks]
        assert versions == sorted(versions) and len(set(versions)) == 4
        # room broadcasts still reach this node's followers
        await wait_until(
            lambda: (s := follower.last("snapshot")) is not None and s["version"] == versions[-1]
        )
        snap = follower.last("snapshot")
        assert (snap["tempoBpm"], snap["isPlaying"], snap["message"]) == (
            140,
            True,
            "no Redis, no problem",
        )
        assert (await health(server.url))["store"]["state"] == "redis-unreachable"
        tick = await follower.wait_for("scroll_tick", 2.0)  # the ticker keeps going too
        assert tick["tempoBpm"] == 140

        redis_server.start()  # empty: no persistence
        await wait_until(lambda: _state_is(server.url, "redis"), timeout=15.0)
        check = RedisStore(redis_server.url)
        try:
            stored = await check.get("gig")
        finally:
            await check.close()
        assert stored is not None
        assert stored.version >= versions[-1]
        assert stored.timeline.latest.tempo_bpm == 140
        assert stored.timeline.latest.playing
        assert stored.message == "no Redis, no problem"
        assert sorted(stored.members) == ["fol-1", "lead-1"]
        assert stored.leader_id == "lead-1"
        # and the server keeps working against Redis afterwards
        after = await ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 150})
        assert after["version"] > stored.version
        check = RedisStore(redis_server.url)
        try:
            latest = await check.get("gig")
        finally:
            await check.close()
        assert latest is not None and latest.version == after["version"]
        assert (await health(server.url))["store"]["state"] == "redis"
    finally:
        await leader.close()
        await follower.close()


async def _state_is(url: str, state: str) -> bool:
    return bool((await health(url))["store"]["state"] == state)


@pytest.mark.expect_log(OUTAGE)
async def test_server_starts_without_redis_and_joins_work(start_server: Any) -> None:
    """The original's "fallback" was a log line and every join timed out. Not here."""
    absent = RedisServer(free_port())
    server = await start_server(redis_url=absent.url)
    body = await health(server.url)
    assert body["store"] == {"kind": "redis", "state": "redis-unreachable"}
    client = await Recorder(server.url, "solo").connect()
    try:
        snapshot = client.next("snapshot")
        await ok(client, "join_session", {"sessionId": "nobody-home", "clientId": "c1"})
        members = (await asyncio.wait_for(snapshot, 3))["members"]
        assert [m["memberId"] for m in members] == [member_id("c1")]
        absent.start()
        await wait_until(lambda: _state_is(server.url, "redis"), timeout=15.0)
        check = RedisStore(absent.url)
        try:
            stored = await check.get("nobody-home")
        finally:
            await check.close()
        assert stored is not None and list(stored.members) == ["c1"]
    finally:
        await client.close()
        await server.stop()  # before Redis goes: its members are released into Redis
        absent.stop()
