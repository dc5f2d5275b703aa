"""The tick fan-out (``server/fanout.py``) against the installed python-socketio/engineio/aiohttp.

It reaches into python-socketio's rooms and our Engine.IO sockets, so these tests pin what it
relies on: websockets come up without permessage-deflate, ticks reach websocket and
long-polling clients alike, timeline clients get none, a stalled reader is skipped.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bandsync_desktop.server.app import FANOUT

from ..helpers.clients import Recorder


async def _join(client, session, **extra):
    ack = await client.call("join_session", {"sessionId": session, **extra})
    assert ack["ok"], ack
    return ack


@pytest.mark.asyncio
async def test_websocket_refuses_permessage_deflate(server):
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
        opening = await ws.receive_str(timeout=5)
        assert opening.startswith("0{")
        assert ws.compress == 0  # offered, not accepted
        assert "Sec-WebSocket-Extensions" not in ws._response.headers


@pytest.mark.asyncio
async def test_ticks_reach_websocket_and_polling_legacy_clients_only(server, make_client):
    leader = await make_client("leader")
    await _join(leader, "fan", role="leader", capabilities=["timeline"])
    on_ws = await make_client("ws")
    await _join(on_ws, "fan")
    on_polling = Recorder(server.url, "polling")
    await on_polling.connect(transports=["polling"])
    try:
        await _join(on_polling, "fan")
        await _check_ticks(server, leader, on_ws, on_polling)
    finally:
        await on_polling.close()


async def _check_ticks(server, leader, on_ws, on_polling):
    fanout = server.app[FANOUT]
    before = (fanout.stats.direct, fanout.stats.queued)

    first_ws, first_polling = on_ws.next("scroll_tick"), on_polling.next("scroll_tick")
    assert (await leader.call("play", {"sessionId": "fan"}))["ok"]
    tick_ws = await asyncio.wait_for(first_ws, 3)
    tick_polling = await asyncio.wait_for(first_polling, 3)
    await on_ws.wait_for("scroll_tick", 3)

    for tick in (tick_ws, tick_polling):
        assert tick["sessionId"] == "fan"
        assert set(tick) >= {"positionMs", "tempoBpm", "serverTimestamp"}
    assert fanout.stats.direct > before[0]  # the websocket client: framed once, written
    assert fanout.stats.queued > before[1]  # the polling client: through its queue
    assert leader.payloads("scroll_tick") == []  # a timeline client: no ticks


@pytest.mark.asyncio
async def test_a_stalled_reader_misses_ticks_instead_of_queueing_them(server, make_client):
    leader = await make_client("leader")
    await _join(leader, "stall", role="leader", capabilities=["timeline"])
    follower = await make_client("follower")
    await _join(follower, "stall")
    fanout = server.app[FANOUT]
    fanout.max_buffered_bytes = -1  # every transport counts as stalled
    assert (await leader.call("play", {"sessionId": "stall"}))["ok"]
    await asyncio.sleep(0.5)
    assert fanout.stats.dropped_slow >= 2
    assert follower.payloads("scroll_tick") == []
    fanout.max_buffered_bytes = 64 * 1024
    assert (await follower.wait_for("scroll_tick", 3))["sessionId"] == "stall"


@pytest.mark.asyncio
async def test_heartbeats_go_through_the_fanout_to_every_member(start_server, make_client):
    server = await start_server(heartbeat_interval_s=0.2)
    client = await make_client("member", url=server.url)
    await _join(client, "hb", capabilities=["timeline"])
    beat = await client.wait_for("heartbeat", 3)
    assert isinstance(beat["timestamp"], float)


@pytest.mark.asyncio
async def test_room_snapshots_go_through_the_fanout_and_are_never_dropped(server, make_client):
    leader = await make_client("leader")
    await _join(leader, "snap", role="leader", capabilities=["timeline"])
    follower = await make_client("follower")
    await _join(follower, "snap", capabilities=["timeline"])
    fanout = server.app[FANOUT]
    fanout.max_buffered_bytes = -1  # every transport counts as stalled: ticks would be skipped
    try:
        before = fanout.stats.direct
        snapshot = follower.next("snapshot")
        assert (await leader.call("set_tempo", {"sessionId": "snap", "tempo": 133}))["ok"]
        assert (await asyncio.wait_for(snapshot, 3))["tempo"] == 133
        assert fanout.stats.direct >= before + 2  # leader and follower: one frame, written
    finally:
        fanout.max_buffered_bytes = 64 * 1024
