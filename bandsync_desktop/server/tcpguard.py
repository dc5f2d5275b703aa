"""TCP connections guarded before any HTTP parsing: caps, a header deadline, a descriptor
budget, and the open-files limit.

The Engine.IO cap (``engine.py``) counts socket.io connections only, after aiohttp has parsed
a request. A phone on the same Wi-Fi can instead open a thousand TCP connections and send
half a request on each: every one holds a file descriptor, an aiohttp handler and a task, and
at the open-files limit the server can no longer accept a member, answer ``/health`` or open
a file. So:

- ``GuardedSite`` accepts by itself and asks a ``TcpGuard``: a connection over the
  per-address cap (``max_tcp_per_address``, loopback exempt) or over the budget of
  connections in all (``max_tcp_connections``, by default the open-files limit minus
  ``fd_reserve``) is reset right after ``accept()``, before a transport, a protocol or a
  task exists; one line per address (or for the budget) per minute says so (log space is a
  resource too). Out of descriptors it logs one line per minute and pauses a second, where
  asyncio logged a traceback per attempt, hundreds a second.
- A ``GuardedConnection`` holds each admitted connection without an aiohttp handler until
  its first request's headers are complete; if they are not within
  ``http_header_timeout_s`` (a slowloris, or a socket that never speaks) it is reset.
- After that aiohttp owns it, and closes it when idle between requests for
  ``http_keepalive_timeout_s`` (its ``keepalive_timeout``, which also bounds a slow *next*
  request). A request in progress, a websocket or a long-poll, is never cut.

``raise_open_files_limit`` lifts the soft open-files limit to the hard one at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

try:
    import resource
except ImportError:  # Windows: no open-files limit to read or raise
    resource = None  # type: ignore[assignment]

from ..config import Settings
from ..log import SERVER

#: End of a request's headers. Every client we serve (browsers, socket.io clients) sends CRLF.
HEADERS_END = b"\r\n\r\n"
#: Header bytes held before aiohttp sees them; past this, aiohttp's parser refuses them.
MAX_HEADER_BYTES = 64 * 1024
#: One log line per address (or for the budget) per window.
LOG_WINDOW_S = 60.0
#: Addresses remembered for the log window; a spray of IPv6 addresses is logged in bulk.
MAX_LOGGED_ADDRESSES = 4096
#: A soft open-files limit to ask for when the hard limit is unlimited.
UNLIMITED_TARGET = 65536

ProtocolFactory = Callable[[], asyncio.BaseProtocol]
#: ``accept()`` errors that mean "out of descriptors or memory": pause, then try again.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: The listening sockets' backlog (aiohttp's default).
BACKLOG = 128
#: Connections accepted per wake-up of the listening socket (asyncio accepts the backlog).
ACCEPT_BATCH = BACKLOG
#: Seconds accepting pauses when descriptors are out (as asyncio does).
ACCEPT_RETRY_S = 1.0
#: struct linger {on, 0 s}: close() resets the connection at once instead of lingering.
_RESET = struct.pack("ii", 1, 0)


class Admitted:
    """A connection counted in at accept, from ``address``; ``claimed`` once its protocol
    has it (from then on the protocol gives the place back when the connection is lost)."""

    __slots__ = ("address", "claimed")

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.claimed = False


def reset(sock: Any) -> None:
    """Make closing ``sock`` send a reset: the peer learns at once, and no TIME_WAIT entry
    is left on this side for a connection we refused."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)


