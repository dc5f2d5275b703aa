"""Hostile input, generated: random and malformed payloads of every event at a real server.

Hypothesis drives real socket.io clients (and, for the packet layer, a raw websocket)
against one real server per test. Properties, checked after every example:

* nothing that was refused changed anything: every session in the store is exactly as it
  was (``Session.to_dict``, which includes ``version``), and no session appeared or vanished;
* a refusal is clear: the ack says ``{ok: false, error: {code, message, event}}`` with a
  documented code (never ``INTERNAL``), and the same ``error`` event reached the sender;
* nothing crashes: no handler logs an exception (``tests/helpers/logfail.py`` fails the test
  on any WARNING or worse), and the server still serves its members afterwards.

The rate limit is lifted in these servers so that every example reaches validation; the
limits themselves are tested in ``test_limits.py``. Hypothesis runs examples synchronously,
so the server and its clients live on an event loop in a thread of their own (``Arena``)
and each example hands its coroutine to that loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandsync_desktop.config import Settings
from bandsync_desktop.core.errors import ErrorCode
from bandsync_desktop.server.app import ServerRunner, create_app

from ..helpers.clients import Recorder

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
UNLIMITED = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
CODES = {str(code) for code in ErrorCode} - {str(ErrorCode.INTERNAL)}
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: Events that may succeed for a plain member without changing any session.
READ_ONLY = {
    "sync_request",
    "latency_probe",
    "clock_sync",
    "heartbeat",
    "heartbeat_response",
    "sync_report",
}
MEMBERSHIP = {"join_session", "create_session", "leave_session"}
FIELDS = [
    "sessionId",
    "tempo",
    "tempoBpm",
    "position",
    "positionMs",
    "role",
    "leaderKey",
    "displayName",
    "clientId",
    "capabilities",
    "message",
    "song",
    "beatsPerBar",
    "beatUnit",
    "bars",
    "countInBars",
    "quantize",
    "to",
    "member",
    "timestamp",
    "t0",
    "rttMs",
    "offsetMs",
    "uncertaintyMs",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: Python's json writes and reads them
    | st.text(max_size=30)
    | st.sampled_from(["fz", "other", "leader", "follower", "now", "bar", "", "\x00", "🎸" * 50])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
plausible = st.sampled_from(
    [120, 60.5, 3, 4, 0, 1, 1000, "leader", "follower", "now", "bar", "hi", {"title": "T"}]
)
payloads = (
    json_values
    | st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=10),
        st.sampled_from(["fz", "other"]) | json_values,
        max_size=6,
    )
    # aimed at the session, with values that often pass validation: they reach the rules
    | st.fixed_dictionaries(
        {"sessionId": st.just("fz")},
        optional={field: plausible | json_values for field in FIELDS if field != "sessionId"},
    )
)
invalid_session_ids = (
    st.integers()
    | st.floats()
    | st.booleans()
    | st.lists(st.text(max_size=3), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
    | st.text(max_size=80).filter(lambda t: ID_RE.fullmatch(t) is None)
)


class Arena:
    """A real server and its real clients on an event loop running in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clients: list[Recorder] = []
        self.server: ServerRunner = self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> ServerRunner:
        settings = Settings(host="127.0.0.1", port=0).with_overrides(UNLIMITED)
        server = ServerRunner(create_app(settings))
        await server.start("127.0.0.1", 0)
        return server

    async def client(self, name: str) -> Recorder:
        client = Recorder(self.server.url, name)
        await client.connect()
        self.clients.append(client)
        return client

    def close(self) -> None:
        async def stop() -> None:
            for client in self.clients:
                await client.close()
            await self.server.stop()
            leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def arena() -> Iterator[Arena]:
    arena = Arena()
    yield arena
    arena.close()


def events_of(server):
    names = set(server.sio.handlers["/"]) - {"connect", "disconnect"}
    assert {"set_tempo", "join_session", "sync_report"} <= names
    return sorted(names)


async def state(server):
    store = server.service.store
    ids = sorted(await store.session_ids())
    return {session_id: (await store.get(session_id)).to_dict() for session_id in ids}


async def ok(client, event, payload):
    ack = await client.call(event, payload)
    assert ack["ok"], (event, ack)
    return ack


