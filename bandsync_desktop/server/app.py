"""The app factory and the runner: one aiohttp application with python-socketio attached.

``create_app`` builds everything from settings and keeps its parts under typed ``AppKey``s;
background tasks are started and cancelled by ``cleanup_ctx``. ``ServerRunner`` binds it to a
host and port (headless CLI, the console and tests all use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import WSCloseCode, web

from .. import __version__
from ..config import Settings
from ..core.clock import Clock, MonotonicClock
from ..core.conductor import STEP_S as CONDUCT_INTERVAL_S
from ..core.session import Session, carried_over
from ..log import SERVER
from . import handlers
from .engine import BandSyncSocketServer
from .fanout import RoomEmitter, TickFanout
from .guard import guard_malformed_packets
from .peers import Actor, ActorHost, ActorSet
from .readmodel import ServerView
from .service import SessionService
from .storage import SessionStore, create_store
from .tasks import LoopLagMonitor, run_every, run_ticker, send_heartbeats
from .tcpguard import GuardedSite, TcpGuard, raise_open_files_limit
from .web import add_web_routes

if TYPE_CHECKING:
    from .cluster import Cluster

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", SessionService)
SIO = web.AppKey("sio", socketio.AsyncServer)
FANOUT = web.AppKey("fanout", TickFanout)
LAG = web.AppKey("lag", LoopLagMonitor)
STARTED_AT = web.AppKey("started_at", float)
BAND_SESSION = web.AppKey("band_session", str)
CARRY_OVER = web.AppKey("carry_over", Session)  # the band session of the previous server
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
ACTORS = web.AppKey("actors", ActorSet)  # the in-process peers following the band session
_ACTORS_TO_START: web.AppKey[tuple[Actor, ...]] = web.AppKey("actors_to_start")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    store: SessionStore | None = None,
    band_session: bool = False,
    carry_over: Session | None = None,
    actors: Sequence[Actor] = (),
) -> web.Application:
    """Build the server. ``band_session`` creates the console's protected session at start;
    ``carry_over`` (the band session of the console's previous server) makes it start with
    that session's tempo, meter, count-in, song, message and leader key
    (``core.session.carried_over``), unless the store still holds the session (Redis).
    ``actors`` (bridges to other gear, ``server/peers.py``) follow the band session: they
    start once it exists and stop before the server closes; more can be started later
    through ``app[ACTORS]``."""
    if actors and not band_session:
        raise ValueError("actors follow the band session: start it too (band_session=True)")
    clock = clock or MonotonicClock()
    store = store or create_store(settings.redis_url, ttl_s=settings.idle_expiry_s)
    cluster = _cluster_for(store, settings, clock)
    cors: str | list[str] | None = list(settings.cors_origins) or None
    sio = BandSyncSocketServer(
        async_mode="aiohttp",
        client_manager=cluster.manager if cluster is not None else None,
        cors_allowed_origins=cors,
        max_http_buffer_size=settings.max_payload_bytes,
        ping_interval=10,
        ping_timeout=10,
        logger=False,
        engineio_logger=False,
    )
    sio.eio.limit_connections(
        settings.max_connections_per_address, frozenset(settings.connection_cap_exempt)
    )
    # Frames are metered before they are decoded, frame_rate_factor times the event budget.
    factor = settings.frame_rate_factor
    sio.eio.limit_frames(
        settings.rate_limit_per_s * factor,
        round(settings.rate_limit_burst * factor),
        settings.flood_cutoff_s,
    )
    sio.eio.allowed_hosts = frozenset(host.lower() for host in settings.allowed_hosts)
    fanout = TickFanout(sio)
    # One node: room broadcasts through the fan-out; several: through the Redis manager.
    emitter = RoomEmitter(sio, fanout) if cluster is None else sio
    service = SessionService(settings, store, clock, emitter)
    # (long-polling POSTs are limited by the Engine.IO route itself: engine.py)
    app = web.Application(client_max_size=settings.max_payload_bytes)
    if cluster is not None:
        cluster.install(sio)
        cluster.attach(service)
        app[CLUSTER] = cluster
    app[SETTINGS] = settings
    app[SERVICE] = service
    app[SIO] = sio
    # Lean Engine.IO sockets without permessage-deflate (engine.py); ticks framed once per
    # room (fanout.py).
    app[FANOUT] = fanout
    app[LAG] = LoopLagMonitor()
    app[STARTED_AT] = time.monotonic()
    sio.attach(app)
    handlers.register(sio, service)
    guard_malformed_packets(sio, service)  # undecodable packets: an error, no traceback
    app.router.add_get("/health", health)
    add_web_routes(app)
    if band_session:
        app[BAND_SESSION] = settings.band_session_id
        if carry_over is not None:
            app[CARRY_OVER] = carry_over
        host = ActorHost(service, ServerView(service, app[LAG]), settings.band_session_id)
        app[ACTORS] = ActorSet(host)
        app[_ACTORS_TO_START] = tuple(actors)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _cluster_for(store: SessionStore, settings: Settings, clock: Clock) -> Cluster | None:
    """With a Redis store: this node's place among the nodes sharing that Redis."""
    if store.kind != "redis":
        return None
    from .cluster import Cluster  # imported lazily: memory mode needs no redis client
    from .storage.resilient import ResilientStore

    return Cluster(store, settings, clock) if isinstance(store, ResilientStore) else None


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    service = app[SERVICE]
    await service.store.start()
    cluster = app.get(CLUSTER)
    if cluster is not None:
        await cluster.start(service)  # members of this node's previous life become away
    if BAND_SESSION in app:
        if CARRY_OVER in app and app[CARRY_OVER].session_id == app[BAND_SESSION]:
            # A store that kept the session (Redis) keeps it: create refuses an existing id.
            await service.store.create(carried_over(app[CARRY_OVER], service.clock.now_ms()))
        await service.ensure_session(app[BAND_SESSION], console_hosted=True)
    jobs: list[Coroutine[Any, Any, None]] = [
        run_ticker(service, settings.tick_hz, app[FANOUT]),
        run_every(settings.housekeeping_interval_s, "housekeeping", service.housekeeping),
        run_every(CONDUCT_INTERVAL_S, "conductor", service.conduct),
        run_every(settings.sweep_interval_s, "expiry sweep", service.expire_idle),
        run_every(
            settings.heartbeat_interval_s,
            "heartbeats",
            lambda: send_heartbeats(service, app[FANOUT]),
        ),
        app[LAG].run(),
    ]
    if cluster is not None:
        jobs.append(cluster.run(service))
    tasks = [asyncio.create_task(job) for job in jobs]
    actor_set = app.get(ACTORS)
    try:
        if actor_set is not None:
            to_start: tuple[Actor, ...] = app[_ACTORS_TO_START]
            await actor_set.start_all(to_start)
        yield
    finally:
        if actor_set is not None:
            await actor_set.stop_all()  # before the sessions close: they still read them
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.close()
        if cluster is not None:
            await cluster.close()
        await service.store.close()


async def health(request: web.Request) -> web.Response:
    """``GET /health``: status, store, counts, uptime, version, loop lag. No keys, ever."""
    app = request.app
    service = app[SERVICE]
    store = service.store
    body = {
        "status": "ok",
        "version": __version__,
        "store": {"kind": store.kind, "state": str(store.state)},
        "node": app[CLUSTER].node_id if CLUSTER in app else None,
        "sessions": await store.session_count(),
        "playing": len(service.playing_sessions()),
        "connections": len(service.connections),
        "uptimeS": round(time.monotonic() - app[STARTED_AT], 3),
        "serverTime": service.clock.now_ms(),
        "eventLoopLag": app[LAG].summary(),
    }
    return web.json_response(body)


class ServerRunner:
    """Runs an app on a host/port inside the current event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None
        self.guard: TcpGuard | None = None  # set by start
        self.host = ""
        self.port = 0
        self._websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        app.on_response_prepare.append(self._track_websocket)

    async def _track_websocket(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            self._websockets.add(response)

    @property
    def service(self) -> SessionService:
        return self.app[SERVICE]

    @property
    def sio(self) -> socketio.AsyncServer:
        return self.app[SIO]

    @property
    def actors(self) -> ActorSet | None:
        """The in-process peers following the band session (``None`` without one)."""
        return self.app.get(ACTORS)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    async def start(self, host: str, port: int) -> None:
        """Bind and serve. ``port=0`` picks a free port (see ``self.port`` after)."""
        settings = self.app[SETTINGS]
        raise_open_files_limit()  # before the connection budget is read from it
        # Connections are counted and capped at accept, before aiohttp parses a byte
        # (tcpguard.py); aiohttp closes a connection idle between requests.
        guard = TcpGuard.from_settings(settings)
        # A stopping server waits at most half a second for peers to finish closing;
        # some clients (python-socketio's own, for one) take seconds to answer a server close.
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            keepalive_timeout=settings.http_keepalive_timeout_s,
        )
        await runner.setup()
        site = GuardedSite(runner, host, port, guard)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.guard = guard
        self.host = host
        server = site.server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        SERVER.info("serving on %s:%s", host, self.port)

    async def stop(self) -> None:
        """Tell followers, close sockets, cancel tasks, close the store."""
        if self._runner is None:
            return
        sio = self.sio
        with contextlib.suppress(Exception):
            await sio.emit("server_shutdown", {"reason": "server stopping"})
        if CLUSTER in self.app:  # members become away; with Redis the band plays on
            await self.app[CLUSTER].release(self.service)
        await sio.shutdown()
        # Close the sockets from this side, else cleanup waits for their handlers (60 s).
        # Websockets get a close frame, which clients answer at once (an engine.io CLOSE
        # packet made python-socketio clients wait out their 5 s timeout); long-polling
        # clients get the CLOSE packet with their pending poll.
        websockets = [ws for ws in self._websockets if not ws.closed]
        if websockets:
            await asyncio.gather(
                *(
                    ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
                    for ws in websockets
                ),
                return_exceptions=True,
            )
        for socket in list(sio.eio.sockets.values()):
            if not socket.upgraded and not socket.closed:
                await socket.close(wait=False)
        await self._runner.cleanup()
        self._runner = None
        SERVER.info("server stopped")
