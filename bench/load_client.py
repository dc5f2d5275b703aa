"""A minimal Socket.IO v5 / Engine.IO 4 websocket client for load benchmarks.

One ``asyncio.Protocol`` per connection, no tasks of its own: thousands of them fit in one
process and cost the benchmark far less CPU than ``socketio.AsyncClient`` (which runs a
reader task and a writer task per connection, and one per event). It speaks only what the
benchmarks need: the websocket upgrade (optionally offering permessage-deflate, as every
browser does), Engine.IO open/ping/pong/message, Socket.IO connect, events and acks.

It is a test instrument, not a product client: text frames only, no fragmentation (the
server never fragments), no binary attachments.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

TICK_PREFIX = '42["scroll_tick",'
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)


def now_ms() -> float:
    """The benchmark's clock: this host's monotonic clock in milliseconds."""
    return time.monotonic() * 1000.0


def _mask(payload: bytes, key: bytes) -> bytes:
    """Client-to-server frames are masked (RFC 6455 5.3); XOR in one big-int operation."""
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )


def _frame(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


class SioClient(asyncio.Protocol):
    """One Socket.IO connection over a raw websocket.

    Attributes:
        ticks: ``(receive time ms, serverTimestamp, sessionId)`` of every ``scroll_tick``,
            when ``record_ticks`` is set.
        events: count of every other event received, by name.
        errors: ``error`` event payloads received.
        closed: set once the connection is gone (for whatever reason).
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        host: str,
        port: int,
        *,
        offer_deflate: bool = True,
        record_ticks: bool = False,
        on_event: Callable[[SioClient, str, Any], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.offer_deflate = offer_deflate
        self.record_ticks = record_ticks
        self.on_event = on_event
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.deflate = False
        self._inflater: Any = None
        self.sid: str | None = None
        self.connected: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.ticks: list[tuple[float, float, str]] = []
        self.tick_count = 0
        self.events: dict[str, int] = {}
        self.errors: list[Any] = []
        self.frames_in = 0

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        # The headers a phone's browser sends with its upgrade (the server keeps them for the
        # connection's life, so they count in its memory per connection).
        lines = [
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Connection: Upgrade",
            "Pragma: no-cache",
            "Cache-Control: no-cache",
            f"User-Agent: {PHONE_USER_AGENT}",
            "Upgrade: websocket",
            f"Origin: http://{self.host}:{self.port}",
            "Sec-WebSocket-Version: 13",
            "Accept-Encoding: gzip, deflate",
            "Accept-Language: en-GB,en;q=0.9,de;q=0.8",
            f"Sec-WebSocket-Key: {key}",
        ]
        if self.offer_deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)
        for future in self.acks.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self.acks.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self._fail(f"upgrade refused: {head.splitlines()[0]}")
                return
            self.upgraded = True
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-extensions" and "deflate" in value:
                    self.deflate = True
                    self._inflater = zlib.decompressobj(-15)
        self._parse_frames()

    # -- websocket framing -------------------------------------------------------------

    def _parse_frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            opcode = b0 & 0x0F
            if b0 & 0x40:  # RSV1: a compressed message
                payload = self._inflater.decompress(payload + b"\x00\x00\xff\xff")
            self.frames_in += 1
            if opcode == 1:
                self._on_text(payload.decode())
            elif opcode == 8:
                self.close()
                return
            elif opcode == 9 and self.transport is not None:
                self.transport.write(_frame(0xA, payload))

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(1, text.encode()))

    # -- Engine.IO / Socket.IO -----------------------------------------------------------

    def _on_text(self, text: str) -> None:
        if text.startswith(TICK_PREFIX):
            self.tick_count += 1
            if self.record_ticks:
                received = now_ms()
                data = json.loads(text[2:])[1]
                self.ticks.append((received, data["serverTimestamp"], data["sessionId"]))
            return
        kind = text[0]
        if kind == "2":  # Engine.IO ping
            self.send_text("3")
        elif kind == "0":  # Engine.IO open
            self.send_text("40")
        elif kind == "4":
            self._on_socketio(text[1:])
        elif kind == "1":
            self.close()

    def _on_socketio(self, text: str) -> None:
        kind = text[0]
        body = text[1:]
        if kind == "0":
            self.sid = json.loads(body)["sid"]
            if not self.connected.done():
                self.connected.set_result(self.sid)
        elif kind == "2":
            event, *args = json.loads(body)
            self.events[event] = self.events.get(event, 0) + 1
            data = args[0] if args else None
            if event == "error":
                self.errors.append(data)
            if self.on_event is not None:
                self.on_event(self, event, data)
        elif kind == "3":
            digits = len(body) - len(body.lstrip("0123456789"))
            ack_id = int(body[:digits])
            future = self.acks.pop(ack_id, None)
            if future is not None and not future.done():
                args = json.loads(body[digits:])
                future.set_result(args[0] if args else None)
        elif kind == "4":
            self._fail(f"connect refused: {body}")
        elif kind == "1":
            self.close()

    def _fail(self, reason: str) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(reason))
        self.close()

    def emit(self, event: str, data: Any = None) -> None:
        """Send an event without an ack."""
        self.send_text("42" + json.dumps([event, data], separators=(",", ":")))

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        """Send an event and wait for its ack."""
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        self.send_text(f"42{ack_id}" + json.dumps([event, data], separators=(",", ":")))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.acks.pop(ack_id, None)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


async def connect(host: str, port: int, *, timeout: float = 15.0, **options: Any) -> SioClient:
    """Open one Socket.IO connection; raises on refusal or timeout."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: SioClient(host, port, **options), host, port), timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.connected), timeout)
    except BaseException:
        client.close()
        raise
    return client


async def clock_offset(client: SioClient, samples: int = 30) -> tuple[float, float]:
    """NTP-style estimate of ``server time - local now_ms()`` from ``clock_sync``.

    Returns ``(offset_ms, rtt_ms)`` of the sample with the smallest round trip: on loopback
    its error is at most half that round trip.
    """
    best: tuple[float, float] | None = None
    for _ in range(samples):
        t0 = now_ms()
        answer = await client.call("clock_sync", {"t0": t0})
        t3 = now_ms()
        t1, t2 = answer["t1"], answer["t2"]
        rtt = (t3 - t0) - (t2 - t1)
        offset = ((t1 - t0) + (t2 - t3)) / 2.0
        if best is None or rtt < best[1]:
            best = (offset, rtt)
        await asyncio.sleep(0.01)
    assert best is not None
    return best
