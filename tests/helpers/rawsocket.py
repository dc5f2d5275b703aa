"""A websocket client spoken by hand: Engine.IO and Socket.IO frames as a script would write
them, thousands in one write if it likes, from a loopback address of its own."""

from __future__ import annotations

import asyncio
import base64
import os
import struct


class RawWebSocket:
    """A client websocket spoken by hand from ``local`` (masked frames, key 0: the payload
    goes as is), so that thousands of frames cost the sender one write."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, local: str) -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    @staticmethod
    def frames(text: str, count: int) -> bytes:
        data = text.encode()
        assert len(data) < 126
        return (struct.pack("!BB", 0x81, 0x80 | len(data)) + b"\0\0\0\0" + data) * count

    async def send(self, text: str) -> None:
        self.writer.write(self.frames(text, 1))
        await self.writer.drain()

    async def receive(self) -> str | None:
        """The next text message, or None once the server closed or dropped the connection."""
        try:
            first, second = await self.reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            data = await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if first & 0x0F == 0x8:  # close
            return None
        return data.decode()

    async def handshake(self) -> None:
        """Engine.IO open, then the Socket.IO connect of namespace "/"."""
        opening = await asyncio.wait_for(self.receive(), 5)
        assert opening is not None and opening.startswith("0{")
        await self.send("40")
        connected = await asyncio.wait_for(self.receive(), 5)
        assert connected is not None and connected.startswith("40")

    def close(self) -> None:
        self.writer.close()