async def check_refusal(client, event, ack, errors_before):
    assert ack["ok"] is False, (event, ack)
    error = ack["error"]
    assert set(error) == {"code", "message", "event"}
    assert error["code"] in CODES, (event, error)
    assert error["event"] == event
    assert isinstance(error["message"], str) and error["message"]
    for _ in range(100):  # the error event was sent before the ack; give it a moment
        if len(client.events["error"]) > errors_before:
            break
        await asyncio.sleep(0.01)
    assert client.payloads("error")[-1] == error


async def band(arena):
    """A protected session ``fz`` (leader + follower) and an open session ``other``."""
    leader = await arena.client("leader")
    key = (await ok(leader, "create_session", {"sessionId": "fz"}))["leaderKey"]
    follower = await arena.client("follower")
    await ok(follower, "join_session", {"sessionId": "fz", "displayName": "F"})
    other = await arena.client("other")
    await ok(other, "join_session", {"sessionId": "other", "role": "leader"})
    await ok(leader, "play", {"sessionId": "fz"})
    return leader, follower, key


async def still_serving(server, leader):
    """After the storm: the leader still leads, the server still answers over HTTP."""
    ack = await ok(leader, "set_tempo", {"sessionId": "fz", "tempo": 99})
    assert ack["version"] > 0
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/health") as response,
    ):
        assert response.status == 200


def test_a_member_throwing_anything_at_any_event_changes_nothing(arena):
    server = arena.server
    leader, follower, key = arena.run(band(arena))
    events = [e for e in events_of(server) if e not in MEMBERSHIP]
    seen_codes: set[str] = set()

    async def attempt(event, payload):
        before = await state(server)
        errors_before = len(follower.events["error"])
        ack = await follower.call(event, payload)
        assert await state(server) == before, (event, payload, ack)
        if ack["ok"]:
            assert event in READ_ONLY, (event, payload, ack)
        else:
            await check_refusal(follower, event, ack, errors_before)
            seen_codes.add(ack["error"]["code"])

    @FUZZ
    @given(event=st.sampled_from(events), payload=payloads)
    def example(event, payload):
        if isinstance(payload, dict) and payload.get("leaderKey") == key:
            return  # hypothesis will not find it, but never test the real key by accident
        if event == "set_role" and isinstance(payload, dict) and payload.get("role") == "follower":
            # asking to be what it is: no attack and no change, but it spends the membership
            # budget (2/s) that the refusals after it are checked against
            return
        arena.run(attempt(event, payload))

    example()
    assert {"INVALID_PAYLOAD", "NOT_LEADER"} <= seen_codes  # it did reach the checks
    arena.run(still_serving(server, leader))


def test_unknown_events_are_ignored(arena):
    server = arena.server
    leader, follower, _ = arena.run(band(arena))
    known = set(events_of(server))

    async def attempt(event, payload):
        before = await state(server)
        await follower.emit(event, payload)
        await ok(follower, "clock_sync", {"t0": 1})  # answered: the emit was processed
        assert await state(server) == before

    @FUZZ
    @given(
        event=st.text(min_size=1, max_size=20).filter(lambda e: e not in known), payload=payloads
    )
    def example(event, payload):
        arena.run(attempt(event, payload))

    example()
    arena.run(still_serving(server, leader))


