"""Our Engine.IO sockets (``server/engine.py``) against real clients and the installed libraries.

``LeanSocket`` replaces python-engineio's socket class and reaches into its server's private
connect path, so these pin the protocol end to end: python-socketio's own client on a
websocket, on long-polling and upgrading from one to the other; pings answered and pings
missed; a server-side disconnect; a reader that stopped; what stays of the request; and the
point of it all, no task per connection beyond aiohttp's own.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import socketio
from aiohttp import web

from bandsync_desktop.server import engine
from bandsync_desktop.server.engine import (
    ENVIRON_KEEP,
    BandSyncSocketServer,
    LeanSocket,
    host_is_allowed,
    host_name,
    websocket_frame,
)
from bandsync_desktop.server.net import free_port


class EchoServer:
    """A bare Socket.IO server on ``BandSyncSocketServer``: an ``echo`` event acked back."""

    def __init__(self, **options: object) -> None:
        self.sio = BandSyncSocketServer(async_mode="aiohttp", **options)
        self.app = web.Application()
        self.sio.attach(self.app)
        self.disconnects: list[str] = []
        self.sio.on("echo", self._echo)
        self.sio.on("disconnect", self._disconnect)
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        self.port = 0

    async def _echo(self, sid: str, data: object) -> object:
        return data

    async def _disconnect(self, sid: str, reason: object = None) -> None:
        self.disconnects.append(sid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def socket(self, client: socketio.AsyncClient) -> LeanSocket:
        socket = self.sio.eio.sockets[client.eio.sid]
        assert isinstance(socket, LeanSocket)
        return socket

    async def __aenter__(self) -> EchoServer:
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sio.shutdown()
        await self.runner.cleanup()


async def _client(url: str, transports: list[str]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=transports)
    return client


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_a_websocket_client_writes_directly_with_no_queue():
    async with EchoServer() as server:
        client = await _client(server.url, ["websocket"])
        try:
            socket = server.socket(client)
            assert socket.upgraded and socket.transport is not None
            assert socket._queue is None  # never made: no poll, no writer
            for n in range(50):
                assert await client.call("echo", {"n": n, "text": "é" * n}) == {
                    "n": n,
                    "text": "é" * n,
                }
        finally:
            await client.disconnect()
        await _wait_until(lambda: not server.sio.eio.sockets)
        assert len(server.disconnects) == 1


@pytest.mark.asyncio
async def test_a_polling_client_upgrades_and_nothing_sent_meanwhile_is_lost():
    async with EchoServer() as server:
        client = socketio.AsyncClient(reconnection=False)
        received: list[int] = []
        client.on("n", received.append)
        await client.connect(server.url, transports=["polling", "websocket"])
        try:
            sid = client.get_sid("/")
            # Sent while the client is still on long-polling and while it upgrades: queued,
            # then written in order before anything goes straight to the websocket.
            sending = asyncio.ensure_future(_send_numbers(server.sio, sid, 300))
            socket = server.socket(client)
            await _wait_until(lambda: socket.transport is not None)
            await sending
            assert client.transport() == "websocket"
            assert socket._queue is None
            await _wait_until(lambda: len(received) == 300)
            assert received == list(range(300))
            assert await client.call("echo", "after") == "after"
        finally:
            await client.disconnect()


async def _send_numbers(sio: socketio.AsyncServer, sid: str, count: int) -> None:
    for n in range(count):
        await sio.emit("n", n, to=sid)
        if n % 10 == 0:
            await asyncio.sleep(0.005)


@pytest.mark.asyncio
async def test_a_polling_client_that_says_goodbye_is_let_go_at_once():
    async with EchoServer() as server:  # ping interval 25 s: python-engineio held it that long
        client = await _client(server.url, ["polling"])
        await asyncio.sleep(0.3)  # its next poll is waiting on the server
        await asyncio.wait_for(client.disconnect(), 3)
        await _wait_until(lambda: not server.sio.eio.sockets)


@pytest.mark.asyncio
async def test_a_polling_only_client_works_and_answers_pings():
    async with EchoServer(ping_interval=0.3, ping_timeout=0.5) as server:
        client = await _client(server.url, ["polling"])
        try:
            socket = server.socket(client)
            await asyncio.sleep(2.0)  # several ping intervals, pongs through POSTs
            assert client.connected and not socket.closed
            assert await client.call("echo", [1, 2]) == [1, 2]
        finally:
            await client.disconnect()


@pytest.mark.asyncio
async def test_pings_keep_a_websocket_alive_and_a_silent_peer_is_closed():
    async with EchoServer(ping_interval=0.3, ping_timeout=0.4) as server:
        client = await _client(server.url, ["websocket"])
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as silent:
            opening = json.loads((await silent.receive_str(timeout=5))[1:])
            assert opening["pingInterval"] == 300
            await silent.send_str("40")  # a Socket.IO connect, then never a pong
            assert (await silent.receive_str(timeout=5)).startswith("40")
            assert await silent.receive_str(timeout=5) == "2"  # the server's ping
            # Unanswered: closed within the ping timeout and one sweep of the server.
            message = await silent.receive(timeout=3)
            while message.type is aiohttp.WSMsgType.TEXT:
                message = await silent.receive(timeout=3)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        try:
            await asyncio.sleep(1.0)
            assert client.connected  # python-socketio's client answers every ping
            assert await client.call("echo", "still here") == "still here"
            assert list(server.sio.eio.sockets) == [client.eio.sid]
        finally:
            await client.disconnect()


@pytest.mark.asyncio
async def test_a_server_side_disconnect_ends_the_websocket():
    async with EchoServer() as server:
        client = await _client(server.url, ["websocket"])
        gone = asyncio.Event()
        client.on("disconnect", lambda *_: gone.set())
        socket = server.socket(client)
        await server.sio.disconnect(client.get_sid("/"))
        await asyncio.wait_for(gone.wait(), 5)
        await _wait_until(lambda: socket.ws is None)  # the read loop has returned
        assert socket.closed and client.eio.sid not in server.sio.eio.sockets


@pytest.mark.asyncio
@pytest.mark.expect_log(r"stopped reading \(\d+ bytes unsent\): dropping the connection")
async def test_a_reader_that_stopped_is_cut_off(monkeypatch):
    async with EchoServer() as server:
        client = await _client(server.url, ["websocket"])
        gone = asyncio.Event()
        client.on("disconnect", lambda *_: gone.set())
        socket = server.socket(client)
        monkeypatch.setattr(engine, "MAX_BACKLOG_BYTES", -1)  # any backlog is too much
        assert socket.write_frame(websocket_frame('42["x"]')) is False
        await asyncio.wait_for(gone.wait(), 5)
        await _wait_until(lambda: socket.closed)
        assert len(server.disconnects) == 1


@pytest.mark.asyncio
async def test_malformed_engineio_text_is_dropped_and_the_connection_kept():
    async with EchoServer() as server:
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.receive_str(timeout=5)
            for junk in ("", "x", "9", "{}"):
                await ws.send_str(junk)
            await ws.send_str("40")
            assert (await ws.receive_str(timeout=5)).startswith("40")
            await ws.send_str('421["echo","ok"]')
            assert await ws.receive_str(timeout=5) == '431["ok"]'


@pytest.mark.asyncio
async def test_only_a_slim_environ_outlives_the_handshake():
    async with EchoServer() as server:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            server.url,
            transports=["websocket"],
            headers={"User-Agent": "phone/1.0", "X-Something": "big" * 100},
        )
        try:
            environ = server.sio.get_environ(client.get_sid("/"))
            assert environ["HTTP_USER_AGENT"] == "phone/1.0"
            assert set(environ) <= ENVIRON_KEEP
        finally:
            await client.disconnect()


@pytest.mark.asyncio
async def test_an_idle_connection_runs_no_task_beyond_aiohttps_two():
    async with EchoServer() as server, aiohttp.ClientSession() as http:
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        first = await http.ws_connect(url)  # starts the server-wide service sweep
        await first.receive_str(timeout=5)
        await asyncio.sleep(0.1)
        before = asyncio.all_tasks()
        # aiohttp's client websockets run no task of their own: what appears is the server's.
        phones = [await http.ws_connect(url) for _ in range(10)]
        try:
            for ws in phones:
                await ws.receive_str(timeout=5)
                await ws.send_str("40")
                assert (await ws.receive_str(timeout=5)).startswith("40")
            new = asyncio.all_tasks() - before
            names = sorted(task.get_coro().__qualname__ for task in new)
            # aiohttp's connection and request handler per websocket; python-engineio ran
            # four more (writer, reader per message, its wait_for, the ping).
            assert names == ["RequestHandler._handle_request"] * 10 + ["RequestHandler.start"] * 10
        finally:
            for ws in (first, *phones):
                await ws.close()


@pytest.mark.asyncio
async def test_python_engineios_own_socket_still_serves_when_lean_is_off():
    async with EchoServer() as server:
        server.sio.eio.lean = False  # the benchmark's "stock" variant
        client = await _client(server.url, ["websocket"])
        try:
            assert not isinstance(server.sio.eio.sockets[client.eio.sid], LeanSocket)
            assert await client.call("echo", "stock") == "stock"
        finally:
            await client.disconnect()


def test_websocket_frame_lengths_and_opcodes():
    assert websocket_frame("x") == b"\x81\x01x"
    assert websocket_frame("é") == b"\x81\x02\xc3\xa9"
    assert websocket_frame(b"\x00\x01") == b"\x82\x02\x00\x01"
    assert websocket_frame("y" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert websocket_frame("z" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")


@pytest.mark.asyncio
async def test_a_malformed_polling_payload_is_dropped_whole_without_a_traceback():
    async with EchoServer() as server, aiohttp.ClientSession() as http:
        base = server.url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        url = f"{base}&sid={sid}"
        # a valid connect followed by garbage in one payload: nothing of it is handled
        for junk in ("40\x1e", "4\x1e\x1e", "40\x1e9", "2" + "\x1e2" * 20, b"\xff\xfe"):
            async with http.post(url, data=junk) as response:
                assert response.status == 200
        assert server.sio.manager.sid_from_eio_sid(sid, "/") is None  # no connect happened
        async with http.post(url, data="40") as response:
            assert response.status == 200  # and the socket is still usable
        async with http.get(url) as response:
            assert (await response.text()).startswith("40")


@pytest.mark.asyncio
@pytest.mark.expect_log(r"refusing further connections from 127\.0\.0\.1")
async def test_one_address_holds_at_most_its_cap_of_connections():
    async with EchoServer() as server:
        server.sio.eio.limit_connections(3, frozenset())  # loopback not exempt here
        clients = [await _client(server.url, ["websocket"]) for _ in range(2)]
        clients.append(await _client(server.url, ["polling"]))  # both transports count
        assert server.sio.eio.connections_from("127.0.0.1") == 3
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)
            assert refused.value.status == 429
            polling = server.url + "/socket.io/?EIO=4&transport=polling"
            async with http.get(polling) as response:
                assert response.status == 429
                assert "too many connections" in await response.text()
        assert all(client.connected for client in clients)  # the held ones are untouched
        assert len(server.sio.eio.sockets) == 3
        await clients.pop().disconnect()
        await _wait_until(lambda: server.sio.eio.connections_from("127.0.0.1") == 2)
        clients.append(await _client(server.url, ["websocket"]))  # a slot was given back
        for client in clients:
            await client.disconnect()
        await _wait_until(lambda: server.sio.eio.connections_from("127.0.0.1") == 0)


@pytest.mark.asyncio
async def test_exempt_addresses_are_not_capped():
    async with EchoServer() as server:
        server.sio.eio.limit_connections(1, frozenset({"127.0.0.1", "::1"}))
        clients = [await _client(server.url, ["websocket"]) for _ in range(4)]
        try:
            assert all(client.connected for client in clients)
            assert server.sio.eio.connections_from("127.0.0.1") == 0
        finally:
            for client in clients:
                await client.disconnect()


def test_host_names_a_browser_may_use():
    assert host_name("[fe80::1]:3001") == "fe80::1" and host_name("Band.LOCAL:80") == "band.local"
    for allowed in ("192.168.1.20:3001", "10.0.0.2", "[::1]:3001", "fe80::1", "localhost:3001"):
        assert host_is_allowed(allowed), allowed
    assert host_is_allowed("stage.lan:3001", frozenset({"stage.lan"}))
    for refused in ("evil.example:3001", "192.168.1.20.nip.io", "", "local", "stage.lan"):
        assert not host_is_allowed(refused), refused
