"""The seeds' scenarios against a real server on loopback with real socket.io clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time

import pytest
import socketio

from bandsync_desktop.core.clock import ManualClock

from ..helpers.protocol import SNAPSHOT_FIELDS

pytestmark = pytest.mark.asyncio


async def joined(make_client, name, session="gig", **extra):
    client = await make_client(name)
    snapshot = client.next("snapshot")
    ack = await client.call("join_session", {"sessionId": session, "displayName": name, **extra})
    assert ack["ok"], ack
    await asyncio.wait_for(snapshot, 5)
    return client


async def band(make_client, session="gig"):
    """A leader and a follower in an open session, as the seeds set it up."""
    leader = await joined(make_client, "Leader", session)
    follower = await joined(make_client, "Follower", session)
    snap = leader.next("snapshot")
    await leader.emit("set_role", {"sessionId": session, "role": "leader"})
    assert (await asyncio.wait_for(snap, 5))["leaderSocketId"] == leader.sid
    return leader, follower


async def test_join_gets_a_snapshot_with_every_field(make_client):
    client = await make_client("a")
    snapshot = client.next("snapshot")
    ack = await client.call("join_session", {"sessionId": "gig", "displayName": "Ana"})
    data = await asyncio.wait_for(snapshot, 5)
    assert set(data) >= SNAPSHOT_FIELDS
    assert ack == {
        "ok": True,
        "sessionId": "gig",
        "version": data["version"],
        "clientId": None,  # it sent none; its seat is keyed by its socket
        "memberId": data["members"][0]["memberId"],
        "socketId": client.sid,
        "role": "follower",
    }
    assert data["leaderSocketId"] is None  # joining never makes a leader by itself
    member = data["members"][0]
    assert {"socketId", "displayName", "role", "joinedAt", "health"} <= set(member)
    assert (member["displayName"], member["role"]) == ("Ana", "follower")


async def test_legacy_flow_with_plain_emits(make_client):
    """What the seeds' scripts do: emit, then wait for the next snapshot."""
    leader, follower = await band(make_client)
    for event, data, check in (
        ("set_tempo", {"tempo": 140}, lambda s: s["tempo"] == 140),
        ("play", {}, lambda s: s["isPlaying"] is True),
        ("pause", {}, lambda s: s["isPlaying"] is False),
    ):
        snap = leader.next("snapshot")
        seen_by_follower = follower.next("snapshot")
        await leader.emit(event, {"sessionId": "gig", **data})
        assert check(await asyncio.wait_for(snap, 5))
        assert check(await asyncio.wait_for(seen_by_follower, 5))


async def test_follower_leader_command_is_refused_and_changes_nothing(make_client, server):
    _leader, follower = await band(make_client)
    before = server.service.sessions["gig"].to_dict()
    error = follower.next("error")
    ack = await follower.call("set_tempo", {"sessionId": "gig", "tempo": 100})
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_LEADER"
    assert (await asyncio.wait_for(error, 5)) == {
        "code": "NOT_LEADER",
        "message": "only the leader may do that",
        "event": "set_tempo",
    }
    for event in ("play", "pause", "seek", "update_message", "set_meter", "stop"):
        ack = await follower.call(
            event, {"sessionId": "gig", "position": 1, "message": "x", "beatsPerBar": 3}
        )
        assert ack["error"]["code"] == "NOT_LEADER", event
    assert (await server.service.store.get("gig")).to_dict() == before


async def test_tempo_300_is_refused(make_client, server):
    leader, _ = await band(make_client)
    version = server.service.sessions["gig"].version
    ack = await leader.call("set_tempo", {"sessionId": "gig", "tempo": 300})
    assert ack["error"]["code"] == "INVALID_TEMPO"
    assert "300" in ack["error"]["message"]
    assert server.service.sessions["gig"].version == version
    for bad in ("fast", None, True, float("inf"), -5):
        ack = await leader.call("set_tempo", {"sessionId": "gig", "tempo": bad})
        assert ack["error"]["code"] == "INVALID_TEMPO", bad


