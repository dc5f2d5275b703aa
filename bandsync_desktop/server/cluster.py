"""Several server processes sharing one Redis: node identity, room broadcasts, dead nodes.

* **Node id and socket ids.** Each process has a node id (stable for a host and port, so a
  restarted process recognises its previous life) and prefixes every socket id it hands out
  with ``"<nodeId>."``. A member's stored ``socketId`` therefore says which node holds its
  connection.
* **Liveness.** Each node refreshes its entry in a sorted set of nodes every second. A node
  that has not done so for ``dead_after_s`` is dead.
* **Recovery.** Members whose node is dead (or, at start, whose socket belonged to this node's
  previous life) become *away*: their seniority is kept for their ``clientId``, a leader's seat
  is held (grace period, then election by the usual rules) — and playback is **not** paused: a
  crashed server is not a leader who walked off; the phones keep clicking from the timeline,
  so the session resumes where the timeline says it is.
* **Broadcasts.** :class:`BandRedisManager` is python-socketio's ``AsyncRedisManager`` with
  three changes: per-node events (ticks, heartbeats, shutdown notices) stay on this node;
  during a Redis outage it delivers locally and does not try to publish (the store logs the
  one warning); and it listens on its own connection with quiet reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import socketio
from redis import asyncio as aioredis

from ..config import Settings
from ..core.clock import Clock
from ..core.session import Notice, Session
from ..log import STORAGE
from .storage.redis import one_retry
from .storage.resilient import BACKOFF_S, UNREACHABLE, ResilientStore

if TYPE_CHECKING:
    from .service import SessionService

#: Events every node computes and sends to its own sockets only: never published.
LOCAL_ONLY: Final = frozenset({"scroll_tick", "heartbeat", "server_shutdown"})
HEARTBEAT_S: Final = 1.0
DEAD_AFTER_S: Final = 5.0


def node_id_for(port: int) -> str:
    """A node id that a restarted process on the same host and port gets again."""
    if port == 0:
        return secrets.token_hex(4)
    return hashlib.sha1(f"{socket.gethostname()}:{port}".encode()).hexdigest()[:8]


def node_of(socket_id: str) -> str | None:
    """The node a socket id was handed out by (``None`` for an id with no node prefix)."""
    node, sep, _ = socket_id.partition(".")
    return node if sep else None


def mark_away(session: Session, now_ms: float, client_ids: list[str]) -> list[Notice]:
    """Members whose server died become away, as on a disconnect, but playback goes on.

    ``Session.leave(disconnected=True)`` keeps their seniority and holds a leader's seat; it
    also pauses when the leader leaves, which is right for a leader whose phone went away and
    wrong for a server that went away, so the timeline is put back as it was.
    """
    timeline = session.timeline
    notices: list[Notice] = []
    for client_id in client_ids:
        if client_id in session.members:
            notices += session.leave(now_ms, client_id, disconnected=True)
    session.timeline = timeline.pruned(now_ms)
    return [notice for notice in notices if notice[0] != "pause"]


class BandRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """Room broadcasts across nodes through Redis pub/sub, outage-aware (see module doc)."""

    def __init__(self, url: str, channel: str, store: ResilientStore) -> None:
        super().__init__(url, channel=channel, logger=STORAGE)
        self.store = store
        self._publisher: aioredis.Redis | None = None

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if event in LOCAL_ONLY:
            kwargs["ignore_queue"] = True
        return await super().emit(
            event,
            data,
            namespace=namespace,
            room=room,
            skip_sid=skip_sid,
            callback=callback,
            to=to,
            **kwargs,
        )

    async def _publish(self, data: Mapping[str, Any]) -> None:
        if not self.store.reachable:
            return  # other nodes cannot hear us now; their clients resync when it is over
        try:
            if self._publisher is None:
                self._publisher = aioredis.Redis.from_url(
                    self.redis_url,
                    socket_timeout=1.0,
                    socket_connect_timeout=0.5,
                    retry=one_retry(),
                )
            await self._publisher.publish(self.channel, self.json.dumps(data))
        except UNREACHABLE as exc:
            STORAGE.debug("cannot publish %s: %s", data.get("method"), exc)
            self.store.report_unreachable(exc)

    async def _listen(self) -> Any:
        attempt = 0
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=0.5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                attempt = 0
                async for message in pubsub.listen():
                    if message.get("type") == "message" and "data" in message:
                        yield message["data"]
            except UNREACHABLE as exc:
                STORAGE.debug("socket.io channel lost: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    # Untyped in the redis-py of earlier installs, typed in 8.2: either passes.
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    async def close(self) -> None:
        """Stop listening and close the publishing connection."""
        thread = getattr(self, "thread", None)
        if isinstance(thread, asyncio.Future) and not thread.done():
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await thread
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None


class Cluster:
    """This node among the nodes sharing one Redis.

    Args:
        store: the resilient Redis store of this node.
        settings: server settings (the port gives the node id).
        clock: the server clock (leave times of members marked away).
        node_id: override the node id (tests).
    """

    def __init__(
        self,
        store: ResilientStore,
        settings: Settings,
        clock: Clock,
        *,
        node_id: str | None = None,
        dead_after_s: float = DEAD_AFTER_S,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.node_id = node_id or node_id_for(settings.port)
        self.dead_after_s = dead_after_s
        self.nodes_key = f"{store.redis.prefix}nodes"
        self.manager = BandRedisManager(store.redis.url, f"{store.redis.prefix}socketio", store)
        self.recovered: list[str] = []  # sessions whose members were marked away at start
        self._own_recovered = False
        self._quiet_until = 0.0  # server time before which no other node is declared dead

    # -- socket ids ------------------------------------------------------------------------

    def install(self, sio: socketio.AsyncServer) -> None:
        """Make ``sio`` hand out socket ids prefixed with this node's id."""
        eio = sio.eio
        plain: Callable[[], str] = eio.generate_id
        prefix = f"{self.node_id}."
        eio.generate_id = lambda: prefix + plain()

    def attach(self, service: SessionService) -> None:
        """Keep ``service.sessions`` (what the ticker and upkeep read) in step with writes
        made by other nodes: this node's memory is never trusted for members or leader."""

        def adopt(session: Session) -> None:
            cached = service.sessions.get(session.session_id)
            if cached is not None and (
                session.version > cached.version or session.created_at != cached.created_at
            ):  # newer, or a new session under an id whose old one expired
                service.sessions[session.session_id] = session

        self.store.add_change_listener(adopt)

    # -- liveness --------------------------------------------------------------------------

    async def _beat(self) -> None:
        await self.store.redis.client.zadd(self.nodes_key, {self.node_id: self.clock.now_ms()})

    async def _dead_nodes(self) -> set[str]:
        limit = self.clock.now_ms() - self.dead_after_s * 1000.0
        dead = await self.store.redis.client.zrangebyscore(self.nodes_key, "-inf", limit)
        return {str(n) for n in dead} - {self.node_id}

    # -- recovery --------------------------------------------------------------------------

    async def start(self, service: SessionService) -> None:
        """Announce this node and take over from its previous life: members whose sockets
        belonged to it become away; their sessions play on. (If Redis is unreachable now,
        this happens as soon as it answers.)"""
        self._quiet_until = self.clock.now_ms() + self.dead_after_s * 1000.0
        await self._recover_own(service)

    async def _recover_own(self, service: SessionService) -> None:
        if not self.store.reachable:
            return
        try:
            await self._beat()
            self.recovered = await self._reap(service, {self.node_id})
        except UNREACHABLE as exc:
            self.store.report_unreachable(exc)
            return
        self._own_recovered = True
        if self.recovered:
            STORAGE.info(
                "node %s recovered %d session(s) from Redis: %s",
                self.node_id,
                len(self.recovered),
                ", ".join(self.recovered),
            )

    async def _reap(self, service: SessionService, gone_nodes: set[str]) -> list[str]:
        """Mark away every member whose socket belongs to one of ``gone_nodes``."""
        touched: list[str] = []
        for session_id in await self.store.session_ids():
            session = await self.store.get(session_id)
            if session is None:
                continue
            gone = [
                m.client_id
                for m in session.members.values()
                if node_of(m.socket_id) in gone_nodes and m.socket_id not in service.connections
            ]
            if not gone:
                continue

            def change(s: Session, actor: str, now: float, gone: list[str] = gone) -> list[Notice]:
                still = [
                    cid
                    for cid in gone
                    if cid in s.members and node_of(s.members[cid].socket_id) in gone_nodes
                ]
                return mark_away(s, now, still)

            await service.console_command(session_id, change)
            touched.append(session_id)
        return touched

    async def run(self, service: SessionService) -> None:
        """Heartbeat every second; reap dead nodes; keep the TTL of sessions in use fresh.

        After an outage (and at start) no node is declared dead for ``dead_after_s``: every
        node's last heartbeat is old then, and the live ones need a beat to say so.
        """
        beats = 0
        keepalive_every = max(1, round(min(60.0, self.settings.idle_expiry_s / 4) / HEARTBEAT_S))
        was_down = False
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            beats += 1
            if not self.store.reachable:
                was_down = True
                continue
            now = self.clock.now_ms()
            if was_down:
                was_down = False
                self._quiet_until = now + self.dead_after_s * 1000.0
            try:
                if not self._own_recovered:
                    await self._recover_own(service)
                await self._beat()
                if now >= self._quiet_until:
                    dead = await self._dead_nodes()
                    if dead:
                        reaped = await self._reap(service, dead)
                        await self.store.redis.client.zrem(self.nodes_key, *dead)
                        STORAGE.info(
                            "node(s) %s stopped answering: members in %d session(s) marked away",
                            ", ".join(sorted(dead)),
                            len(reaped),
                        )
                if beats % keepalive_every == 0:
                    await self.store.touch(self.sessions_in_use(service))
            except UNREACHABLE as exc:
                self.store.report_unreachable(exc)

    @staticmethod
    def sessions_in_use(service: SessionService) -> set[str]:
        """Sessions with a member connected here, or hosted by the console: never idle."""
        ids = {c.session_id for c in service.connections.values() if c.session_id}
        ids |= {s.session_id for s in service.sessions.values() if s.console_hosted}
        return ids

    async def release(self, service: SessionService) -> None:
        """A clean stop: this node's members become away (playback goes on, as after a
        crash), so their sockets closing afterwards changes nothing more."""
        local: dict[str, list[str]] = {}
        for connection in service.connections.values():
            if connection.session_id and connection.client_id:
                local.setdefault(connection.session_id, []).append(connection.client_id)
            connection.session_id = None
            connection.client_id = None
        for session_id, client_ids in local.items():

            def change(
                s: Session, actor: str, now: float, client_ids: list[str] = client_ids
            ) -> list[Notice]:
                return mark_away(s, now, client_ids)

            try:
                await service.console_command(session_id, change)
            except Exception:
                STORAGE.exception("could not release members of %s", session_id)
        if self.store.reachable:
            with contextlib.suppress(*UNREACHABLE):
                await self.store.redis.client.zrem(self.nodes_key, self.node_id)

    async def close(self) -> None:
        await self.manager.close()


def describe(cluster: Cluster | None) -> dict[str, Any] | None:
    """The cluster part of ``/health``."""
    if cluster is None:
        return None
    return {"nodeId": cluster.node_id, "recovered": len(cluster.recovered)}


__all__ = ["LOCAL_ONLY", "BandRedisManager", "Cluster", "describe", "mark_away", "node_of"]
