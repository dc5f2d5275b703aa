"""Floods: what one hostile phone's packets and membership churn cost the band (finding 4).

A real server on loopback; the band is real socket.io clients, the attacker speaks Engine.IO
by hand from another loopback address (127.0.0.2), the way a script on the venue Wi-Fi would:
a websocket whose frames are written in bulk (as fast as the socket takes them), or
long-polling POSTs of 16 packets each. Each test checks the band's side (the leader's
``set_tempo`` changes keep going through, a quiet member's traffic stays bounded), the
attacker's side (dropped unread, told a handful of times, cut off when it keeps on) and that
a legitimate page's bursts are never refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiohttp
import pytest

from bandsync_desktop.core.errors import ErrorCode

from ..helpers.clients import Recorder
from ..helpers.rawsocket import RawWebSocket

pytestmark = pytest.mark.asyncio

ATTACKER = "127.0.0.2"
FLOOD_FRAMES = 20_000
#: Of the ~20 tempo changes the leader sends in 2 s under attack, at least this many are
#: answered, none slower than MAX_ACK_S. Before the fix: 2 answered, in 1.3 and 2.2 s.
MIN_ACKS = 10
MAX_ACK_S = 1.0
CUT_LOG = r"closed a connection from 127\.0\.0\.2: it kept sending over its budget"
PROBE = '42["latency_probe",{"timestamp":1}]'


def assert_band_served(latencies: list[float]) -> None:
    """The leader's changes kept going through during the flood. Before the fix a flood let
    2 of them through in 2 s, each taking 1.3-2.2 s. (How fast they are under attack is a
    figure, not a pass mark for a unit test: bench/flood_bench.py, bench/hostile_bench.py.)"""
    assert len(latencies) >= MIN_ACKS, sorted(latencies)[-5:]
    assert max(latencies) < MAX_ACK_S, sorted(latencies)[-5:]


def rate_limited(texts: list[str]) -> int:
    """How many Socket.IO ``error {code: RATE_LIMITED}`` events are among Engine.IO texts."""
    count = 0
    for text in texts:
        if text.startswith('42["error"'):
            count += json.loads(text[2:])[1]["code"] == ErrorCode.RATE_LIMITED
    return count


async def playing_band(url: str, session: str = "band") -> tuple[Recorder, Recorder]:
    leader = await Recorder(url, "leader").connect()
    ack = await leader.call("join_session", {"sessionId": session, "role": "leader"})
    assert ack["ok"], ack
    follower = await Recorder(url, "follower").connect()
    assert (await follower.call("join_session", {"sessionId": session}))["ok"]
    assert (await leader.call("play", {"sessionId": session}))["ok"]
    await follower.wait_for("scroll_tick", 3)
    return leader, follower


async def tempo_acks(leader: Recorder, seconds: float, session: str = "band") -> list[float]:
    """The leader changes tempo every 100 ms for ``seconds``: each ack's latency (s)."""
    latencies = []
    stop = time.monotonic() + seconds
    tempo = 100
    while time.monotonic() < stop:
        tempo = 100 + (tempo + 1) % 50
        sent = time.monotonic()
        ack = await leader.call("set_tempo", {"sessionId": session, "tempo": tempo}, timeout=20)
        latencies.append(time.monotonic() - sent)
        assert ack["ok"], ack
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - sent)))
    return latencies


async def close_all(*clients: Recorder) -> None:
    for client in clients:
        await client.close()


@pytest.mark.expect_log(CUT_LOG)
async def test_a_websocket_flood_is_dropped_unread_and_the_flooder_cut_off(server):
    leader, follower = await playing_band(server.url)
    flooder = await RawWebSocket.open("127.0.0.1", server.port, ATTACKER)
    received: list[str] = []
    try:
        await flooder.handshake()

        async def read() -> None:
            while (text := await flooder.receive()) is not None:
                received.append(text)

        async def flood() -> int:
            chunk = RawWebSocket.frames(PROBE, 500)
            sent = 0
            with contextlib.suppress(ConnectionError):
                while sent < FLOOD_FRAMES and not flooder.writer.is_closing():
                    flooder.writer.write(chunk)
                    await flooder.writer.drain()
                    sent += 500
                    await asyncio.sleep(0)
            return sent

        reader = asyncio.ensure_future(read())
        started = time.monotonic()
        flooding = asyncio.ensure_future(flood())
        latencies = await tempo_acks(leader, 2.0)
        sent = await flooding
        hung_up, _ = await asyncio.wait({reader}, timeout=5)  # the server closed on it?
        cut_after = time.monotonic() - started
        reader.cancel()
    finally:
        flooder.close()
        await close_all(leader, follower)
    assert_band_served(latencies)
    assert hung_up, f"the flooder was not cut off ({sent} frames sent)"
    assert sent >= 1000 and cut_after < 5
    assert rate_limited(received) <= 3, rate_limited(received)  # told, not answered
    answered = sum(text.startswith('42["latency_response"') for text in received)
    assert answered <= 60 * 4  # at most the frame burst got as far as a handler