async def test_unknown_session_and_bad_payloads(make_client):
    client = await make_client("x")
    ack = await client.call("set_tempo", {"sessionId": "nowhere", "tempo": 100})
    assert ack["error"]["code"] == "SESSION_NOT_FOUND"
    ack = await client.call("sync_request", {"sessionId": "nowhere"})
    assert ack["error"]["code"] == "SESSION_NOT_FOUND"
    ack = await client.call("join_session", {"sessionId": "../../etc"})
    assert ack["error"]["code"] == "INVALID_SESSION_ID"
    ack = await client.call("join_session", ["not", "an", "object"])
    assert ack["error"]["code"] == "INVALID_PAYLOAD"
    ack = await client.call("join_session", {"sessionId": "ok", "displayName": "\x07bell"})
    assert ack["error"]["code"] == "INVALID_NAME"
    await joined(make_client, "Other", "somewhere")
    ack = await client.call("play", {"sessionId": "somewhere"})
    assert ack["error"]["code"] == "NOT_IN_SESSION"


async def test_refused_first_join_leaves_no_session_behind(make_client, server):
    client = await make_client("x")
    ack = await client.call("join_session", {"sessionId": "ghost", "displayName": ""})
    assert ack["error"]["code"] == "INVALID_NAME"
    assert await server.service.store.get("ghost") is None


async def test_ticks_at_10hz_track_elapsed_time_without_drift(make_client, server):
    leader, follower = await band(make_client)
    clock = server.service.clock
    play = follower.next("play")
    await leader.call("play", {"sessionId": "gig"})
    notice = await asyncio.wait_for(play, 5)
    start = notice["effectiveAt"]
    await asyncio.sleep(3.3)
    ticks = follower.events["scroll_tick"]
    assert 28 <= len(ticks) <= 34, len(ticks)
    lateness = []
    for received_mono, tick in ticks:
        # exact by construction: position is elapsed server time since the start
        assert tick["positionMs"] == pytest.approx(max(0.0, tick["serverTimestamp"] - start))
        # and true: compare with this process's reading of the same monotonic clock
        true_position = received_mono * 1000.0 + clock._offset_ms - start
        if tick["positionMs"] > 0:
            lateness.append(true_position - tick["positionMs"])
    assert min(lateness) >= -0.5  # a tick never claims a position ahead of the truth
    assert statistics.median(lateness) < 3.0
    intervals = [
        b[1]["serverTimestamp"] - a[1]["serverTimestamp"] for a, b in itertools.pairwise(ticks)
    ]
    assert statistics.median(intervals) == pytest.approx(100, abs=5)


async def test_pause_stops_ticks_and_seek_moves_position(make_client, server):
    leader, follower = await band(make_client)
    await leader.call("play", {"sessionId": "gig"})
    await asyncio.sleep(0.6)
    pause = follower.next("pause")
    await leader.call("pause", {"sessionId": "gig"})
    paused_at = (await asyncio.wait_for(pause, 5))["positionMs"]
    await asyncio.sleep(0.3)
    count = len(follower.events["scroll_tick"])
    await asyncio.sleep(0.5)
    assert len(follower.events["scroll_tick"]) == count
    seek = follower.next("seek")
    ack = await leader.call("seek", {"sessionId": "gig", "position": 42_000})
    assert ack["ok"]
    assert (await asyncio.wait_for(seek, 5))["positionMs"] == 42_000
    sync = await follower.call("sync_request", {"sessionId": "gig"})
    assert sync["positionMs"] == 42_000 and sync["isPlaying"] is False
    assert paused_at > 100
    ack = await leader.call("seek", {"sessionId": "gig", "position": -1})
    assert ack["error"]["code"] == "INVALID_POSITION"


