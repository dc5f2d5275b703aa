"""The server process dies mid-song and comes back: the band's state and seats are back.

A real headless server process on a real ``redis-server``; phones are socket.io clients with
reconnection on that rejoin with their ``clientId`` whenever they (re)connect.

Chosen behaviour (docs/redis.md): a session that was playing **keeps playing** through the
restart — the phones keep clicking from the timeline, and the restarted server serves the
position the timeline gives, as if it had never stopped. Members of the dead process are
*away* until they reconnect; then they get their seniority back, and the leader the lead.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from bandsync_desktop.core.session import member_id
from bandsync_desktop.server.storage.redis import RedisStore
from tests.helpers.clients import Recorder
from tests.helpers.redis import RedisServer, ServerProcess, free_port

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.slow]

SESSION = "rehearsal"


async def phone(url: str, name: str, client_id: str) -> Recorder:
    """A follower-page-like client: reconnects by itself and rejoins on every connect."""
    client = Recorder(
        url,
        name,
        reconnection=True,
        reconnection_delay=0.05,
        reconnection_delay_max=0.2,
        randomization_factor=0,
    )

    async def rejoin() -> None:
        await client.sio.emit(
            "join_session", {"sessionId": SESSION, "clientId": client_id, "displayName": name}
        )

    client.sio.on("connect", rejoin)
    joined = client.next("snapshot")
    await client.connect()
    await asyncio.wait_for(joined, 5)
    return client


async def ok(client: Recorder, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack: dict[str, Any] = await client.call(event, {"sessionId": SESSION, **data})
    assert ack["ok"] is True, ack
    return ack


async def latest_snapshot(client: Recorder, predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.last("snapshot")
        if snap is not None and predicate(snap):
            return snap
        await asyncio.sleep(0.02)
    raise AssertionError(f"{client.name}: no such snapshot; last was {client.last('snapshot')}")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "clean-stop"])
async def test_restarted_server_serves_the_session_again(
    redis_server: RedisServer,
    how: signal.Signals,
) -> None:
    server = ServerProcess(free_port(), redis_server.url).start()
    clients: list[Recorder] = []
    try:
        await server.ready()
        # The leader creates a protected session; two followers join; the band is playing.
        leader = Recorder(
            server.url,
            "leader",
            reconnection=True,
            reconnection_delay=0.05,
            reconnection_delay_max=0.2,
            randomization_factor=0,
        )
        clients.append(leader)
        await leader.connect()
        created = await leader.call(
            "create_session", {"sessionId": SESSION, "clientId": "lead-1", "displayName": "Lead"}
        )
        assert created["ok"] is True, created
        key = created["leaderKey"]

        async def leader_rejoin() -> None:
            await leader.sio.emit("join_session", {"sessionId": SESSION, "clientId": "lead-1"})

        leader.sio.on("connect", leader_rejoin)
        clients.append(await phone(server.url, "Bass", "bass-1"))
        clients.append(await phone(server.url, "Drums", "drums-1"))
        await ok(leader, "set_tempo", {"tempo": 140})
        await ok(leader, "set_meter", {"beatsPerBar": 3, "beatUnit": 4})
        await ok(leader, "update_message", {"message": "Chorus twice, then out"})
        await ok(leader, "play", {})
        await asyncio.sleep(0.3)
        before = await ok(leader, "sync_request", {})
        assert before["isPlaying"] is True
        seats = {
            m["memberId"]: m["joinedAt"]
            for m in (await latest_snapshot(clients[2], lambda s: len(s["members"]) == 3))[
                "members"
            ]
        }

        stopping = time.monotonic()
        server.signal(how)  # the server goes away mid-song
        print(f"\n{how.name}: old process gone after {(time.monotonic() - stopping) * 1000:.0f} ms")
        server.start()  # and is started again on the same port
        started = server.started_at
        await server.ready()
        probe = Recorder(server.url, "probe")
        clients.append(probe)
        await probe.connect()
        first = await probe.call("join_session", {"sessionId": SESSION, "clientId": "probe-1"})
        snapshot = probe.last("snapshot") or await probe.wait_for("snapshot")
        recovery_s = time.monotonic() - started
        print(f"\nrecovery ({how.name}): {recovery_s * 1000:.0f} ms from process start to snapshot")
        assert first["ok"] is True

        # Tempo, meter, message, play state and the place in the song are all back.
        assert snapshot["tempoBpm"] == 140
        assert (snapshot["beatsPerBar"], snapshot["beatUnit"]) == (3, 4)
        assert snapshot["message"] == "Chorus twice, then out"
        assert snapshot["isPlaying"] is True  # resumed, as if it never stopped
        expected = before["positionMs"] + (snapshot["serverTime"] - before["serverTime"])
        assert abs(snapshot["positionMs"] - expected) < 25.0

        # The phones reconnect on their own: same seats, same seniority, the lead is back.
        final = await latest_snapshot(
            probe,
            lambda s: (
                {m["memberId"] for m in s["members"]}
                == {member_id(c) for c in ("lead-1", "bass-1", "drums-1", "probe-1")}
                and s["leaderMemberId"] == member_id("lead-1")
            ),
        )
        for member in final["members"]:
            if member["memberId"] in seats:
                assert member["joinedAt"] == seats[member["memberId"]]
        assert final["isPlaying"] is True
        after = await ok(leader, "set_tempo", {"tempo": 150})  # the leader leads again
        assert after["version"] > final["version"] - 1
        check = RedisStore(redis_server.url)
        try:
            stored = await check.get(SESSION)
        finally:
            await check.close()
        assert stored is not None and stored.leader_key == key  # the key survived too
    finally:
        for client in clients:
            await client.close()
        err = server.signal(signal.SIGTERM)
    assert "Traceback" not in err and " ERROR " not in err, err


async def test_clean_stop_releases_members_and_the_band_plays_on(
    redis_server: RedisServer,  # first: it must outlive the server
    start_server: Any,
) -> None:
    """SIGTERM/console quit with Redis: members become away in Redis, seats and lead held,
    playback not paused, so the next server (or another node) carries on."""
    server = await start_server(redis_url=redis_server.url)
    leader = await Recorder(server.url, "leader").connect()
    follower = await Recorder(server.url, "follower").connect()
    try:
        await ok(leader, "join_session", {"clientId": "lead-1"})
        await ok(leader, "set_role", {"role": "leader"})
        await ok(follower, "join_session", {"clientId": "fol-1"})
        await ok(leader, "play", {})
        await server.stop()
    finally:
        await leader.close()
        await follower.close()
    check = RedisStore(redis_server.url)
    try:
        stored = await check.get(SESSION)
    finally:
        await check.close()
    assert stored is not None
    assert stored.members == {}
    assert sorted(stored.away) == ["fol-1", "lead-1"]
    assert stored.held_leader_id == "lead-1"
    assert stored.timeline.latest.playing  # not paused by the stop