def open_files_limit() -> int | None:
    """The soft open-files limit (``None``: unlimited, or no such thing on this system)."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft open-files limit to the hard one where allowed; return (before, after).

    A desktop session often starts with a soft limit of 1,024 and a hard one far above it:
    the server may take the rest without privileges. An unlimited hard limit is met with
    ``UNLIMITED_TARGET`` (macOS refuses more than its ``OPEN_MAX`` even then: 10,240 is tried
    next). ``None`` where there is no such limit (Windows).
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    targets = [UNLIMITED_TARGET, 10240] if hard == resource.RLIM_INFINITY else [hard]
    for target in targets:
        if soft != resource.RLIM_INFINITY and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            SERVER.info("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
            continue
        SERVER.info("open-files limit raised from %d to %d", soft, target)
        return soft, target
    return soft, soft


def connection_budget(settings: Settings) -> int:
    """How many TCP connections the server holds in all before it refuses newcomers.

    ``max_tcp_connections`` when set; else the open-files limit minus ``fd_reserve`` (the
    store's connections, log files, the page's files, Qt's own), and never less than half the
    limit.
    """
    if settings.max_tcp_connections > 0:
        return settings.max_tcp_connections
    soft = open_files_limit() or UNLIMITED_TARGET
    return max(soft - settings.fd_reserve, soft // 2, 1)


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The peer's IP address as Engine.IO's cap sees it (IPv4-mapped IPv6 as plain IPv4)."""
    return address_of(transport.get_extra_info("peername"))


def address_of(peer: object) -> str | None:
    """The IP address in a socket address (``None`` for a Unix socket or a peer gone)."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    address = peer[0]
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class TcpGuard:
    """Counts TCP connections per peer address and in all, and admits or refuses new ones.

    Args:
        per_address: connections one address may hold (0: no cap).
        exempt: addresses the per-address cap does not apply to (this machine).
        budget: connections in all (0: no budget).
        header_timeout_s: seconds a new connection has to send its first request's headers.
        clock: monotonic seconds, for the log window.
    """

    def __init__(
        self,
        *,
        per_address: int,
        exempt: frozenset[str],
        budget: int,
        header_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_address < 0 or budget < 0:
            raise ValueError("a connection cap or budget must be >= 0")
        if not header_timeout_s > 0:
            raise ValueError("http_header_timeout_s must be > 0")
        self.per_address = per_address
        self.exempt = exempt
        self.budget = budget
        self.header_timeout_s = header_timeout_s
        self._clock = clock
        self._counts: dict[str, int] = {}
        self.total = 0
        self.refused_over_address_cap = 0
        self.refused_over_budget = 0
        self.header_timeouts = 0
        self._pending: set[GuardedConnection] = set()
        self._logged_at: dict[str, float] = {}  # address (or "" for the budget): last line
        self._unlogged: dict[str, int] = {}  # refusals since that line
        #: The loop serving the connections (set by ``GuardedSite.start``).
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TcpGuard:
        """A guard configured by ``settings`` (the budget read from the current limit).

        Raises:
            ValueError: a setting out of range, named in the message.
        """
        if not settings.http_keepalive_timeout_s > 0:
            raise ValueError("http_keepalive_timeout_s must be > 0")
        for name in ("max_tcp_per_address", "max_tcp_connections", "fd_reserve"):
            if getattr(settings, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        return cls(
            per_address=settings.max_tcp_per_address,
            exempt=frozenset(settings.connection_cap_exempt),
            budget=connection_budget(settings),
            header_timeout_s=settings.http_header_timeout_s,
        )

    def connections_from(self, address: str) -> int:
        return self._counts.get(address, 0)

    def protocol_factory(
        self, make_handler: ProtocolFactory, admitted: Admitted | None = None
    ) -> Callable[[], GuardedConnection]:
        """A protocol factory putting this guard before ``make_handler`` (aiohttp's
        ``web.Server``): for ``loop.create_server`` (each connection admitted when it is
        made), or, with ``admitted``, for one connection already admitted at accept."""
        return lambda: GuardedConnection(self, make_handler, admitted)

    def admit(self, address: str | None) -> bool:
        """Count a new connection from ``address`` in, or say it must be closed."""
        if self.budget and self.total >= self.budget:
            self.refused_over_budget += 1
            self._log_refusal(
                "",
                "refusing new connections: %d are open, the budget (max_tcp_connections, "
                "from the open-files limit); members already connected are kept",
                self.total,
            )
            return False
        if address is not None and self.per_address and address not in self.exempt:
            held = self._counts.get(address, 0)
            if held >= self.per_address:
                self.refused_over_address_cap += 1
                self._log_refusal(
                    address,
                    "refusing TCP connections from %s: it holds %d (max_tcp_per_address)",
                    address,
                    held,
                )
                return False
            self._counts[address] = held + 1
        self.total += 1
        return True

    def release(self, address: str | None) -> None:
        """Give back what ``admit`` counted for a connection from ``address``."""
        self.total -= 1
        if address is None or address not in self._counts:
            return
        left = self._counts[address] - 1
        if left > 0:
            self._counts[address] = left
        else:
            del self._counts[address]

    def hold(self, connection: GuardedConnection) -> None:
        """Remember a connection that has not sent a whole request yet."""
        self._pending.add(connection)

    def unhold(self, connection: GuardedConnection) -> None:
        self._pending.discard(connection)

    def close_pending(self) -> None:
        """Close connections that never got to send a whole request (at server stop: aiohttp
        knows only the ones it was handed)."""
        for connection in list(self._pending):
            connection.abort()

    def _log_refusal(self, key: str, message: str, *args: object) -> None:
        now = self._clock()
        if key not in self._logged_at and len(self._logged_at) >= MAX_LOGGED_ADDRESSES:
            self._forget_old(now)
            if len(self._logged_at) >= MAX_LOGGED_ADDRESSES:  # a spray: one line for all
                key = "*"
                message, args = (
                    "refusing TCP connections from over %d addresses",
                    (MAX_LOGGED_ADDRESSES,),
                )
        last = self._logged_at.get(key)
        if last is not None and now - last < LOG_WINDOW_S:
            self._unlogged[key] = self._unlogged.get(key, 0) + 1
            return
        more = self._unlogged.pop(key, 0)
        self._logged_at[key] = now
        if more:
            SERVER.warning(
                message + "; %d more refused in the last %d s", *args, more, LOG_WINDOW_S
            )
        else:
            SERVER.warning(message, *args)

    def _forget_old(self, now: float) -> None:
        for key, at in list(self._logged_at.items()):
            if now - at >= LOG_WINDOW_S:
                del self._logged_at[key]
                self._unlogged.pop(key, None)


class GuardedConnection(asyncio.Protocol):
    """One accepted TCP connection: counted, held without an HTTP handler until its first
    request's headers are complete, then handed to aiohttp's handler, to which every
    protocol call is passed on."""

    __slots__ = (
        "_address",
        "_admission",
        "_admitted",
        "_buffer",
        "_deadline",
        "_guard",
        "_handler",
        "_make_handler",
        "_transport",
    )

    def __init__(
        self, guard: TcpGuard, make_handler: ProtocolFactory, admitted: Admitted | None = None
    ) -> None:
        self._guard = guard
        self._make_handler = make_handler
        self._transport: asyncio.Transport | None = None
        # Admitted at accept (GuardedSite's own accept loop) or, if None, at connection_made.
        self._admission = admitted
        self._address: str | None = None
        self._admitted = False
        self._buffer = bytearray()
        self._deadline: asyncio.TimerHandle | None = None
        self._handler: Any = None  # aiohttp's RequestHandler once the headers are in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._admission is not None:
            self._admission.claimed = True
            self._address = self._admission.address
        else:
            self._address = peer_address(transport)
            if not self._guard.admit(self._address):
                reset(transport.get_extra_info("socket"))
                transport.abort()  # the descriptor is given back now, not after a handshake
                return
        self._admitted = True
        self._transport = transport
        self._guard.hold(self)
        loop = self._guard.loop or asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.header_timeout_s, self._on_header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.data_received(data)
            return
        if self._transport is None:
            return
        start = max(0, len(self._buffer) - len(HEADERS_END) + 1)
        self._buffer += data
        if self._buffer.find(HEADERS_END, start) >= 0 or len(self._buffer) > MAX_HEADER_BYTES:
            self._hand_over()

    def eof_received(self) -> bool | None:
        if self._handler is not None:
            result: bool | None = self._handler.eof_received()
            return result
        return False  # gone before sending a whole request: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._admitted:
            self._admitted = False
            self._guard.release(self._address)
        self._transport = None
        if self._handler is not None:
            self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def abort(self) -> None:
        """Close at once with a reset (no TIME_WAIT left behind for an attacker's sockets)."""
        if self._transport is not None:
            reset(self._transport.get_extra_info("socket"))
            self._transport.abort()

    def _hand_over(self) -> None:
        assert self._transport is not None
        self._stop_waiting()
        data, self._buffer = bytes(self._buffer), bytearray()
        self._handler = self._make_handler()
        self._handler.connection_made(self._transport)
        self._handler.data_received(data)

    def _stop_waiting(self) -> None:
        self._guard.unhold(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_header_timeout(self) -> None:
        self._deadline = None
        self._guard.header_timeouts += 1
        SERVER.debug(
            "closing a connection from %s: no whole request within %.1f s",
            self._address,
            self._guard.header_timeout_s,
        )
        self.abort()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with a ``TcpGuard`` before aiohttp's handlers.

    It binds the way ``TCPSite`` does (``loop.create_server``) but accepts by itself, so a
    refused connection costs an ``accept()`` and a ``close()``: no transport, no task, no
    protocol (asyncio's own accept path costs ~10x more, which a reconnecting attacker turns
    into CPU). Out of descriptors, it logs one line per minute and pauses a second, where
    asyncio (3.11) logs a traceback for every attempt: hundreds a second. On a loop that
    cannot watch sockets (Windows' proactor loop), asyncio accepts and the guard refuses in
    ``GuardedConnection.connection_made``.
    """

    def __init__(
        self, runner: web.BaseRunner, host: str | None, port: int, guard: TcpGuard
    ) -> None:
        super().__init__(runner)
        self._bind = (host or None, port)
        self.guard = guard
        self._listeners: list[socket.socket] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()  # (made in ServerRunner.start)
        self._accept_failures = 0
        self._accept_failure_logged_at: float | None = None

    @property
    def name(self) -> str:
        host, port = self._bind
        return f"http://{host or '0.0.0.0'}:{port}"

    @property
    def server(self) -> asyncio.AbstractServer | None:
        return self._server

    async def start(self) -> None:
        await super().start()
        # Kept, not looked up: under qasync the accept callback and the tasks it starts may
        # run from Qt's event processing while no asyncio loop counts as running.
        loop = self._loop = self.guard.loop = asyncio.get_running_loop()
        make_handler = self._runner.server
        assert make_handler is not None
        host, port = self._bind
        server = await loop.create_server(
            self.guard.protocol_factory(make_handler),
            host,
            port,
            backlog=BACKLOG,
            reuse_address=True,
            start_serving=False,
        )
        self._server = server
        try:
            for bound in server.sockets:
                listener = bound.dup()  # the same bound socket, as a plain socket
                self._listeners.append(listener)
                listener.setblocking(False)
                listener.listen(BACKLOG)  # asyncio would, in start_serving
                loop.add_reader(listener.fileno(), self._accept, listener)
        except NotImplementedError:
            self._close_listeners()
            await server.start_serving()

    async def stop(self) -> None:
        self._close_listeners()
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        await super().stop()
        self.guard.close_pending()

    def _close_listeners(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        loop = self._loop
        for listener in self._listeners:
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners = []

    def _accept(self, listener: socket.socket) -> None:
        """Accept what is waiting; refuse over a cap at once, hand the rest to asyncio."""
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._pause_accepting(exc)
                    return
                raise  # the loop logs it; asyncio does the same
            address = address_of(peer)
            if not self.guard.admit(address):
                reset(conn)
                conn.close()
                continue
            task = self._loop.create_task(self._serve(conn, address))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _serve(self, conn: socket.socket, address: str | None) -> None:
        """Give an admitted connection its transport and protocol."""
        admitted = Admitted(address)
        try:
            make_handler = self._runner.server
            if make_handler is None:
                raise ConnectionAbortedError("server stopping")
            factory = self.guard.protocol_factory(make_handler, admitted)
            await self._loop.connect_accepted_socket(factory, conn)
        except OSError as exc:
            SERVER.debug("a connection from %s was gone before it was served: %r", address, exc)
        finally:
            if not admitted.claimed:  # never made (gone, or we are stopping): its place back
                self.guard.release(address)
                conn.close()

    def _pause_accepting(self, exc: OSError) -> None:
        loop = self._loop
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())
        self._retry = loop.call_later(ACCEPT_RETRY_S, self._resume_accepting)
        self._accept_failures += 1
        now = time.monotonic()
        last = self._accept_failure_logged_at
        if last is not None and now - last < LOG_WINDOW_S:
            return
        self._accept_failure_logged_at = now
        more, self._accept_failures = self._accept_failures - 1, 0
        SERVER.error(
            "cannot accept connections: %s (open-files limit %s); accepting again every "
            "%.0f s (%d more such pauses in the last %d s)",
            errno.errorcode.get(exc.errno or 0, str(exc)),
            open_files_limit(),
            ACCEPT_RETRY_S,
            more,
            LOG_WINDOW_S,
        )

    def _resume_accepting(self) -> None:
        self._retry = None
        loop = self._loop
        for listener in self._listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)