async def test_sync_request_latency_probe_clock_sync_heartbeat(make_client, server):
    _leader, follower = await band(make_client)
    response = follower.next("sync_response")
    await follower.emit("sync_request", {"sessionId": "gig"})
    data = await asyncio.wait_for(response, 5)
    assert {
        "sessionId",
        "positionMs",
        "tempoBpm",
        "isPlaying",
        "serverTime",
        "serverTimestamp",
    } <= set(data)

    response = follower.next("latency_response")
    await follower.emit("latency_probe", {"timestamp": 1234.5, "sessionId": "gig"})
    data = await asyncio.wait_for(response, 5)
    assert data["clientTimestamp"] == 1234.5
    assert data["serverTimestamp"] == pytest.approx(server.service.clock.now_ms(), abs=1000)

    event = follower.next("clock_sync")
    before = server.service.clock.now_ms()
    ack = await follower.call("clock_sync", {"t0": 99.0})
    after = server.service.clock.now_ms()
    assert ack["t0"] == 99.0 and before <= ack["t1"] <= ack["t2"] <= after
    assert (await asyncio.wait_for(event, 5))["t1"] == ack["t1"]
    ack = await follower.call("clock_sync", {"t0": "now"})
    assert ack["error"]["code"] == "INVALID_PAYLOAD"

    response = follower.next("heartbeat_response")
    await follower.emit("heartbeat", {"timestamp": 7})
    assert (await asyncio.wait_for(response, 5))["timestamp"] == 7


async def test_server_heartbeats_measure_member_rtt(start_server, make_client):
    server = await start_server(heartbeat_interval_s=0.1)
    from tests.helpers.clients import Recorder

    client = await Recorder(server.url, "hb").connect()
    try:

        async def answer(data):
            # (a heartbeat may still arrive while the client closes at the end of the test)
            with contextlib.suppress(socketio.exceptions.BadNamespaceError):
                await client.emit("heartbeat_response", data)

        client.sio.on("heartbeat", answer)
        await client.call("join_session", {"sessionId": "hb", "displayName": "H"})
        await asyncio.sleep(0.6)
        link = server.service.connections[client.sid].link
        assert len(link.rtt_samples) >= 2
        assert 0 <= link.rtt_ms < 100
        snap = server.service.snapshot(server.service.sessions["hb"])
        assert snap["members"][0]["health"]["status"] == "good"
    finally:
        await client.close()


async def test_leader_disconnect_pauses_then_same_client_id_leads_again(start_server):
    server = await start_server(leader_grace_s=1.0, housekeeping_interval_s=0.05)
    from tests.helpers.clients import Recorder

    clients = []

    async def client(name, cid):
        c = await Recorder(server.url, name).connect()
        clients.append(c)
        await c.call("join_session", {"sessionId": "g", "displayName": name, "clientId": cid})
        return c

    try:
        leader = await client("L", "leader-phone")
        follower = await client("F", "follower-phone")
        await leader.call("set_role", {"sessionId": "g", "role": "leader"})
        await leader.call("play", {"sessionId": "g"})
        await asyncio.sleep(0.4)
        pause = follower.next("pause")
        role = follower.next("role_changed")
        await leader.close()
        paused = await asyncio.wait_for(pause, 5)
        assert paused["isPlaying"] is False
        assert (await asyncio.wait_for(role, 5))["leaderSocketId"] is None
        sync = await follower.call("sync_request", {"sessionId": "g"})
        assert sync["isPlaying"] is False
        # back within the grace period with the same clientId: leads again
        role = follower.next("role_changed")
        again = await client("L2", "leader-phone")
        changed = await asyncio.wait_for(role, 5)
        assert changed["leaderSocketId"] == again.sid and changed["reason"] == "returned"
        snapshot = server.service.snapshot(server.service.sessions["g"])
        assert [m["displayName"] for m in snapshot["members"]] == ["L2", "F"]  # seniority kept
    finally:
        for c in clients:
            await c.close()


async def test_after_the_grace_the_earliest_joiner_is_elected(start_server):
    server = await start_server(leader_grace_s=0.3, housekeeping_interval_s=0.05)
    from tests.helpers.clients import Recorder

    clients = [await Recorder(server.url, n).connect() for n in ("L", "A", "B")]
    try:
        for c in clients:
            await c.call("join_session", {"sessionId": "g", "displayName": c.name})
            await asyncio.sleep(0.01)
        await clients[0].call("set_role", {"sessionId": "g", "role": "leader"})
        vacancy = clients[2].next("role_changed")
        election_seen = asyncio.ensure_future(_second(clients[2], "role_changed"))
        await clients[0].close()
        assert (await asyncio.wait_for(vacancy, 5))["leaderSocketId"] is None
        t = time.monotonic()
        elected = await asyncio.wait_for(election_seen, 5)
        assert elected["leaderSocketId"] == clients[1].sid
        assert elected["reason"] == "elected"
        assert time.monotonic() - t >= 0.1  # not before the grace period
    finally:
        for c in clients:
            await c.close()


