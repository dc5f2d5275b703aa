"""Our Engine.IO sockets: python-engineio's protocol with a fraction of its objects per phone.

A census of what the garbage collector tracks in a server holding 1,000 idle phones (``SIGUSR1``
to ``bench/load_server.py``, docs/load.md) counted ~155 objects per websocket connection, six
of them asyncio tasks: aiohttp's two (the connection and its request handler), and four of
python-engineio's ``AsyncSocket``: a writer task draining a per-socket ``asyncio.Queue``, a
reader task created for every message awaited through ``wait_for``, that ``wait_for``'s own
task around ``Queue.get``, and a ``_send_ping`` task sleeping out the ping interval. Each task
carries coroutine frames, a context copy, futures and timer handles. A full collection walks
all of them (0.4-0.8 s at 5,000 phones, long enough for the ticker to skip steps). With this
module: ~84 objects and two tasks (aiohttp's) per connection, ~11 kB less memory each.

``LeanSocket`` keeps python-engineio's protocol (handshake, long-polling, the probe/upgrade
dance, ping/pong, close) and changes how a websocket is driven:

* **Writes are synchronous**: once upgraded, a packet is framed and written to the transport
  where it is sent, in order, with no queue and no writer task. The queue exists only while
  the socket is long-polling or upgrading, and what it holds is written before direct writes
  start, so nothing overtakes what was sent before it. A phone that stops reading is cut off
  once more than ``MAX_BACKLOG_BYTES`` wait in its transport (it reconnects and gets a fresh
  snapshot) instead of growing a backlog without bound.
* **Reads are one loop** awaiting ``WebSocketResponse.receive()`` directly: no task or
  timeout per message. A dead peer is found by the ping timeout instead.
* **Pings come from one sweep** (``LeanServer._service_task``) that visits every socket twice
  a second: it sends the ping a socket is due, closes one whose pong is overdue, and forgets
  closed ones. python-engineio runs a sleeping task per socket for the ping and visits sockets
  with a ``wait_for`` each.
* **A long-polling POST that does not decode is dropped** whole, logged at DEBUG (python-engineio
  logs a traceback for each), and a long-polling client that says goodbye has its pending
  poll answered at once (python-engineio left it hanging for the ping interval).
* **Nothing of ours sits in a websocket's call chain**: the body limit for long-polling POSTs
  is on the POST route alone, not an app-wide middleware (whose frame every websocket's
  request would keep for the connection's life).
* **A flood is refused before it is read** (``limit_frames``): every frame a client sends,
  on a websocket or in a long-polling POST, is counted by the connection's ``FrameMeter``
  (core/ratelimit.py) before it is decoded. Frames over budget are dropped unread, with no
  task and no answer but one ``error {code: RATE_LIMITED}`` a second; a connection that
  keeps flooding is closed, logged once (a minute) per address at WARNING, and its address
  may not connect again for ``FLOOD_COOLDOWN_S``. The pong that
  answers our ping is free. One websocket sending ~19,000 frames a second used to have each
  decoded, given a task and answered: the band's acks waited seconds behind them.
* **One address holds at most ``max_connections_per_address`` connections** (loopback
  exempt by default): a phone opening thousands would hold their memory and, the rate limit
  being per connection, their budget; the next one is answered 429.
* **Browsers must reach us by an IP address**, ``localhost``, an mDNS ``*.local`` name or a
  configured host: a page on a public domain re-resolved to the console's LAN address (DNS
  rebinding) passes python-engineio's same-origin check, so its handshake is refused (403).
  Native clients (no ``Origin``, no ``Sec-Fetch-*``) are not checked.
* **The upgrade request's header copy is dropped**: python-engineio copies every header into a
  WSGI-style ``environ`` that lives as long as the connection; once the websocket is open only
  the few keys in ``ENVIRON_KEEP`` stay.
* **An event costs no task, and what it sends is one write**: a websocket's plain EVENT
  message is parsed once and its handler run at once (``BandSyncSocketServer.dispatch_event``;
  one that has to wait carries on as a task), with the socket's writes held
  (``LeanServer.cork``) until it is done, so a command's notice, snapshot and ack leave in
  one syscall. python-socketio decoded it through two packet objects, gave it a task (a loop
  iteration), sent each reply through a task of its own and wrote every packet by itself
  (docs/load.md, "One command's cost").

``LeanServer`` builds ``LeanSocket``s (``lean = False`` builds python-engineio's own, for the
benchmark's ``stock`` variant) and ``BandSyncSocketServer`` is python-socketio's server on top
of it. This reaches into python-engineio's private ``_handle_connect`` and ``_service_task``
(pinned to the 4.15 series in pyproject.toml); ``tests/server/test_engine.py`` checks the
protocol against python-socketio's own client, both transports and the upgrade between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ipaddress
import json
import socket as so
import struct
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import engineio
import socketio
from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import json as eio_json
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from ..core.clock import MonotonicClock
from ..core.errors import ErrorCode
from ..core.ratelimit import FrameMeter, TokenBucket, Verdict
from ..log import SERVER

#: A websocket whose transport holds more than this unsent is cut off.
MAX_BACKLOG_BYTES = 1024 * 1024
#: What the kernel may buffer unread for one metered websocket (Linux doubles it).
RECEIVE_BUFFER_BYTES = 32 * 1024
#: How often the service sweep visits every socket (pings, timeouts, clean-up).
SWEEP_INTERVAL_S = 0.5
#: Engine.IO packet types (open close ping pong message upgrade noop): anything else is noise.
ENGINEIO_TYPES = frozenset("0123456")
#: A cut-off flooder's address is logged at most this often (seconds).
FLOOD_LOG_INTERVAL_S = 60.0
#: For this long after a connection was cut off for flooding, its address may open no new
#: one (answered 429; exempt addresses, loopback by default, excepted).
FLOOD_COOLDOWN_S = 10.0
#: All the connections of one (counted) address share a frame budget this many times one
#: connection's: a phone needs one connection's worth (its old connection is idle while it
#: reconnects), and a flooder opening sixteen gets no more than one.
ADDRESS_FRAME_BUDGET = 1.0
#: The one answer to frames dropped over budget: a Socket.IO ``error`` event (namespace "/")
#: in an Engine.IO MESSAGE packet, encoded once.
RATE_LIMITED_EVENT = "2" + json.dumps(
    [
        "error",
        {
            "code": str(ErrorCode.RATE_LIMITED),
            "message": "too many packets: slow down (the excess was dropped unread)",
            "event": None,
        },
    ],
    separators=(",", ":"),
)
#: What a client may send in a long-polling POST: close, pong, message, upgrade (a ping or
#: noop from a client is not Engine.IO 4; python-engineio would raise on it).
CLIENT_POST_TYPES = frozenset(
    {eio_packet.CLOSE, eio_packet.PONG, eio_packet.MESSAGE, eio_packet.UPGRADE}
)
#: What stays of a connection's ``environ`` once its websocket is open.
ENVIRON_KEEP = frozenset(
    {
        "REQUEST_METHOD",
        "QUERY_STRING",
        "PATH_INFO",
        "REMOTE_ADDR",
        "HTTP_HOST",
        "HTTP_ORIGIN",
        "HTTP_USER_AGENT",
        "HTTP_X_FORWARDED_FOR",
    }
)


def websocket_frame(payload: str | bytes) -> bytes:
    """An unmasked, uncompressed, final websocket frame (server to client): text for ``str``,
    binary for ``bytes``. Legal with permessage-deflate too (RSV1 clear: not compressed)."""
    if isinstance(payload, str):
        data, first = payload.encode(), 0x81
    else:
        data, first = bytes(payload), 0x82
    n = len(data)
    if n < 126:
        return struct.pack("!BB", first, n) + data
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + data
    return struct.pack("!BBQ", first, 127, n) + data


def limit_receive_buffer(transport: asyncio.Transport) -> None:
    """Keep what the kernel buffers for one websocket small (``RECEIVE_BUFFER_BYTES``).

    The event loop reads what is buffered in one go (up to 256 KiB) and aiohttp parses every
    frame of it before our read loop sees the first: a flooder's socket would be turned into
    thousands of message objects (and Python keeps the memory) before the frame meter could
    drop one. A phone sends a few small events a second; payloads up to the limit still
    arrive, in more reads.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, RECEIVE_BUFFER_BYTES)


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_is_allowed(host_header: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a browser may reach us by this ``Host``: an IP address, ``localhost``, an mDNS
    ``*.local`` name, or one of ``extra``. A public DNS name that resolves to a LAN address
    is what a DNS-rebinding page uses to pass the same-origin check."""
    name = host_name(host_header)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name.endswith(".local") or name in extra


def from_a_browser(environ: dict[str, Any]) -> bool:
    """Browsers send ``Origin`` on websocket handshakes and ``Sec-Fetch-*`` on every request;
    native clients and scripts send neither (and are not exposed to DNS rebinding)."""
    return "HTTP_ORIGIN" in environ or "HTTP_SEC_FETCH_MODE" in environ


def slim_environ(environ: dict[str, Any]) -> None:
    """Keep, in place, only the keys of ``environ`` in ``ENVIRON_KEEP`` (the dict is cleared
    and refilled: deleting keys one by one would keep its table at full size)."""
    kept = {key: value for key, value in environ.items() if key in ENVIRON_KEEP}
    environ.clear()
    environ.update(kept)


class LeanSocket(AsyncSocket):  # type: ignore[misc]
    """One client's Engine.IO socket (see the module docstring for what differs upstream)."""

    def __init__(self, server: LeanServer, sid: str) -> None:
        # python-engineio's BaseSocket.__init__, less the queue (made when first needed).
        self.server = server
        self.sid = sid
        self._queue: asyncio.Queue[Any] | None = None
        self.last_ping: float | None = time.time()
        self.ping_due = 0.0
        self.connected = False
        self.upgrading = False
        self.upgraded = False
        self.closing = False
        self.closed = False
        self.session: dict[str, Any] = {}
        self.ws: web.WebSocketResponse | None = None
        #: Set while packets go straight to the websocket's transport.
        self.transport: asyncio.Transport | None = None
        #: The peer address this socket counts against (None once released or exempt).
        self.address: str | None = None
        #: The peer address, for the log (exempt addresses too).
        self.peer: str | None = None
        #: Counts the frames the client sends (None: not limited).
        self.meter: FrameMeter | None = None

    @property
    def queue(self) -> asyncio.Queue[Any]:
        """The packets waiting for a poll (or for the websocket upgrade to finish)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    # -- sending ---------------------------------------------------------------------------

    async def send(self, pkt: eio_packet.Packet) -> None:
        """Send a packet: written at once on a websocket, queued for the next poll otherwise."""
        if not await self.check_ping_timeout():
            return
        if self.transport is not None:
            self._write_packet(pkt)
        else:
            await self.queue.put(pkt)

    def _write_packet(self, pkt: eio_packet.Packet) -> None:
        self.write_frame(websocket_frame(pkt.encode()))

    def buffered(self) -> int:
        """Bytes written to the websocket's transport and not yet sent (0 when not direct)."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def write_frame(self, frame: bytes) -> bool:
        """Write one ready websocket frame; False when the websocket is not open for it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > MAX_BACKLOG_BYTES:
            SERVER.warning(
                "%s stopped reading (%d bytes unsent): dropping the connection",
                self.sid,
                transport.get_write_buffer_size(),
            )
            transport.abort()  # the read loop sees the connection go and closes the socket
            return False
        corked = self.server._corked
        if corked is not None:  # held until the event being handled is done (LeanServer.cork)
            held = corked.get(self)
            if held is None:
                corked[self] = (transport, [frame])
            else:
                held[1].append(frame)
            return True
        transport.write(frame)
        return True

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        """A long-polling POST: its packets, or none of them if any fails to decode.

        python-engineio decodes and handles the packets in one go and logs a traceback for
        a payload that does not decode ("post request handler error"); a phone could fill
        the log with them. Here a malformed payload is dropped whole, logged at DEBUG,
        as malformed websocket messages are. The packets are counted by the frame meter
        before any is decoded, and those over budget dropped; python-engineio's own bound
        (16 packets a POST, or the whole POST is refused) would lose a page's clock-sync
        burst sent while it still polls.
        """
        length = int(environ.get("CONTENT_LENGTH", "0"))
        if length > self.server.max_http_buffer_size:
            raise eio_exceptions.ContentTooLongError()
        body = await environ["wsgi.input"].read(length)
        try:
            text = body.decode("utf-8")
            if text.startswith("d="):  # a JSONP POST: the payload is form-encoded
                text = urllib.parse.parse_qs(text)["d"][0]
            segments = text.split("\x1e")
            if self.meter is not None:
                segments = await self._within_budget(segments)
            packets = [eio_packet.Packet(encoded_packet=segment) for segment in segments]
            for pkt in packets:
                if pkt.packet_type not in CLIENT_POST_TYPES:
                    raise ValueError(f"packet type {pkt.packet_type} in a POST")
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            SERVER.debug("%s: dropped a malformed polling payload: %s", self.sid, exc)
            return
        for pkt in packets:
            await self.receive(pkt)

    async def _within_budget(self, segments: list[str]) -> list[str]:
        """The encoded packets of a POST that the meter admits (a body holds up to
        ``max_http_buffer_size`` bytes of them)."""
        admitted: list[str] = []
        for segment in segments:
            verdict = self._verdict(segment == "3")
            if verdict is Verdict.PASS:
                admitted.append(segment)
            elif verdict is Verdict.CUT:
                await self._cut_off(None)
                return []
            elif verdict is Verdict.ANSWER:
                await self.send(eio_packet.Packet(eio_packet.MESSAGE, data=RATE_LIMITED_EVENT))
        return admitted

    def _verdict(self, pong: bool) -> Verdict:
        """The meter's verdict on one frame; the pong we wait for is free."""
        meter = self.meter
        if meter is None or (pong and self.last_ping is not None):
            return Verdict.PASS
        return meter.take()

    async def _cut_off(self, transport: asyncio.Transport | None) -> None:
        """Close a connection that keeps flooding, and stop reading what it sends."""
        self.server.report_flood(self)
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
        if transport is not None:
            transport.abort()  # a close handshake would read the flood on for seconds

    # -- pings -----------------------------------------------------------------------------

    def schedule_ping(self) -> None:
        # As python-engineio: a pong (or the handshake) starts the next ping interval, once.
        if self.last_ping:
            self.last_ping = None
            self.ping_due = time.time() + self.server.ping_interval

    def needs_sweep(self, now: float) -> bool:
        """Whether a ping is due or a pong overdue (most visits: neither, and no coroutine)."""
        last_ping = self.last_ping
        if last_ping is None:
            return now >= self.ping_due
        timeout: float = self.server.ping_timeout
        return now - last_ping > timeout

    async def sweep(self, now: float) -> None:
        """The service sweep's visit, once ``needs_sweep(now)``: send the due ping or close
        on the overdue pong."""
        if self.last_ping is None:
            # Not only connected sockets: one whose websocket never came up gets its ping
            # queued, misses the pong and is closed like any silent peer.
            self.last_ping = now
            await self.send(eio_packet.Packet(eio_packet.PING))
        else:
            await self.check_ping_timeout()

    # -- closing ---------------------------------------------------------------------------

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """Close the socket: the disconnect event, a CLOSE packet unless aborted, and the
        websocket itself (its read loop ends)."""
        if self.closed or self.closing:
            return
        self.closing = True
        self.server.release_address(self)
        await self.server._trigger_event(
            "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT, run_async=False
        )
        if not abort:
            await self.send(eio_packet.Packet(eio_packet.CLOSE))
        self.closed = True
        self.transport = None
        if abort and not wait and self._queue is not None:
            # A long-polling client that said goodbye is still waiting on its poll: answer
            # it now (python-engineio left it hanging for the ping interval and timeout, and
            # python-socketio's client waits that long in disconnect()).
            self._queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
        ws = self.ws
        if ws is not None and not ws.closed:
            # Not awaited here: a peer that is gone makes the close handshake wait its timeout.
            self.server.spawn(ws.close())
        if wait and self._queue is not None:
            await self._queue.join()

    # -- the websocket ---------------------------------------------------------------------

    async def _upgrade_websocket(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        """Open the websocket (a direct connection or an upgrade from polling) and serve it."""
        if self.upgraded:
            raise OSError("Socket has been upgraded already")
        request: web.Request = environ["aiohttp.request"]
        ws = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=self.server.compress
        )
        try:
            await ws.prepare(request)
        except ConnectionError as exc:  # the peer went away mid-handshake: nothing to serve
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
            SERVER.debug("%s went away during the websocket handshake: %s", self.sid, exc)
            # (re-raised as is, aiohttp would log a traceback at ERROR for each)
            raise web.HTTPBadRequest() from None
        except BaseException:
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
            raise
        slim_environ(environ)  # connect handlers have run, the upgrade headers are checked
        self.ws = ws
        try:
            await self._serve_websocket(ws, request.transport)
        finally:
            self.ws = None
            self.transport = None
        return ws

    async def _receive_text(self, ws: web.WebSocketResponse) -> str | bytes | None:
        """The next Engine.IO packet's text, or None once the websocket is done."""
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                return None  # closing, closed or a protocol error
            data: str | bytes = msg.data
            if len(data) > self.server.max_http_buffer_size:
                SERVER.debug("%s sent a %d-byte packet: closing", self.sid, len(data))
                return None
            if isinstance(data, str) and (not data or data[0] not in ENGINEIO_TYPES):
                # python-engineio would log a traceback (or end the connection) for these.
                SERVER.debug("dropped a malformed Engine.IO packet %r", data[:20])
                continue
            return data

    async def _serve_websocket(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None
    ) -> None:
        if self.connected:  # an upgrade from long-polling: the probe, then UPGRADE
            self.upgrading = True  # packets sent meanwhile wait in the queue
            data = await self._receive_text(ws)
            probe = eio_packet.Packet(encoded_packet=data) if data is not None else None
            if probe is None or probe.packet_type != eio_packet.PING or probe.data != "probe":
                SERVER.debug("%s: failed websocket upgrade, no probe", self.sid)
                self.upgrading = False
                return
            await ws.send_str(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            data = await self._receive_text(ws)
            upgrade = eio_packet.Packet(encoded_packet=data) if data is not None else None
            if upgrade is None or upgrade.packet_type != eio_packet.UPGRADE:
                SERVER.debug("%s: failed websocket upgrade, no UPGRADE packet", self.sid)
                self.upgrading = False
                return
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True
        if transport is not None and not self.closed:
            self._flush_queue_to(transport)
            if self.meter is not None:
                limit_receive_buffer(transport)
        while not self.closed:
            data = await self._receive_text(ws)
            if data is None:
                break
            if self.meter is not None:
                verdict = self._verdict(data == "3")
                if verdict is not Verdict.PASS:
                    if verdict is Verdict.CUT:
                        await self._cut_off(transport)
                        break
                    if verdict is Verdict.ANSWER:
                        await self.send(
                            eio_packet.Packet(eio_packet.MESSAGE, data=RATE_LIMITED_EVENT)
                        )
                    continue
            handle_event = self.server.event_handler
            if (
                handle_event is not None
                and isinstance(data, str)
                and data.startswith("42")
                and handle_event(self, data)
            ):
                continue  # (else python-socketio's own path, which answers what is malformed)
            try:
                await self.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                SERVER.debug("%s: unknown Engine.IO packet %r", self.sid, data[:20])
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:  # as python-engineio: log it, keep the connection
                SERVER.exception("%s: error handling a packet", self.sid)
        self.transport = None
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        if not ws.closed:
            await ws.close()

    def _flush_queue_to(self, transport: asyncio.Transport) -> None:
        """Write what queued while polling/upgrading, then switch to direct writes."""
        queue, self._queue = self._queue, None
        self.transport = transport
        while queue is not None and not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is not None:
                self._write_packet(pkt)


class LeanServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's asyncio server building ``LeanSocket``s, with one service sweep.

    Attributes:
        lean: Build ``LeanSocket``s (else python-engineio's ``AsyncSocket``: benchmark only).
        compress: Accept permessage-deflate on websockets (off: see ``fanout.py``).
    """

    start_service_task: bool  # python-engineio's: the service task is yet to start

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean = True
        self.compress = False
        self.max_connections_per_address = 0
        self.cap_exempt: frozenset[str] = frozenset()
        self.allowed_hosts: frozenset[str] = frozenset()
        self._refused_hosts: set[str] = set()
        self._per_address: dict[str, int] = {}
        self._address_frames: dict[str, TokenBucket] = {}  # the frame budget of an address
        self._refusing: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.frame_rate_per_s = 0.0
        self.frame_burst = 0
        self.flood_cutoff_s = 0.0
        self._frame_clock = MonotonicClock()
        self._flood_logged: dict[str, float] = {}
        self._flood_cut_at: dict[str, float] = {}
        #: Handles a websocket's Socket.IO EVENT message ("42...") at once and says whether it
        #: did; set by ``BandSyncSocketServer`` (None: every message takes python-engineio's
        #: ``receive``).
        self.event_handler: Callable[[LeanSocket, str], bool] | None = None
        #: While corked, the frames written to each socket (and its transport then).
        self._corked: dict[LeanSocket, tuple[asyncio.Transport, list[bytes]]] | None = None

    def cork(self) -> bool:
        """Hold every websocket frame written from now until ``uncork``, so that each socket
        gets what one event caused in one write: a command's notice, snapshot and ack are one
        syscall, not three (and its reader wakes once). Only for a section that does not
        yield to the loop. False (and a no-op) when already corked."""
        if self._corked is not None:
            return False
        self._corked = {}
        return True

    def uncork(self) -> None:
        """Write what was held, each socket's frames in the order they were written."""
        corked, self._corked = self._corked, None
        if not corked:
            return
        for transport, frames in corked.values():
            if not transport.is_closing():
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task this server holds on to until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def attach(self, app: web.Application, engineio_path: str = "engine.io") -> None:
        """Route the Engine.IO endpoint: GET and OPTIONS straight to the server, POST through
        the body limit (a middleware would sit in every websocket's call chain for good)."""
        endpoint = f"/{engineio_path.strip('/')}/"
        app.router.add_get(endpoint, self.handle_request)
        app.router.add_post(endpoint, self._handle_post)
        app.router.add_route("OPTIONS", endpoint, self.handle_request)

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        """A long-polling POST, answered 413 up front when it declares a body over the limit.

        python-engineio reads the body through the request stream (aiohttp's
        ``client_max_size`` does not apply there) and, on a body over
        ``max_http_buffer_size``, disconnects the socket and waits for a poll to drain its
        queue: a client that never polls would leave that request hanging for good.
        """
        sid = request.query.get("sid")
        socket = self.sockets.get(sid) if sid is not None else None
        if socket is not None and socket.closed:
            # python-engineio raises (a traceback at ERROR) on a POST for a socket that is
            # closed but not yet forgotten: a cut-off flooder's next POST, for one.
            self.sockets.pop(sid, None)
            SERVER.debug("a long-polling POST for the closed session %s", sid)
            return web.Response(status=400, text="this session is closed\n")
        length = request.content_length
        if length is not None and length > self.max_http_buffer_size:
            SERVER.debug("refused a %d-byte long-polling POST", length)
            return web.Response(
                status=413, text=f"payload too large (limit {self.max_http_buffer_size} bytes)\n"
            )
        response: web.StreamResponse = await self.handle_request(request)
        return response

    def _log_error_once(self, message: str, message_key: str) -> None:
        # A poll or POST for a session that is gone is a client that is late (its socket
        # timed out, or was cut off for flooding), not a server error: python-engineio
        # logs the first at ERROR.
        if message_key == "bad-sid":
            SERVER.debug("%s", message)
            return
        super()._log_error_once(message, message_key)

    def limit_connections(self, per_address: int, exempt: frozenset[str]) -> None:
        """Cap the connections one peer address may hold (0: no cap), ``exempt`` excepted."""
        self.max_connections_per_address = per_address
        self.cap_exempt = exempt

    def limit_frames(self, rate_per_s: float, burst: int, cutoff_s: float) -> None:
        """Count the frames each connection sends (``rate_per_s`` on average, bursts of
        ``burst``; 0: no limit) and cut off one whose dropped frames add up to ``cutoff_s``
        seconds of its budget (``FrameMeter``). Applies to connections opened from now on."""
        self.frame_rate_per_s = rate_per_s
        self.frame_burst = burst
        self.flood_cutoff_s = cutoff_s

    def new_meter(self, address: str | None = None) -> FrameMeter | None:
        """A frame meter for a new connection (None when frames are not limited). A counted
        ``address`` (not exempt) also has one budget for all its connections together:
        ``ADDRESS_FRAME_BUDGET`` connections' worth, however many it opens."""
        if self.frame_rate_per_s <= 0 or self.frame_burst <= 0:
            return None
        shared = None
        if address is not None:
            shared = self._address_frames.get(address)
            if shared is None:
                shared = self._address_frames[address] = TokenBucket(
                    self.frame_rate_per_s * ADDRESS_FRAME_BUDGET,
                    int(self.frame_burst * ADDRESS_FRAME_BUDGET),
                    self._frame_clock,
                )
        return FrameMeter(
            self.frame_rate_per_s,
            self.frame_burst,
            self._frame_clock,
            cutoff_s=self.flood_cutoff_s,
            shared=shared,
        )

    def cooling_down(self, address: str) -> bool:
        """Whether ``address`` had a connection cut off for flooding in the last
        ``FLOOD_COOLDOWN_S`` (its new connections are refused meanwhile: a flooder that
        reconnects at once would get a fresh budget each time)."""
        cut_at = self._flood_cut_at.get(address)
        return cut_at is not None and time.monotonic() - cut_at < FLOOD_COOLDOWN_S

    def report_flood(self, socket: LeanSocket) -> None:
        """Log a cut-off flooder at WARNING, at most once a minute per address."""
        address = socket.peer or "?"
        now = time.monotonic()
        if address not in self.cap_exempt:
            if len(self._flood_cut_at) >= 1000:
                self._flood_cut_at = {
                    a: t for a, t in self._flood_cut_at.items() if now - t < FLOOD_COOLDOWN_S
                }
            self._flood_cut_at[address] = now
        if now - self._flood_logged.get(address, float("-inf")) < FLOOD_LOG_INTERVAL_S:
            SERVER.debug("%s from %s kept flooding: closed", socket.sid, address)
            return
        if len(self._flood_logged) >= 1000:  # forget the oldest half
            for old in sorted(self._flood_logged, key=self._flood_logged.__getitem__)[:500]:
                del self._flood_logged[old]
        self._flood_logged[address] = now
        SERVER.warning(
            "closed a connection from %s: it kept sending over its budget of %g frames/s "
            "(%d dropped unread)",
            address,
            self.frame_rate_per_s,
            socket.meter.dropped if socket.meter is not None else 0,
        )

    def connections_from(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def _admit(self, environ: dict[str, Any]) -> tuple[bool, str | None]:
        """Whether a new connection may open, and the address it counts against (None: not
        counted: exempt, no cap, or python-engineio's own socket)."""
        request = environ.get("aiohttp.request")
        address = getattr(request, "remote", None)
        if address:  # python-engineio's aiohttp driver says 127.0.0.1 for every peer
            environ["REMOTE_ADDR"] = address
        if address and address not in self.cap_exempt and self.cooling_down(address):
            SERVER.debug("refused a connection from %s: cut off for flooding", address)
            return False, None
        cap = self.max_connections_per_address
        if not self.lean or cap <= 0 or not address or address in self.cap_exempt:
            return True, None
        if self._per_address.get(address, 0) >= cap:
            if address not in self._refusing:
                self._refusing.add(address)
                SERVER.warning(
                    "refusing further connections from %s: it holds %d (the cap)", address, cap
                )
            return False, None
        self._per_address[address] = self._per_address.get(address, 0) + 1
        return True, address

    def release_address(self, socket: LeanSocket) -> None:
        """Give back the slot ``socket`` took (once; a no-op for uncounted sockets)."""
        address, socket.address = socket.address, None
        if address is None:
            return
        left = self._per_address.get(address, 1) - 1
        if left > 0:
            self._per_address[address] = left
        else:
            self._per_address.pop(address, None)
            self._address_frames.pop(address, None)
        self._refusing.discard(address)

    def _new_socket(self, sid: str) -> AsyncSocket:
        return LeanSocket(self, sid) if self.lean else AsyncSocket(self, sid)

    async def _handle_connect(
        self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None
    ) -> Any:
        """python-engineio 4.15's ``_handle_connect``, building sockets by ``_new_socket``."""
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        host = str(environ.get("HTTP_HOST", ""))
        if from_a_browser(environ) and not host_is_allowed(host, self.allowed_hosts):
            name = host_name(host)[:100]
            if name not in self._refused_hosts and len(self._refused_hosts) < 100:
                self._refused_hosts.add(name)
                SERVER.warning(
                    "refused a browser reaching this server as %r: not an IP address, "
                    "localhost, *.local or an allowed host (settings: allowed_hosts)",
                    name,
                )
            return {
                "status": "403 Forbidden",
                "headers": [("Content-Type", "text/plain")],
                "response": b"this server is reached by its IP address (or an allowed host)\n",
            }
        admitted, address = self._admit(environ)
        if not admitted:
            return {
                "status": "429 Too Many Requests",
                "headers": [("Content-Type", "text/plain")],
                "response": b"too many connections from this address\n",
            }
        sid = self.generate_id()
        s = self._new_socket(sid)
        if isinstance(s, LeanSocket):
            s.address = address
            s.peer = getattr(environ.get("aiohttp.request"), "remote", None)
            s.meter = self.new_meter(address)
        self.sockets[sid] = s
        pkt = eio_packet.Packet(
            eio_packet.OPEN,
            {
                "sid": sid,
                "upgrades": self._upgrades(sid, transport),
                "pingTimeout": int(self.ping_timeout * 1000),
                # (python-engineio rounds to whole seconds before scaling: 0.3 s became 0)
                "pingInterval": int((self.ping_interval + self.ping_interval_grace_period) * 1000),
                "maxPayload": self.max_http_buffer_size,
            },
        )
        await s.send(pkt)
        ret = await self._trigger_event("connect", sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            if isinstance(s, LeanSocket):
                self.release_address(s)
            SERVER.debug("connection %s refused by the application", sid)
            return self._unauthorized(ret or None)
        s.schedule_ping()
        if transport == "websocket":
            ret = await s.handle_get_request(environ)
            if s.closed and sid in self.sockets:
                del self.sockets[sid]  # the websocket has ended
            return ret
        s.connected = True
        try:
            return self._ok(await s.poll(), jsonp_index=jsonp_index)
        except eio_exceptions.QueueEmpty:
            return self._bad_request()

    async def _service_task(self) -> None:
        """Every ``SWEEP_INTERVAL_S``: due pings, overdue pongs, closed sockets forgotten."""
        if not self.lean:
            await super()._service_task()
            return
        self.service_task_event = self.create_event()
        while not self.service_task_event.is_set():
            now = time.time()
            for sid, socket in list(self.sockets.items()):
                if socket.closed:
                    self.sockets.pop(sid, None)
                elif not socket.closing and socket.needs_sweep(now):
                    try:
                        await socket.sweep(now)
                    except Exception:  # one socket's trouble must not stop the pings
                        SERVER.exception("service sweep: socket %s", sid)
            try:
                await asyncio.wait_for(self.service_task_event.wait(), SWEEP_INTERVAL_S)
            except TimeoutError:
                continue


#: The digits of a Socket.IO ack id.
DIGITS = frozenset("0123456789")
#: An ack id longer than this is left to python-socketio (which refuses it).
MAX_ACK_ID_DIGITS = 15


def bounded_int(digits: str) -> int:
    """An integer from JSON, refused past 100 digits (as python-engineio's ``json`` does)."""
    if len(digits) > 100:
        raise ValueError("Integer is too large")
    return int(digits)


def parse_event(text: str, loads: Callable[[str], Any]) -> tuple[int | None, list[Any]] | None:
    """The ack id and the arguments of an Engine.IO MESSAGE carrying a plain Socket.IO EVENT
    for the default namespace: ``42``, the ack id's digits if any, a JSON array whose first
    item (the event's name) is a string. None for anything else (another namespace, binary
    attachments, JSON that does not parse, no name): python-socketio's path handles those,
    and the guards answer what is malformed (guard.py)."""
    end = len(text)
    i = 2
    while i < end and text[i] in DIGITS:
        i += 1
    if i == end or text[i] != "[" or i - 2 > MAX_ACK_ID_DIGITS:
        return None
    try:
        data = loads(text[i:])
    except (ValueError, RecursionError):
        return None
    if data.__class__ is not list or not data or data[0].__class__ is not str:
        return None
    return (int(text[2:i]) if i > 2 else None), data


class _Resumed:
    """What a task awaits to carry on a coroutine that was started by hand and suspended on
    ``pending`` (the future it awaits, or None for a bare yield): every value the task sends
    and every exception it throws (a cancellation) goes on to the coroutine."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class BandSyncSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on ``LeanServer``, keeping only a slim copy of each
    connection's ``environ`` (python-socketio keeps it for the connection's life), and
    dispatching a websocket's events without a task each.

    python-socketio decodes an event (two packet objects), starts a task for its handler (a
    loop iteration before it runs), encodes the ack through two more packet objects and
    writes each packet, the event's own emits included, in a write of its own.
    ``dispatch_event`` (``LeanServer.event_handler``) parses a plain EVENT message once, runs
    its handler at once, corked (``LeanServer.cork``): a handler that finishes without
    waiting (most do, with the in-memory store) has its emits and its ack framed and written
    together. A handler that does wait (Redis, a lock another connection holds) carries on
    as a task, as python-socketio's would, and the connection's next frames are read
    meanwhile: one slow command never holds up its connection, nor any other.

    Attributes:
        fast_events: Dispatch websocket events this way (off: python-socketio's own path,
            for comparison).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_events = True
        self._coroutine_handlers: dict[Any, bool] = {}
        codec = self.packet_class.json
        # python-engineio's json.loads builds a decoder a call (to bound integers' digits),
        # and json.dumps with separators an encoder: the same, built once.
        self._loads: Callable[[str], Any] = (
            json.JSONDecoder(parse_int=bounded_int).decode if codec is eio_json else codec.loads
        )
        self._dumps: Callable[[Any], str] = (
            json.JSONEncoder(separators=(",", ":")).encode
            if codec is eio_json
            else functools.partial(codec.dumps, separators=(",", ":"))
        )
        self.eio.event_handler = self.dispatch_event

    def _engineio_server_class(self) -> type[LeanServer]:
        return LeanServer

    def dispatch_event(self, socket: LeanSocket, text: str) -> bool:
        """Handle the EVENT message ``text`` from ``socket``'s websocket (see the class);
        False, having done nothing, for what python-socketio's path is to handle."""
        if not self.fast_events:
            return False
        parsed = parse_event(text, self._loads)
        if parsed is None or parsed[1][0] in self.reserved_events:
            return False
        ack_id, data = parsed
        eio_sid = socket.sid
        manager = self.manager
        sid = manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None or eio_sid in self._binary_packet or not manager.is_connected(sid, "/"):
            return False
        handler = self.handlers.get("/", {}).get(data[0])
        if handler is None:
            return False  # a catch-all or namespace handler, or none: python-socketio's call
        is_coroutine = self._coroutine_handlers.get(handler)
        if is_coroutine is None:
            is_coroutine = self._coroutine_handlers[handler] = inspect.iscoroutinefunction(handler)
        if not is_coroutine:
            return False
        eio: LeanServer = self.eio
        corked = eio.cork()
        try:
            coro = handler(sid, *data[1:])
            try:
                pending = coro.send(None)
            except StopIteration as done:
                if ack_id is not None:
                    self._send_ack(socket, ack_id, done.value)
                return True
        except Exception:  # our handlers answer their own errors: this is a bug
            SERVER.exception("%s: handler of %r failed", sid, data[0])
            return True
        finally:
            if corked:
                eio.uncork()
        eio.spawn(self._carry_on(socket, sid, data[0], ack_id, coro, pending))
        return True

    async def _carry_on(
        self,
        socket: LeanSocket,
        sid: str,
        event: str,
        ack_id: int | None,
        coro: Coroutine[Any, Any, Any],
        pending: Any,
    ) -> None:
        """The rest of a handler that waited, and then its ack."""
        try:
            result = await _Resumed(coro, pending)
        except Exception:
            SERVER.exception("%s: handler of %r failed", sid, event)
            return
        if ack_id is not None:
            self._send_ack(socket, ack_id, result)

    def _send_ack(self, socket: LeanSocket, ack_id: int, result: Any) -> None:
        """Frame and write the ack of event ``ack_id``, as python-socketio encodes it."""
        if result is None:
            data: list[Any] = []
        elif isinstance(result, tuple):
            data = list(result)
        else:
            data = [result]
        try:
            text = "3" + str(ack_id) + self._dumps(data)
        except (TypeError, ValueError):  # binary data (or not JSON): python-socketio's encoder
            pkt = self.packet_class(sio_packet.ACK, namespace="/", id=ack_id, data=data)
            socket.server.spawn(self._send_packet(socket.sid, pkt))
            return
        if socket.transport is not None:
            socket.write_frame(websocket_frame("4" + text))
        elif not socket.closed:
            socket.server.spawn(socket.send(eio_packet.Packet(eio_packet.MESSAGE, text)))

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        slim = {key: value for key, value in environ.items() if key in ENVIRON_KEEP}
        return await super()._handle_eio_connect(eio_sid, slim)