@pytest.mark.expect_log(CUT_LOG)
async def test_a_long_polling_flood_is_dropped_unread_and_the_flooder_cut_off(server):
    leader, follower = await playing_band(server.url)
    base = server.url + "/socket.io/?EIO=4&transport=polling"
    connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
    received: list[str] = []
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(base) as response:
                sid = json.loads((await response.text())[1:])["sid"]
            url = f"{base}&sid={sid}"
            async with http.post(url, data="40") as response:
                assert response.status == 200
            async with http.get(url) as response:
                assert (await response.text()).startswith("40")

            async def poll() -> None:
                while True:
                    async with http.get(url) as response:
                        if response.status != 200:
                            return
                        text = await response.text()
                    received.extend(text.split("\x1e"))
                    if "1" in received:  # CLOSE
                        return

            body = "\x1e".join([PROBE] * 16)  # python-engineio decodes at most 16 a POST
            statuses: list[int] = []

            async def flood() -> None:
                while len(statuses) * 16 < FLOOD_FRAMES:
                    async with http.post(url, data=body) as response:
                        statuses.append(response.status)
                        if response.status != 200:
                            return

            poller = asyncio.ensure_future(poll())
            floods = asyncio.gather(*(flood() for _ in range(4)))
            latencies = await tempo_acks(leader, 2.0)
            await asyncio.wait({floods, poller}, timeout=10)
            floods.cancel()
            poller.cancel()
    finally:
        await close_all(leader, follower)
    assert_band_served(latencies)
    assert 400 in statuses  # the session was closed: its sid is no longer known
    assert len(statuses) * 16 < FLOOD_FRAMES / 2  # long before the flood was through
    assert rate_limited(received) <= 3, rate_limited(received)


async def test_refusals_for_the_event_rate_are_told_once_a_second(start_server):
    """The Socket.IO-level limit: a client over its event budget gets one ``error`` event a
    second, however many events were refused; an ack, when asked for, still answers."""
    server = await start_server(rate_limit_per_s=5, rate_limit_burst=5)
    client = await Recorder(server.url, "eager").connect()
    try:
        for i in range(10):  # (within the frame budget, 3x the event budget: all are read)
            await client.emit("latency_probe", {"timestamp": i})
        acks = [await client.call("latency_probe", {"timestamp": i}) for i in range(3)]
        await asyncio.sleep(0.3)
        assert all(a["error"]["code"] == "RATE_LIMITED" for a in acks)
        assert len(client.payloads("latency_response")) <= 6
        assert [e["code"] for e in client.payloads("error")] == ["RATE_LIMITED"]
        assert client.sio.connected
    finally:
        await client.close()


async def test_a_burst_of_membership_changes_is_refused_beyond_its_budget(server, make_client):
    quiet = await make_client("quiet")
    assert (await quiet.call("join_session", {"sessionId": "s", "displayName": "Q"}))["ok"]
    churner = await make_client("churner")
    acks = []
    for i in range(12):
        event = "join_session" if i % 2 == 0 else "leave_session"
        acks.append(await churner.call(event, {"sessionId": "s", "displayName": "C"}))
    codes = [a.get("error", {}).get("code") for a in acks]
    assert codes[:5] == [None] * 5  # a burst of five
    assert codes[5:] == ["RATE_LIMITED"] * 7  # then nothing changes ...
    assert server.service.sessions["s"].member_by_socket(churner.sid) is not None  # (5th: in)
    assert [e["code"] for e in churner.payloads("error")] == ["RATE_LIMITED"]  # ... told once
    assert (await churner.call("sync_request", {"sessionId": "s"}))["ok"]  # other events pass
    # a refusal for anything else changed nothing, so it costs no membership budget
    await asyncio.sleep(0.6)  # one token back
    for _ in range(3):
        ack = await churner.call("join_session", {"sessionId": "no spaces allowed"})
        assert ack["error"]["code"] == "INVALID_SESSION_ID"
    assert (await churner.call("leave_session", {"sessionId": "s"}))["ok"]


