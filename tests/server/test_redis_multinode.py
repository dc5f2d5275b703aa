"""Two server processes on one Redis: a leader on node A drives followers on node B.

Room broadcasts cross nodes through Redis pub/sub; session state lives only in Redis (node B
learns every change, its ticker included); ticks are computed by each node for its own
followers from the shared timeline — no tick traffic between nodes.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from bandsync_desktop.config import Settings
from bandsync_desktop.core.session import member_id
from bandsync_desktop.server.app import CLUSTER, ServerRunner, create_app
from tests.helpers.clients import Recorder
from tests.helpers.redis import RedisServer, ServerProcess, free_port

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.slow]

SESSION = "two-rooms"


async def ok(client: Recorder, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = await client.call(event, {"sessionId": SESSION, **data})
    assert ack["ok"] is True, ack
    return ack


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_leader_on_node_a_drives_followers_on_node_b(
    redis_server: RedisServer,
) -> None:
    node_a = ServerProcess(free_port(), redis_server.url).start()
    node_b = ServerProcess(free_port(), redis_server.url).start()
    clients: list[Recorder] = []
    try:
        await asyncio.gather(node_a.ready(), node_b.ready())
        leader = await Recorder(node_a.url, "leader").connect()
        legacy = await Recorder(node_b.url, "legacy follower").connect()
        modern = await Recorder(node_b.url, "timeline follower").connect()
        clients += [leader, legacy, modern]
        await ok(leader, "join_session", {"clientId": "lead-1", "role": "leader"})
        await ok(legacy, "join_session", {"clientId": "legacy-1"})
        await ok(modern, "join_session", {"clientId": "modern-1", "capabilities": ["timeline"]})
        # B's joins reach A's leader through the Redis manager
        await until(lambda: (s := leader.last("snapshot")) is not None and len(s["members"]) == 3)
        assert legacy.sid.split(".")[0] != leader.sid.split(".")[0]  # two nodes, two prefixes

        # A command on A reaches B's followers (notice and snapshot); measure the hop.
        hops = []
        for tempo in (100, 110, 120, 130, 150):
            arrived = legacy.next("tempo_changed")
            sent = time.monotonic()
            await ok(leader, "set_tempo", {"tempo": tempo})
            assert (await asyncio.wait_for(arrived, 3))["tempoBpm"] == tempo
            hops.append((time.monotonic() - sent) * 1000)
        print(f"\ncross-node command->notice median {statistics.median(hops):.1f} ms")
        await until(lambda: modern.last("snapshot")["tempoBpm"] == 150)

        # B never trusts stale memory: a follower there is still refused the leader's commands.
        refused = await legacy.call("set_tempo", {"sessionId": SESSION, "tempo": 90})
        assert refused["ok"] is False and refused["error"]["code"] == "NOT_LEADER"

        started = legacy.next("play")
        play = await ok(leader, "play", {})
        assert (await asyncio.wait_for(started, 3))["isPlaying"] is True
        await asyncio.sleep(0.4)  # past the start lead
        legacy.clear()
        leader.clear()
        await asyncio.sleep(1.0)
        b_ticks = legacy.payloads("scroll_tick")
        a_ticks = leader.payloads("scroll_tick")
        # ~10 Hz each: B's follower gets B's ticks only (20 Hz would mean A's crossed over)
        assert 6 <= len(b_ticks) <= 13, len(b_ticks)
        assert 6 <= len(a_ticks) <= 13, len(a_ticks)
        assert modern.payloads("scroll_tick") == []  # timeline clients compute their own
        # both nodes tick the same shared timeline: position - serverTime is one constant
        offsets = [t["positionMs"] - t["serverTimestamp"] for t in a_ticks + b_ticks]
        assert max(offsets) - min(offsets) < 2.0, offsets
        assert all(t["tempoBpm"] == 150 and t["isPlaying"] for t in b_ticks)
        # B's own view (what its sync_request answers) is the shared one too
        sync = await ok(legacy, "sync_request", {})
        assert sync["isPlaying"] is True and sync["version"] >= play["version"]

        # The leader's phone on A goes away: B's followers are told, playback pauses.
        paused = legacy.next("pause")
        await leader.close()
        assert (await asyncio.wait_for(paused, 3))["isPlaying"] is False
        await until(lambda: modern.last("snapshot")["leaderMemberId"] is None)
        assert [m["memberId"] for m in modern.last("snapshot")["members"]] == [
            member_id("legacy-1"),
            member_id("modern-1"),
        ]
        # Node A stopping tells its own sockets, not B's.
        node_a.signal(15)
        await asyncio.sleep(0.3)
        assert modern.payloads("server_shutdown") == [] and legacy.sio.connected
    finally:
        for client in clients:
            await client.close()
        errors = node_a.signal(15) + node_b.signal(15)
    assert "Traceback" not in errors and " ERROR " not in errors, errors


async def test_a_dead_node_leaves_seats_held_and_the_band_playing_on_the_other(
    redis_server: RedisServer,
) -> None:
    """Node A is killed; node B declares it dead, marks its members away (the leader's seat
    held, playback not paused) and the leader, reconnecting to B, gets the lead back."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_server.url)
    app = create_app(settings)
    app[CLUSTER].dead_after_s = 1.0  # instead of 5 s, to keep the test short
    node_b = ServerRunner(app)
    await node_b.start("127.0.0.1", 0)
    node_a = ServerProcess(free_port(), redis_server.url).start()
    clients: list[Recorder] = []
    try:
        await node_a.ready()
        leader = await Recorder(node_a.url, "leader", reconnection=False).connect()
        follower = await Recorder(node_b.url, "follower").connect()
        clients += [leader, follower]
        await ok(leader, "join_session", {"clientId": "lead-1", "role": "leader"})
        await ok(follower, "join_session", {"clientId": "fol-1"})
        await ok(leader, "set_tempo", {"tempo": 128})
        await ok(leader, "play", {})
        await asyncio.sleep(0.3)

        node_a.signal(9)  # SIGKILL: no goodbye from A
        left = follower.next("user_left")
        assert (await asyncio.wait_for(left, 5))["memberId"] == member_id("lead-1")
        await until(lambda: follower.last("snapshot")["leaderMemberId"] is None)
        snap = follower.last("snapshot")
        assert [m["memberId"] for m in snap["members"]] == [member_id("fol-1")]
        assert snap["isPlaying"] is True and snap["tempoBpm"] == 128  # the band plays on
        follower.clear()
        await asyncio.sleep(0.35)
        assert follower.payloads("scroll_tick")  # B keeps ticking for its follower

        back = await Recorder(node_b.url, "leader again").connect()
        clients.append(back)
        ack = await ok(back, "join_session", {"clientId": "lead-1"})
        assert ack["role"] == "leader"  # the held seat: the lead comes back with the clientId
        await ok(back, "set_tempo", {"tempo": 132})
    finally:
        for client in clients:
            await client.close()
        await node_b.stop()
        errors = node_a.signal(15)
    assert "Traceback" not in errors, errors