invalid_values = {
    "set_tempo": st.fixed_dictionaries(
        {
            "tempo": st.floats(max_value=19.999)
            | st.floats(min_value=280.001)
            | st.sampled_from([math.nan, math.inf, -math.inf, True, "120", [120], None, {}])
        }
    ),
    "seek": st.fixed_dictionaries(
        {
            "position": st.floats(max_value=-0.001)
            | st.floats(min_value=24 * 3600 * 1000.0 + 1)
            | st.sampled_from([math.nan, math.inf, False, "0", None, []])
        }
    ),
    "set_meter": st.fixed_dictionaries(
        {
            "beatsPerBar": st.integers(max_value=0)
            | st.integers(min_value=17)
            | st.sampled_from([3.5, "4", None, True]),
            "beatUnit": st.sampled_from([4, 8]),
        }
    )
    | st.fixed_dictionaries(
        {
            "beatsPerBar": st.sampled_from([3, 4]),
            "beatUnit": st.integers().filter(lambda u: u not in (2, 4, 8, 16)),
        }
    ),
    "set_count_in": st.fixed_dictionaries(
        {"bars": st.integers(max_value=-1) | st.integers(min_value=5) | st.sampled_from([1.5, "2"])}
    ),
    "update_message": st.fixed_dictionaries(
        {
            "message": st.text(min_size=501, max_size=600)
            | st.integers()
            | st.lists(st.text(), max_size=2)
            | st.text(max_size=20).map(lambda t: t + "\x07")
        }
    ),
    "set_song": st.fixed_dictionaries(
        {
            "song": st.fixed_dictionaries(
                {"title": st.sampled_from(["", "  ", None, 7, "x" * 121])}
            )
            | st.fixed_dictionaries(
                {"title": st.just("Song"), "chart": st.just("x" * 20_001) | st.integers()}
            )
            | st.fixed_dictionaries(
                {"title": st.just("Song"), "tempo": st.sampled_from([0, 300, "fast", math.nan])}
            )
            | st.integers()
            | st.text(max_size=5)
        }
    ),
    "play": st.fixed_dictionaries({"countInBars": st.sampled_from([-1, 5, 2.5, "1", True])}),
    "set_role": st.fixed_dictionaries({"role": json_values.filter(lambda r: r is not None)}).filter(
        lambda p: p["role"] not in ("leader", "follower")
    ),
    "hand_over": st.fixed_dictionaries({"to": st.sampled_from(["", None, 5, "nobody", []])}),
    "remove_member": st.fixed_dictionaries(
        {"member": st.sampled_from(["", None, 5, "nobody", {}])}
    ),
}


def test_the_leader_sending_invalid_values_changes_nothing(arena):
    server = arena.server
    leader, _follower, _ = arena.run(band(arena))

    async def attempt(event, payload):
        before = await state(server)
        errors_before = len(leader.events["error"])
        ack = await leader.call(event, payload)
        await check_refusal(leader, event, ack, errors_before)
        assert await state(server) == before, (event, payload, ack)

    @FUZZ
    @given(
        case=st.sampled_from(sorted(invalid_values)).flatmap(
            lambda event: st.tuples(st.just(event), invalid_values[event])
        ),
        session_field=st.sampled_from(["fz", None]),
    )
    def example(case, session_field):
        event, payload = case
        payload = {**payload, "sessionId": session_field} if session_field else dict(payload)
        arena.run(attempt(event, payload))

    example()
    arena.run(still_serving(server, leader))


def test_membership_events_with_bad_ids_or_keys_change_nothing(arena):
    server = arena.server
    leader, _follower, key = arena.run(band(arena))
    stranger = arena.run(arena.client("stranger"))

    async def attempt(event, payload):
        before = await state(server)
        errors_before = len(stranger.events["error"])
        ack = await stranger.call(event, payload)
        await check_refusal(stranger, event, ack, errors_before)
        assert await state(server) == before, (event, payload, ack)

    @FUZZ
    @given(
        case=st.one_of(
            st.tuples(
                st.sampled_from(["join_session", "create_session", "leave_session"]),
                st.fixed_dictionaries(
                    {"sessionId": invalid_session_ids},
                    optional={"displayName": json_values, "role": json_values},
                ),
            ),
            st.tuples(
                st.just("join_session"),
                st.fixed_dictionaries(
                    {
                        "sessionId": st.just("fz"),
                        "role": st.just("leader"),
                        "leaderKey": st.text(min_size=1, max_size=40).filter(lambda k: k != key),
                    }
                ),
            ),
            st.tuples(
                st.just("join_session"),
                st.fixed_dictionaries(
                    {
                        "sessionId": st.sampled_from(["fz", "other", "new-one"]),
                        "clientId": invalid_session_ids,
                    }
                ),
            ),
            st.tuples(
                st.just("leave_session"),
                st.fixed_dictionaries({"sessionId": st.sampled_from(["fz", "other", "x"])}),
            ),
        )
    )
    def example(case):
        arena.run(attempt(*case))

    example()
    arena.run(still_serving(server, leader))


