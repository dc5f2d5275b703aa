"""Room fan-out for the server's own periodic packets (``scroll_tick``, ``heartbeat``).

Profiling the 10 Hz tick fan-out (docs/load.md) showed where a plain
``AsyncServer.emit(room=...)`` spends its time per recipient: python-socketio encodes the
packet once per emit, but then creates one task per recipient, python-engineio puts the
packet on the socket's queue, its writer task wakes to frame it, and aiohttp compresses it
with permessage-deflate when the client offered it (every browser does) and writes it. So:

* the websocket is created without permessage-deflate (``compress=False``): ~15 % of the
  fan-out's CPU and a zlib context of several hundred kB per connection, for packets of
  ~150 bytes that compress badly anyway;
* ``TickFanout.emit`` encodes the packet once per room, builds the websocket frame once,
  and writes that frame straight to each local member's transport in one pass: no task,
  queue hop or writer wake-up per recipient. A socket that still has packets queued gets
  the packet through its queue instead, so nothing overtakes what was sent before it; a
  socket that is still on long-polling goes through python-engineio as usual. A recipient
  whose transport already buffers more than ``max_buffered_bytes`` (a phone that stopped
  reading) misses the packet: a tick is a sample of the timeline and the next one
  supersedes it, and an unread backlog must not grow without bound on the server.

Only members connected to this process are reached (as ``get_participants`` returns them),
which is what ticks want: each node serves its own followers' ticks.

This reaches into python-engineio's socket (``queue``, ``upgraded``, ``closed``) and swaps
its aiohttp websocket driver for a subclass (which also drops text messages that are not
Engine.IO packets at all); ``tests/server/test_fanout.py`` pins the behaviour against the
installed versions.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp

from ..log import SERVER

NAMESPACE = "/"
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024
ENGINEIO_TYPES = frozenset("0123456")  # open close ping pong message upgrade noop


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final websocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


@dataclass(slots=True)
class FanoutStats:
    """Counters of how packets left (shown by benchmarks; cheap to keep)."""

    direct: int = 0
    queued: int = 0
    dropped_slow: int = 0


class TickFanout:
    """Sends one packet to every local member of a room with one encoding and one frame.

    Args:
        sio: The server whose rooms and Engine.IO sockets are used.
        compress: Accept permessage-deflate on new websockets (off by default; kept as a
            switch so the benchmark can measure both ways).
        max_buffered_bytes: A recipient whose transport buffers more than this misses the
            packet instead of queueing it.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        compress: bool = False,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self.sio = sio
        self.compress = compress
        self.max_buffered_bytes = max_buffered_bytes
        self.enabled = True
        self.stats = FanoutStats()
        self._transports: dict[str, asyncio.Transport] = {}

    def install(self) -> None:
        """Make ``sio`` create its websockets through this fan-out's driver."""
        driver = _driver_for(self)
        # A copy: python-engineio's driver table is module-level and shared by every server.
        self.sio.eio._async = {**self.sio.eio._async, "websocket": driver}

    def register(self, eio_sid: str, transport: asyncio.Transport) -> None:
        self._transports[eio_sid] = transport

    def unregister(self, eio_sid: str, transport: asyncio.Transport) -> None:
        if self._transports.get(eio_sid) is transport:
            del self._transports[eio_sid]

    @property
    def websockets(self) -> int:
        """Websocket connections currently registered."""
        return len(self._transports)

    async def emit(self, event: str, data: Any, room: str) -> int:
        """Send ``event`` with ``data`` to every local member of ``room``; returns how many
        recipients it was written or queued for."""
        if not self.enabled:
            await self.sio.emit(event, data, room=room)
            return -1
        # Socket.IO EVENT packet for the default namespace, encoded as python-socketio does.
        text = "2" + json.dumps([event, data], separators=(",", ":"))
        frame: bytes | None = None
        sockets = self.sio.eio.sockets
        sent = 0
        for _sid, eio_sid in self.sio.manager.get_participants(NAMESPACE, room):
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            transport = self._transports.get(eio_sid)
            if (
                transport is not None
                and socket.upgraded
                and socket.queue.empty()
                and not transport.is_closing()
            ):
                if transport.get_write_buffer_size() > self.max_buffered_bytes:
                    self.stats.dropped_slow += 1
                    continue
                if frame is None:
                    frame = text_frame(("4" + text).encode())
                transport.write(frame)
                self.stats.direct += 1
            else:
                await socket.send(eio_packet.Packet(eio_packet.MESSAGE, text))
                self.stats.queued += 1
            sent += 1
        return sent


def _driver_for(fanout: TickFanout) -> type:
    """python-engineio's aiohttp websocket driver, creating the ``WebSocketResponse`` with
    ``compress`` as the fan-out says and registering each socket's transport with it."""

    class Driver(engineio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request: web.Request = environ["aiohttp.request"]
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=fanout.compress
            )
            await self._sock.prepare(request)
            self.environ = environ
            # The handler is the Engine.IO socket's bound ``_websocket_handler``.
            eio_sid = getattr(getattr(self.handler, "__self__", None), "sid", None)
            transport = request.transport
            if isinstance(eio_sid, str) and transport is not None:
                fanout.register(eio_sid, transport)
            try:
                await self.handler(self)
            finally:
                if isinstance(eio_sid, str) and transport is not None:
                    fanout.unregister(eio_sid, transport)
            SERVER.debug("websocket %s closed", eio_sid)
            return self._sock

        async def wait(self) -> Any:
            # python-engineio decodes what this returns outside of any error handling: an
            # empty text message ends the connection with a traceback, an unknown packet
            # type logs one. Neither is Engine.IO, so they are dropped here.
            while True:
                data = await super().wait()
                if isinstance(data, str) and (not data or data[0] not in ENGINEIO_TYPES):
                    SERVER.debug("dropped a malformed Engine.IO packet %r", data[:20])
                    continue
                return data

    return Driver