async def _second(client, event):
    await client.next(event)
    return await client.next(event)


async def test_open_session_takeover(make_client):
    a = await joined(make_client, "A")
    b = await joined(make_client, "B")
    await a.call("set_role", {"sessionId": "gig", "role": "leader"})
    role = a.next("role_changed")
    ack = await b.call("set_role", {"sessionId": "gig", "role": "leader"})
    assert ack["ok"]
    changed = await asyncio.wait_for(role, 5)
    assert changed["leaderSocketId"] == b.sid and changed["previousLeaderSocketId"] == a.sid
    ack = await a.call("set_tempo", {"sessionId": "gig", "tempo": 90})
    assert ack["error"]["code"] == "NOT_LEADER"


async def test_protected_session_needs_the_key(make_client, server):
    owner = await make_client("owner")
    ack = await owner.call("create_session", {"sessionId": "band-x", "displayName": "Owner"})
    assert ack["ok"] and ack["leaderKey"]
    key = ack["leaderKey"]
    again = await owner.call("create_session", {"sessionId": "band-x"})
    assert again["error"]["code"] == "SESSION_EXISTS"
    other = await joined(make_client, "Other", "band-x")
    snapshot = await other.call("sync_request", {"sessionId": "band-x"})
    assert key not in repr(snapshot) and key not in repr(other.events)
    ack = await other.call("set_role", {"sessionId": "band-x", "role": "leader"})
    assert ack["error"]["code"] == "LEADER_KEY_REQUIRED"
    ack = await other.call("set_role", {"sessionId": "band-x", "role": "leader", "leaderKey": "x"})
    assert ack["error"]["code"] == "LEADER_KEY_REQUIRED"
    assert server.service.sessions["band-x"].leader.socket_id == owner.sid
    ack = await other.call("set_role", {"sessionId": "band-x", "role": "leader", "leaderKey": key})
    assert ack["ok"] and server.service.sessions["band-x"].leader.socket_id == other.sid
    # hand-over back, by the current leader
    ack = await other.call("hand_over", {"sessionId": "band-x", "to": owner.sid})
    assert ack["ok"] and server.service.sessions["band-x"].leader.socket_id == owner.sid


async def test_expiry_with_a_fake_clock(start_server):
    clock = ManualClock()
    server = await start_server(clock=clock, idle_expiry_s=1800)
    from tests.helpers.clients import Recorder

    stay = await Recorder(server.url, "stay").connect()
    gone = await Recorder(server.url, "gone").connect()
    try:
        await stay.call("join_session", {"sessionId": "busy", "displayName": "S"})
        await gone.call("join_session", {"sessionId": "idle", "displayName": "G"})
        await gone.call("leave_session", {"sessionId": "idle"})
        clock.advance(29 * 60_000)
        assert await server.service.expire_idle() == []
        clock.advance(60_001)
        assert await server.service.expire_idle() == ["idle"]
        assert sorted(await server.service.store.session_ids()) == ["busy"]
        ack = await gone.call("sync_request", {"sessionId": "idle"})
        assert ack["error"]["code"] == "SESSION_NOT_FOUND"
    finally:
        await stay.close()
        await gone.close()


async def test_rate_limit_refuses_but_keeps_the_connection(start_server):
    server = await start_server(rate_limit_per_s=5, rate_limit_burst=5)
    from tests.helpers.clients import Recorder

    client = await Recorder(server.url, "flood").connect()
    try:
        acks = [await client.call("latency_probe", {"timestamp": i}) for i in range(12)]
        codes = [a.get("error", {}).get("code") for a in acks]
        assert codes[:5] == [None] * 5
        assert codes.count("RATE_LIMITED") >= 6
        assert client.sio.connected
        await asyncio.sleep(0.5)
        assert (await client.call("latency_probe", {"timestamp": 1}))["ok"]
    finally:
        await client.close()


