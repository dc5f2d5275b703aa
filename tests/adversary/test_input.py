"""Finding 10: input that is not a clear error anywhere else gets one here, and changes nothing.

A packet nested ~1,500 deep raised ``RecursionError`` past the packet guard (a 3.5 KB
traceback each, not rate limited); NaN, +-Infinity and 1e309 in whole-number fields answered
``INTERNAL`` with a traceback, from followers too.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import aiohttp
import pytest

from bandsync_desktop.core.errors import ErrorCode
from tests.helpers.clients import Recorder, expect_ok

pytestmark = pytest.mark.asyncio

NOT_FINITE = [math.nan, math.inf, -math.inf, 1e309]  # 1e309 parses as infinity

#: Every numeric field a phone may send, with the event that carries it.
NUMERIC_FIELDS = [
    ("set_tempo", lambda v: {"tempo": v}),
    ("set_meter", lambda v: {"beatsPerBar": v, "beatUnit": 4}),
    ("set_meter", lambda v: {"beatsPerBar": 4, "beatUnit": v}),
    ("set_count_in", lambda v: {"bars": v}),
    ("play", lambda v: {"countInBars": v}),
    ("seek", lambda v: {"position": v}),
    ("set_song", lambda v: {"song": {"title": "T", "tempo": v}}),
    ("set_song", lambda v: {"song": {"title": "T", "beatsPerBar": v}}),
    ("set_song", lambda v: {"song": {"title": "T", "countInBars": v}}),
    ("latency_probe", lambda v: {"timestamp": v}),
    ("clock_sync", lambda v: {"t0": v}),
    ("sync_report", lambda v: {"rttMs": v}),
]


@pytest.mark.parametrize("who", ["leader", "follower"])
@pytest.mark.parametrize(("event", "fields"), NUMERIC_FIELDS)
async def test_numbers_that_are_not_finite_are_a_clear_error(
    server: Any, make_client: Any, who: str, event: str, fields: Any
) -> None:
    leader = await make_client("leader")
    await expect_ok(leader, "join_session", {"sessionId": "gig", "role": "leader"})
    follower = await make_client("follower")
    await expect_ok(follower, "join_session", {"sessionId": "gig"})
    client = leader if who == "leader" else follower
    before = (await server.service.store.get("gig")).to_dict()
    for value in NOT_FINITE:
        ack = await client.call(event, {"sessionId": "gig", **fields(value)})
        assert ack["ok"] is False, (event, value, ack)
        assert ack["error"]["code"] != ErrorCode.INTERNAL, (event, value, ack)
    assert (await server.service.store.get("gig")).to_dict() == before


async def _raw_socket(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(
        url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    )
    assert (await ws.receive_str()).startswith("0")
    await ws.send_str("40")
    assert (await ws.receive_str()).startswith("40")
    return ws


async def _next_event(ws: aiohttp.ClientWebSocketResponse, name: str) -> Any:
    while True:
        text = await asyncio.wait_for(ws.receive_str(), 5)
        if text == "2":
            await ws.send_str("3")
            continue
        if text.startswith("42"):
            event, *args = json.loads(text[2:])
            if event == name:
                return args[0] if args else None


@pytest.mark.parametrize("depth", [1_500, 20_000])
@pytest.mark.parametrize("shape", ["list", "object"])
async def test_a_deeply_nested_packet_is_a_clear_error_and_no_traceback(
    server: Any, depth: int, shape: str
) -> None:
    nested = {
        "list": "[" * depth + "]" * depth,
        "object": '{"a":' * depth + "1" + "}" * depth,
    }[shape]
    band = await Recorder(server.url, "band").connect()
    async with aiohttp.ClientSession() as http:
        ws = await _raw_socket(http, server.url)
        try:
            await expect_ok(band, "join_session", {"sessionId": "gig", "role": "leader"})
            await ws.send_str('42["set_tempo",' + nested + "]")
            error = await _next_event(ws, "error")
            assert error["code"] == ErrorCode.INVALID_PAYLOAD
            # the connection is kept and still answered
            await ws.send_str('42["sync_request",{"sessionId":"gig"}]')
            response = await _next_event(ws, "sync_response")
            assert response["sessionId"] == "gig"
            await expect_ok(band, "set_tempo", {"sessionId": "gig", "tempo": 101})
        finally:
            await ws.close()
            await band.close()
    # (an ERROR record with a traceback would fail this test: tests/helpers/logfail.py)


@pytest.mark.parametrize(
    "name",
    ["Console", " console ", "CONSOLE", "Ana\u202eSSAB", "\u2067Lead\u2069", "x\u200fy"],
)
async def test_a_name_cannot_pose_as_the_console_or_reorder_what_others_see(
    server: Any, make_client: Any, name: str
) -> None:
    phone = await make_client("phone")
    ack = await phone.call("join_session", {"sessionId": "gig", "displayName": name})
    assert ack["ok"] is False and ack["error"]["code"] == ErrorCode.INVALID_NAME, ack
    assert await server.service.store.get("gig") is None  # no session made for it


async def test_names_in_any_script_and_with_emoji_are_fine(server: Any, make_client: Any) -> None:
    for i, name in enumerate(("Zoë 🎸", "Ana (drums)", "יעל", "سارة", "李雷", "👩🏽‍🎤 Kim")):
        phone = await make_client(f"phone {i}")
        ack = await phone.call("join_session", {"sessionId": "gig", "displayName": name})
        assert ack["ok"] is True, (name, ack)