async def test_a_join_and_leave_within_the_window_costs_the_room_nothing(server, make_client):
    quiet = await make_client("quiet")
    assert (await quiet.call("join_session", {"sessionId": "s", "displayName": "Q"}))["ok"]
    await asyncio.sleep(0.4)
    quiet.clear()
    stays = await make_client("stays")
    assert (await stays.call("join_session", {"sessionId": "s", "displayName": "Stays"}))["ok"]
    joined = await quiet.wait_for("user_joined", 2)  # a single join: user_joined to the room
    assert joined["member"]["displayName"] == "Stays"
    quiet.clear()
    passes = await make_client("passes")
    assert (await passes.call("join_session", {"sessionId": "s", "displayName": "Passes"}))["ok"]
    assert (await passes.call("leave_session", {"sessionId": "s"}))["ok"]
    await asyncio.sleep(0.6)
    assert quiet.payloads("user_joined") == [] and quiet.payloads("user_left") == []
    names = [m["displayName"] for m in quiet.last("snapshot")["members"]]
    assert sorted(names) == ["Q", "Stays"]
    # a member whose join was announced is announced leaving, at once
    quiet.clear()
    await stays.close()
    left = await quiet.wait_for("user_left", 2)
    assert left["displayName"] == "Stays"


async def test_membership_churn_does_not_multiply_into_a_members_traffic(server, make_client):
    quiet = await make_client("quiet")
    assert (await quiet.call("join_session", {"sessionId": "s", "displayName": "Q"}))["ok"]
    churner = await make_client("churner")
    await asyncio.sleep(0.4)
    quiet.clear()
    started = time.monotonic()
    changes = 0
    while time.monotonic() - started < 3.0:  # join/leave at 25 events/s: within 30/s
        event = "join_session" if changes % 2 == 0 else "leave_session"
        await churner.emit(event, {"sessionId": "s", "displayName": "Churn"})
        changes += 1
        await asyncio.sleep(0.04)
    await asyncio.sleep(0.5)
    counts = {event: len(items) for event, items in quiet.events.items() if event != "heartbeat"}
    total = sum(counts.values())
    assert changes >= 60
    # ~13 changes get through in 3 s (5 + 2/s); each costs the room at most a notice, a
    # snapshot and room_stats (before: every change, ~75 notices + 24 snapshots/stats)
    assert total <= 40, counts
    assert counts.get("user_joined", 0) + counts.get("user_left", 0) <= 14, counts
    # and what the quiet member was told adds up to the truth
    session = server.service.sessions["s"]
    assert sorted(m["displayName"] for m in quiet.last("snapshot")["members"]) == sorted(
        m.display_name for m in session.members.values()
    )


@pytest.mark.parametrize(("transport", "gap"), [("websocket", 0.0), ("polling", 0.05)])
async def test_a_follower_pages_clock_sync_bursts_are_never_refused(server, transport, gap):
    """What web/app.js sends: join, 16 ``clock_sync`` 50 ms apart, a ``sync_report``; on
    coming back to the foreground 6 more; and one every 500 ms. On the websocket the bursts
    go all at once (a phone that was asleep); long-polling as the page spaces them (the
    Python client cannot take more than 16 packets in one poll's answer)."""
    page = Recorder(server.url, "page")
    await page.connect(transports=[transport])
    try:
        join = {"sessionId": "band", "displayName": "Phone", "capabilities": ["timeline"]}
        assert (await page.call("join_session", join))["ok"]

        async def sample(i: int) -> dict:
            await asyncio.sleep(i * gap)
            return await page.call("clock_sync", {"t0": float(i)})

        acks = list(await asyncio.gather(*(sample(i) for i in range(16 + 6))))
        report = {"rttMs": 3.0, "offsetMs": 0.5, "uncertaintyMs": 1.5}
        acks.append(await page.call("sync_report", report))
        for i in range(4):
            await asyncio.sleep(0.5)
            acks.append(await page.call("clock_sync", {"t0": 100.0 + i}))
            acks.append(await page.call("heartbeat_response", {"timestamp": 1.0}))
        assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]]
        assert page.payloads("error") == []
    finally:
        await page.close()