RAW_BODIES = (
    '["join_session"',
    "[]",
    "[null]",
    "[1,2]",
    '{"a":1}',
    '["x",{}]',
    '[["x"],1]',
    '["connect",{}]',
    '["disconnect"]',
    '[{"a":1}]',
)
raw_packets = st.tuples(
    st.sampled_from(["", "4", "42", "43", "40", "45", "451-", "46", "4/", "2", "3", "5", "6", "9"]),
    st.text(max_size=40) | json_values.map(json.dumps) | st.sampled_from(RAW_BODIES),
).map("".join)


def test_malformed_socketio_packets_get_an_error_not_a_traceback(arena):
    """Below the events: packets that are not valid Socket.IO/Engine.IO at all."""
    server = arena.server
    leader, _follower, _ = arena.run(band(arena))
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    errors: list[str] = []
    held: dict[str, Any] = {}

    async def socket() -> aiohttp.ClientWebSocketResponse:
        ws = held.get("ws")
        if ws is None or ws.closed:
            if "http" not in held:
                held["http"] = aiohttp.ClientSession()
            ws = await held["http"].ws_connect(url)
            assert (await ws.receive_str(timeout=3)).startswith("0{")
            await ws.send_str("40")
            assert (await ws.receive_str(timeout=3)).startswith("40{")
            held["ws"] = ws
        return ws

    async def attempt(packet):
        ws = await socket()
        before = await state(server)
        await ws.send_str(packet)
        # a well-formed probe behind it: once its answer is back, the junk was handled
        await ws.send_str('42999["clock_sync",{"t0":1}]')
        try:
            while not ws.closed:
                message = await ws.receive(timeout=0.25)
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                if message.data.startswith('42["error"'):
                    errors.append(message.data)
                if message.data.startswith("43999"):
                    break
        except TimeoutError:
            # e.g. a binary-event header: the server now waits for its attachments and
            # takes the probe for one. Start afresh on a new connection.
            await ws.close()
        assert await state(server) == before, packet

    async def close() -> None:
        if "ws" in held:
            await held["ws"].close()
        if "http" in held:
            await held["http"].close()

    @settings(FUZZ, max_examples=100)
    @given(packet=raw_packets)
    def example(packet):
        arena.run(attempt(packet))

    try:
        example()
    finally:
        arena.run(close())
    assert any("INVALID_PAYLOAD" in e for e in errors)
    arena.run(still_serving(server, leader))


@pytest.mark.parametrize(
    "packet",
    [
        '42["disconnect"]',
        '42["connect",{"HTTP_USER_AGENT":"spoof"}]',
        '42["connect"]',
        '42[["set_tempo"],{"sessionId":"fz","tempo":60}]',
        '42[{"a":1}]',
        "42[7]",
        "42[]",
    ],
)
def test_a_member_cannot_fake_reserved_or_unnamed_events(arena, packet):
    """``connect``/``disconnect`` are the server's own handlers, not events a client sends;
    an event name must be a string. Sent by a member over a raw websocket: an error, the
    membership intact, nothing changed, no orphaned task."""
    server = arena.server
    leader, _follower, _ = arena.run(band(arena))
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"

    async def attempt() -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert (await ws.receive_str(timeout=3)).startswith("0{")
            await ws.send_str("40")
            sid = json.loads((await ws.receive_str(timeout=3))[2:])["sid"]
            await ws.send_str('421["join_session",{"sessionId":"fz","displayName":"Raw"}]')
            replies = []
            while not any(r.startswith("431") for r in replies):
                replies.append(await ws.receive_str(timeout=3))
            assert '"ok":true' in replies[-1]
            before = await state(server)
            await ws.send_str(packet)
            await ws.send_str('422["sync_request",{"sessionId":"fz"}]')
            replies = []
            while not any(r.startswith("432") for r in replies):
                replies.append(await ws.receive_str(timeout=3))
            assert '"ok":true' in replies[-1]
            assert any('"code":"INVALID_PAYLOAD"' in r for r in replies), replies
            assert await state(server) == before
            assert server.service.connections[sid].session_id == "fz"

    arena.run(attempt())
    arena.run(still_serving(server, leader))