async def test_members_per_session_are_capped(start_server):
    server = await start_server(max_members=2)
    from tests.helpers.clients import Recorder

    clients = [await Recorder(server.url, str(i)).connect() for i in range(3)]
    try:
        acks = [
            await c.call("join_session", {"sessionId": "s", "displayName": c.name}) for c in clients
        ]
        assert [a["ok"] for a in acks] == [True, True, False]
        assert acks[2]["error"]["code"] == "SESSION_FULL"
    finally:
        for c in clients:
            await c.close()


async def test_messages_songs_meter_count_in(make_client, server):
    leader, follower = await band(make_client)
    updated = follower.next("message_updated")
    assert (await leader.call("update_message", {"sessionId": "gig", "message": "Encore!"}))["ok"]
    assert (await asyncio.wait_for(updated, 5))["message"] == "Encore!"
    assert (await leader.call("set_meter", {"sessionId": "gig", "beatsPerBar": 7, "beatUnit": 8}))[
        "ok"
    ]
    assert (await leader.call("set_count_in", {"sessionId": "gig", "bars": 2}))["ok"]
    song = follower.next("song_changed")
    ack = await leader.call(
        "set_song",
        {
            "sessionId": "gig",
            "song": {
                "title": "Cold Sweat",
                "chart": "E9 | E9",
                "tempo": 112,
                "beatsPerBar": 4,
                "beatUnit": 4,
            },
        },
    )
    assert ack["ok"]
    assert (await asyncio.wait_for(song, 5))["song"]["title"] == "Cold Sweat"
    snap = server.service.snapshot(server.service.sessions["gig"])
    assert (snap["tempo"], snap["beatsPerBar"], snap["countInBars"]) == (112, 4, 2)
    ack = await leader.call("set_song", {"sessionId": "gig", "song": {"title": ""}})
    assert ack["error"]["code"] == "INVALID_SONG"
    ack = await leader.call("set_meter", {"sessionId": "gig", "beatsPerBar": 0})
    assert ack["error"]["code"] == "INVALID_METER"


async def test_timeline_clients_get_no_ticks(make_client):
    leader, follower = await band(make_client)
    modern = await joined(make_client, "Modern", capabilities=["timeline"])
    await leader.call("play", {"sessionId": "gig"})
    await asyncio.sleep(0.7)
    assert follower.events["scroll_tick"]
    assert not modern.events["scroll_tick"]
    assert modern.last("snapshot")["isPlaying"] is True


async def test_remove_member_and_reattach_on_new_socket(make_client, server):
    leader, follower = await band(make_client)
    removed = follower.next("removed")
    ack = await leader.call("remove_member", {"sessionId": "gig", "member": follower.sid})
    assert ack["ok"]
    await asyncio.wait_for(removed, 5)
    assert follower.sid not in {
        m.socket_id for m in server.service.sessions["gig"].members.values()
    }
    ack = await follower.call("play", {"sessionId": "gig"})
    assert ack["error"]["code"] == "NOT_IN_SESSION"


async def test_health_endpoint(server, make_client):
    import aiohttp

    await joined(make_client, "A")
    async with aiohttp.ClientSession() as http, http.get(server.url + "/health") as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["store"] == {"kind": "memory", "state": "memory"}
    assert body["sessions"] == 1 and body["connections"] == 1
    assert {"p50Ms", "p99Ms", "maxMs"} <= set(body["eventLoopLag"])
    assert "leaderKey" not in repr(body)


async def test_room_snapshots_never_go_back_a_version(make_client, server):
    """A change that finished first may publish last; the room then gets the newest state."""
    leader, follower = await band(make_client)
    service = server.service
    stale = service.sessions["gig"]
    newer = follower.next("snapshot")
    await leader.call("set_tempo", {"sessionId": "gig", "tempo": 100, "quantize": "now"})
    newest = (await asyncio.wait_for(newer, 5))["version"]
    assert stale.version < newest
    late = follower.next("snapshot")
    await service._send_snapshot(stale, room="gig")  # the slow publisher of the older change
    got = await asyncio.wait_for(late, 5)
    assert (got["version"], got["tempo"]) == (newest, 100)
