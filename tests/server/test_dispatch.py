"""Events dispatched without a task each (``BandSyncSocketServer.dispatch_event``).

A websocket's plain EVENT messages are parsed once and their handlers run at once, corked:
what a command sends (its notice, the snapshot, the ack) leaves in one write. These pin what
must not change with it: the packets and their order are those of python-socketio's own path
(``fast_events = False``), a handler that waits carries on as a task without holding up its
connection or any other, and what the fast path does not take (an unknown event, a binary
result, malformed packets) is answered as before.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from bandsync_desktop.server.engine import LeanSocket, bounded_int, parse_event

from ..helpers.rawsocket import RawWebSocket

pytestmark = pytest.mark.asyncio


async def leader_socket(server: Any, session_id: str = "dispatch") -> RawWebSocket:
    """A raw websocket joined to ``session_id`` as its leader (the join's packets read)."""
    ws = await RawWebSocket.open("127.0.0.1", server.port, "127.0.0.1")
    await ws.handshake()
    await ws.send("420" + json.dumps(["join_session", {"sessionId": session_id, "role": "leader"}]))
    await until_ack(ws, 0)
    return ws


async def until_ack(ws: RawWebSocket, ack_id: int, timeout: float = 5.0) -> list[str]:
    """Every message up to and including the ack of ``ack_id`` (pings answered)."""
    received: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            text = await ws.receive()
            assert text is not None, f"closed before ack {ack_id}: {received}"
            if text == "2":
                await ws.send("3")
                continue
            received.append(text)
            if re.match(rf"43{ack_id}\[", text):
                return received


def shape(text: str) -> str:
    """A message without its values: the event's name, or the ack's id and ok."""
    if text.startswith("42"):
        return "event " + json.loads(text[2:])[0]
    match = re.match(r"43(\d+)(.*)", text)
    if match:
        data = json.loads(match.group(2))
        return f"ack {match.group(1)} ok={data[0].get('ok') if data else None}"
    return text


def the_socket(server: Any) -> LeanSocket:
    (socket,) = server.sio.eio.sockets.values()
    assert isinstance(socket, LeanSocket)
    return socket


class CountingTransport:
    """A transport that counts the writes made to it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


SCRIPT = [
    ["set_tempo", {"sessionId": "dispatch", "tempo": 131}],
    ["latency_probe", {"timestamp": 5}],
    ["sync_request", {"sessionId": "dispatch"}],
    ["set_tempo", {"sessionId": "dispatch", "tempo": 1000}],  # refused: an error, then the ack
    ["play", {"sessionId": "dispatch"}],
    ["clock_sync", {"t0": 1}],
]


PLAY_AND_CLOCK_SYNC = [
    "event play",
    "event snapshot",
    "ack 5 ok=True",
    "event clock_sync",
    "ack 6 ok=True",
]


async def run_script(server: Any) -> list[str]:
    ws = await leader_socket(server)
    try:
        shapes: list[str] = []
        for i, event in enumerate(SCRIPT, start=1):
            await ws.send(f"42{i}" + json.dumps(event))
            shapes += [shape(text) for text in await until_ack(ws, i)]
        return shapes
    finally:
        ws.close()


@pytest.mark.parametrize("fast", [True, False])
async def test_the_packets_and_their_order_are_python_socketios(start_server, fast):
    server = await start_server()
    server.sio.fast_events = fast
    shapes = await run_script(server)
    assert shapes[:9] == [
        "event tempo_changed",
        "event snapshot",
        "ack 1 ok=True",
        "event latency_response",
        "ack 2 ok=True",
        "event sync_response",
        "ack 3 ok=True",
        "event error",
        "ack 4 ok=False",
    ]
    assert shapes[9:] == PLAY_AND_CLOCK_SYNC


async def test_the_paths_send_the_same_packets(start_server):
    fast, slow = await start_server(), await start_server()
    slow.sio.fast_events = False
    assert await run_script(fast) == await run_script(slow)


async def test_what_one_command_sends_its_leader_is_one_write(server):
    ws = await leader_socket(server)
    try:
        socket = the_socket(server)
        counting = CountingTransport(socket.transport)
        socket.transport = counting  # type: ignore[assignment]
        await ws.send("427" + json.dumps(["set_tempo", {"sessionId": "dispatch", "tempo": 90}]))
        shapes = [shape(text) for text in await until_ack(ws, 7)]
    finally:
        ws.close()
    assert shapes == ["event tempo_changed", "event snapshot", "ack 7 ok=True"]
    assert len(counting.writes) == 1, counting.writes


async def test_a_handler_that_waits_holds_up_neither_its_connection_nor_another(server):
    release = asyncio.Event()
    started: list[str] = []

    async def wait_here(sid: str, data: Any = None) -> dict[str, Any]:
        started.append(sid)
        await release.wait()
        return {"ok": True, "waited": data}

    server.sio.on("wait_here", wait_here)
    ws = await leader_socket(server)
    other = await leader_socket(server, "elsewhere")
    try:
        await ws.send("4211" + json.dumps(["wait_here", {"n": 1}]))
        await ws.send("4212" + json.dumps(["latency_probe", {"timestamp": 1}]))
        first = await until_ack(ws, 12)  # answered while wait_here waits
        assert not any(text.startswith("4311") for text in first)
        await other.send("423" + json.dumps(["latency_probe", {"timestamp": 2}]))
        await until_ack(other, 3)
        assert len(started) == 1
        release.set()
        (ack,) = [t for t in await until_ack(ws, 11) if t.startswith("43")]
        assert json.loads(ack[4:]) == [{"ok": True, "waited": {"n": 1}}]
    finally:
        ws.close()
        other.close()


async def test_acks_are_encoded_as_python_socketio_encodes_them(start_server):
    results: dict[str, Any] = {"none": None, "pair": (1, "two"), "bytes": b"\x00\x01"}
    received: dict[bool, list[str]] = {}
    for fast in (True, False):
        server = await start_server()
        server.sio.fast_events = fast
        for name, value in results.items():

            async def handler(sid: str, data: Any = None, value: Any = value) -> Any:
                return value

            server.sio.on(f"result_{name}", handler)
        ws = await RawWebSocket.open("127.0.0.1", server.port, "127.0.0.1")
        await ws.handshake()
        try:
            texts = []
            # a leading zero in the id, each result kind, then an event without an ack id
            for i, name in enumerate(results):
                await ws.send(f"420{i}" + json.dumps([f"result_{name}", {}]))
                texts.append(await ws.receive())
                if name == "bytes":
                    texts.append(await ws.receive())  # the attachment
            await ws.send("42" + json.dumps(["latency_probe", {"timestamp": 3}]))
            texts.append(shape(await ws.receive() or ""))
        finally:
            ws.close()
        received[fast] = texts
    assert received[True] == received[False]
    assert received[True][:2] == ["430[]", '431[1,"two"]']
    assert received[True][-1] == "event latency_response"


async def test_an_unknown_event_gets_no_ack_and_the_connection_goes_on(server):
    ws = await leader_socket(server)
    try:
        await ws.send("425" + json.dumps(["no_such_event", {}]))
        await ws.send("426" + json.dumps(["latency_probe", {"timestamp": 1}]))
        shapes = [shape(text) for text in await until_ack(ws, 6)]
    finally:
        ws.close()
    assert shapes == ["event latency_response", "ack 6 ok=True"]


@pytest.mark.parametrize(
    "text",
    ["42[", "421[1]", "42[]", '42{"a":1}', '423["connect",{}]'],
)
async def test_malformed_events_are_answered_by_the_guard(server, text):
    ws = await leader_socket(server)
    try:
        await ws.send(text)
        await ws.send("429" + json.dumps(["latency_probe", {"timestamp": 1}]))
        shapes = [shape(t) for t in await until_ack(ws, 9)]
    finally:
        ws.close()
    assert shapes == ["event error", "event latency_response", "ack 9 ok=True"]


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_parse_event_takes_only_plain_events_of_the_default_namespace():
    loads = json.loads
    assert parse_event('42["a",1]', loads) == (None, ["a", 1])
    assert parse_event('42007["a"]', loads) == (7, ["a"])
    for text in (
        '42/chat,["a"]',  # another namespace
        '421-["a",{"_placeholder":true,"num":0}]',  # binary attachments
        "42" + "1" * 16 + '["a"]',  # an ack id python-socketio refuses
        '42["a"',
        "42[1]",
        "42[]",
        '42{"a":1}',
        "42",
        "42[" * 3000,
    ):
        assert parse_event(text, loads) is None, text
    bounded = json.JSONDecoder(parse_int=bounded_int).decode  # what the server parses with
    assert parse_event('42["a",' + "9" * 100 + "]", bounded) == (None, ["a", int("9" * 100)])
    assert parse_event('42["a",' + "9" * 101 + "]", bounded) is None  # left to the guard
