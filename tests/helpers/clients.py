"""Real socket.io clients that record what they receive, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import socketio

EVENTS = (
    "snapshot",
    "scroll_tick",
    "error",
    "play",
    "pause",
    "seek",
    "role_changed",
    "user_joined",
    "user_left",
    "room_stats",
    "tempo_changed",
    "meter_changed",
    "message_updated",
    "song_changed",
    "sync_response",
    "latency_response",
    "clock_sync",
    "heartbeat",
    "heartbeat_response",
    "removed",
    "session_expired",
    "server_shutdown",
)


class Recorder:
    """A connected ``socketio.AsyncClient`` that keeps every event it receives, with the
    local monotonic arrival time, and can wait for the next one of a kind."""

    def __init__(
        self, url: str, name: str = "client", *, source: str | None = None, **client_options: Any
    ) -> None:
        """``source``: the local address to connect from ("another phone": 127.0.0.2 and up
        reach a server on 127.0.0.1 from an address of their own)."""
        self.url = url
        self.name = name
        self.source = source
        self._http: aiohttp.ClientSession | None = None
        self.sio = socketio.AsyncClient(**client_options)
        self.events: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self._waiters: dict[str, list[asyncio.Future[Any]]] = defaultdict(list)
        for event in EVENTS:
            self.sio.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Callable[..., None]:
        def record(data: Any = None, *_: Any) -> None:
            self.events[event].append((time.monotonic(), data))
            waiters, self._waiters[event] = self._waiters[event], []
            for future in waiters:
                if not future.done():
                    future.set_result(data)

        return record

    async def connect(self, **kwargs: Any) -> Recorder:
        kwargs.setdefault("transports", ["websocket"])
        if self.source is not None and self._http is None:
            connector = aiohttp.TCPConnector(local_addr=(self.source, 0))
            self._http = aiohttp.ClientSession(connector=connector)
            self.sio.eio.http = self._http
            self.sio.eio.external_http = True
        await self.sio.connect(self.url, **kwargs)
        return self

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid("/")  # the Socket.IO sid the server sees (not Engine.IO's)
        assert sid is not None
        return sid

    def next(self, event: str) -> asyncio.Future[Any]:
        """A future for the next ``event`` (create it *before* sending what causes it)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[event].append(future)
        return future

    async def wait_for(self, event: str, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.next(event), timeout)

    def last(self, event: str) -> Any:
        return self.events[event][-1][1] if self.events[event] else None

    def payloads(self, event: str) -> list[Any]:
        return [data for _, data in self.events[event]]

    def clear(self) -> None:
        self.events.clear()

    async def call(self, event: str, data: Any = None, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, data, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        if self._http is not None:
            await self._http.close()
            self._http = None


async def expect_ok(client: Recorder, event: str, payload: Any) -> dict[str, Any]:
    """Send ``event`` with an ack; it must be accepted. Returns the ack."""
    ack: dict[str, Any] = await client.call(event, payload)
    assert ack["ok"] is True, (event, ack)
    return ack


async def expect_refused(client: Recorder, event: str, payload: Any, code: str) -> dict[str, Any]:
    """Send ``event`` with an ack; it must be refused with ``code``. Returns the ack."""
    ack: dict[str, Any] = await client.call(event, payload)
    assert ack["ok"] is False, (event, ack)
    assert ack["error"]["code"] == code, (event, ack)
    return ack


class PageScript(Protocol):
    """A page any test driver opened (Playwright, Marionette, WebDriver): runs a script."""

    async def js(self, expression: str) -> Any: ...


async def assert_tracks_server_clock(page: PageScript, server: Any, slack_ms: float) -> None:
    """The page's estimate of server time lies within the instants the server read its clock
    before and after asking, give or take ``slack_ms``."""
    clock = server.service.clock
    before = clock.now_ms()
    estimate = await page.js("bandsync.serverNow()")
    after = clock.now_ms()
    assert before - slack_ms <= estimate <= after + slack_ms, (before, estimate, after)


async def joined_phone(
    url: str,
    name: str,
    made: list[Recorder],
    *,
    hears: tuple[str, ...] = (),
    session: str = "gig",
    **join: Any,
) -> Recorder:
    """A real client connected to ``url`` and joined to ``session`` as ``name`` (``join``: more
    of the join's payload), its first snapshot in; it records ``hears`` too (events the shared
    list leaves out) and is added to ``made``, for the caller to close."""
    client = Recorder(url, name)
    for event in hears:
        client.sio.on(event, client._recorder(event))
    await client.connect()
    made.append(client)
    snapshot = client.next("snapshot")
    await expect_ok(client, "join_session", {"sessionId": session, "displayName": name, **join})
    await asyncio.wait_for(snapshot, 5)
    return client
