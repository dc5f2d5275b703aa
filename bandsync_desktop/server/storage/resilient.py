"""``ResilientStore``: Redis when it answers, memory when it does not, and nothing lost between.

While Redis answers, every call goes to the wrapped :class:`RedisStore` (compare-and-set
writes; Redis is the truth, this node's copy is only a cache). The first call that cannot reach
Redis switches the store to an *outage*: one WARNING is logged, every session is served from
the last state this node knew, accepted changes are applied to that copy and remembered as
dirty, and a background task retries with backoff. When Redis answers again, each dirty
session is written back *by version* (only if Redis does not hold the same or a newer version),
so every command accepted during the outage is in Redis afterwards (and a Redis that restarted
empty gets back every session this node knew); then the store is healthy again and says so
with one INFO line.

The store also listens to the change channel: when another node writes a session this node
holds, listeners (the service's cache of what its ticker reads) get the new state.

Limits (see docs/redis.md): a session this node never loaded is unknown to it during an
outage; with several nodes, an outage splits them, and when Redis returns the higher version of
a session wins (the losing node's changes to that session are reported, not merged).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core.errors import SessionNotFound
from ...core.session import Session
from ...log import STORAGE
from .base import StoreState
from .memory import clone
from .redis import RedisStore, decode, parse_change

T = TypeVar("T")

#: Errors that mean "Redis is not reachable now" (as opposed to a bug or a refused change).
UNREACHABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
#: Reconnect delays in seconds; the last one repeats.
BACKOFF_S: Final = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

ChangeListener = Callable[[Session], None]

#: How many members a session may reach by taking in the members of another incarnation.
MAX_ABSORBED_MEMBERS: Final = 64


class ResilientStore:
    """A :class:`RedisStore` that keeps serving from memory through a Redis outage.

    Args:
        redis: the Redis store to wrap.
        backoff_s: reconnect delays; the last repeats until Redis answers.
    """

    kind = "redis"

    def __init__(self, redis: RedisStore, *, backoff_s: Iterable[float] = BACKOFF_S) -> None:
        self.redis = redis
        self.backoff_s = tuple(backoff_s) or BACKOFF_S
        self._cache: dict[str, Session] = {}  # last state of every session this node touched
        self._dirty: set[str] = set()  # changed during an outage, not yet in Redis
        self._deleted: dict[str, int] = {}  # deleted during an outage: id -> version deleted
        self._down = False
        self._down_since = 0.0
        self._listeners: list[ChangeListener] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._pubsub_client: aioredis.Redis | None = None
        self.subscribed = asyncio.Event()  # set while the change channel is followed
        self.outages = 0
        self.written_back = 0

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> StoreState:
        return StoreState.REDIS_UNREACHABLE if self._down else StoreState.REDIS

    @property
    def reachable(self) -> bool:
        return not self._down

    @property
    def dirty(self) -> frozenset[str]:
        """Sessions changed during the current outage and not yet written back."""
        return frozenset(self._dirty)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(session)`` when another node stored a newer version of a session
        this node holds (and after an outage, for sessions that changed meanwhile)."""
        self._listeners.append(listener)

    def report_unreachable(self, exc: BaseException) -> None:
        """Something else (the socket.io manager) could not reach Redis: enter the outage."""
        self._went_down(exc)

    def _went_down(self, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        self._down_since = time.monotonic()
        self.outages += 1
        STORAGE.warning(
            "Redis at %s is unreachable (%s): serving sessions from memory; "
            "accepted changes will be written back when it returns",
            self.redis.url,
            exc.__class__.__name__,
        )
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; if Redis is unreachable, start in an outage instead of failing."""
        try:
            await self.redis.start()
        except UNREACHABLE as exc:
            self._went_down(exc)
        self._subscriber = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        for task in (self._reconnect, self._subscriber):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._dirty:
            # Last chance: the process is going away with changes Redis has not seen.
            with contextlib.suppress(*UNREACHABLE):
                await self._write_back()
            if self._dirty:
                STORAGE.error(
                    "stopping with %d session(s) Redis never received: %s",
                    len(self._dirty),
                    ", ".join(sorted(self._dirty)),
                )
        await self.redis.close()

    # -- SessionStore ----------------------------------------------------------------------

    def _remember(self, session: Session) -> Session:
        self._cache[session.session_id] = session
        return clone(session)

    async def _restore(self, session_id: str) -> bool:
        """Redis lacks a session this node holds with members in it: it restarted empty (or
        lost the key) before this node noticed an outage. Put this node's copy back (never
        over a newer one) rather than let the band's session vanish. A session with nobody
        in it that is gone from Redis was deleted or expired: that is not undone."""
        cached = self._cache.get(session_id)
        if cached is None or not cached.members:
            return False
        if await self.redis.put_if_newer(cached):
            self.written_back += 1
            STORAGE.info(
                "session %s was missing in Redis (restarted empty?): restored version %d",
                session_id,
                cached.version,
            )
        return True

    async def get(self, session_id: str) -> Session | None:
        if not self._down:
            try:
                session = await self.redis.get(session_id)
                if session is None and await self._restore(session_id):
                    session = await self.redis.get(session_id)
            except UNREACHABLE as exc:
                self._went_down(exc)
            else:
                if session is None:
                    if session_id not in self._dirty:
                        self._cache.pop(session_id, None)
                    return None
                return self._remember(session)
        cached = self._cache.get(session_id)
        return clone(cached) if cached is not None else None

    async def create(self, session: Session) -> bool:
        if not self._down:
            try:
                created = await self.redis.create(session)
            except UNREACHABLE as exc:
                self._went_down(exc)
            else:
                if created:
                    self._remember(clone(session))
                return created
        if session.session_id in self._cache:
            return False
        self._cache[session.session_id] = clone(session)
        self._dirty.add(session.session_id)
        self._deleted.pop(session.session_id, None)
        return True

    async def update(self, session_id: str, change: Callable[[Session], T]) -> tuple[Session, T]:
        if not self._down:
            try:
                try:
                    session, result = await self.redis.update(session_id, change)
                except SessionNotFound:
                    if not await self._restore(session_id):
                        raise
                    session, result = await self.redis.update(session_id, change)
            except UNREACHABLE as exc:
                self._went_down(exc)
            else:
                return self._remember(session), result
        current = self._cache.get(session_id)
        if current is None:
            raise SessionNotFound(f"no session {session_id!r}")
        working = clone(current)
        result = change(working)
        if working.version != current.version:
            self._cache[session_id] = working
            self._dirty.add(session_id)
        return clone(working), result

    async def delete(self, session_id: str) -> None:
        cached = self._cache.pop(session_id, None)
        self._dirty.discard(session_id)
        if not self._down:
            try:
                await self.redis.delete(session_id)
                return
            except UNREACHABLE as exc:
                self._went_down(exc)
        self._deleted[session_id] = cached.version if cached else 0

    async def session_ids(self) -> list[str]:
        if not self._down:
            try:
                ids = await self.redis.session_ids()
            except UNREACHABLE as exc:
                self._went_down(exc)
            else:
                alive = set(ids)
                for missing in [s for s in self._cache if s not in alive and s not in self._dirty]:
                    if await self._restore(missing):
                        ids.append(missing)
                    else:
                        del self._cache[missing]  # expired in Redis: forget the cached copy too
                return sorted(ids)
        return sorted(self._cache)

    async def session_count(self) -> int:
        if not self._down:
            try:
                return await self.redis.session_count()
            except UNREACHABLE as exc:
                self._went_down(exc)
        return len(self._cache)

    async def touch(self, session_ids: Iterable[str]) -> None:
        """Refresh the TTL of sessions in use (no-op during an outage)."""
        if self._down:
            return
        try:
            await self.redis.touch(session_ids)
        except UNREACHABLE as exc:
            self._went_down(exc)

    # -- outage and recovery ---------------------------------------------------------------

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
            attempt += 1
            try:
                # Idle pooled connections to the Redis that went away are dead sockets: drop
                # them, or each would fail once more after Redis is back. Connections a command
                # is using are left to it (closing them under it made redis-py raise
                # AttributeError, not a connection error); they fail and reconnect by themselves.
                await self.redis.client.connection_pool.disconnect(inuse_connections=False)
                await self.redis.ping()
                written, kept = await self._write_back()
            except UNREACHABLE as exc:
                STORAGE.debug("Redis still unreachable (attempt %d): %s", attempt, exc)
                continue
            if self._dirty:
                continue  # changed again during the write-back: go round once more
            self._down = False
            STORAGE.info(
                "Redis at %s reachable again after %.1f s: wrote back %d session(s)%s",
                self.redis.url,
                time.monotonic() - self._down_since,
                written,
                f", {kept} newer in Redis kept" if kept else "",
            )
            await self._refresh_cached()
            return

    async def _write_back(self) -> tuple[int, int]:
        """Write every dirty session back by version; returns (written, newer in Redis)."""
        written = kept = 0
        for session_id, version in list(self._deleted.items()):
            stored = await self.redis.version_of(session_id)
            if stored is not None and stored <= version:
                await self.redis.delete(session_id)
            self._deleted.pop(session_id, None)
        while self._dirty:
            session_id = next(iter(self._dirty))
            session = self._cache.get(session_id)
            if session is None:
                self._dirty.discard(session_id)
                continue
            if await self.redis.put_if_newer(session):
                written += 1
                self.written_back += 1
            else:
                kept += 1
                if await self._adopt_other_incarnation(session):
                    self._dirty.discard(session_id)
                    continue
                stored = await self.redis.version_of(session_id)
                if stored is not None and stored > session.version:
                    STORAGE.warning(
                        "session %s: Redis holds version %d, newer than this node's %d "
                        "from the outage; the newer one is kept",
                        session_id,
                        stored,
                        session.version,
                    )
            if self._cache.get(session_id) is session:
                self._dirty.discard(session_id)  # unless it changed again meanwhile
        for session_id, session in list(self._cache.items()):
            # A Redis that restarted without persistence lost even the sessions nobody changed
            # during the outage: put back what this node knows (never over a newer version).
            if session_id not in self._dirty and await self.redis.put_if_newer(session):
                written += 1
        return written, kept

    async def _adopt_other_incarnation(self, ours: Session) -> bool:
        """Redis refused ``ours`` because it holds another session under the same id (one
        this node could not see when it made its own, e.g. a protected session while this
        node knew none during an outage). Redis's is the session: this node drops its copy
        (its members join the stored one as followers), serves the stored one from now on and
        says so."""
        stored = await self.redis.get(ours.session_id)
        if stored is None or stored.created_at == ours.created_at:
            return False
        if ours.members:
            stored, _ = await self.redis.update(
                ours.session_id, lambda s: s.absorb_members(ours, MAX_ABSORBED_MEMBERS)
            )
        STORAGE.warning(
            "session %s: Redis holds another session under this id (%s, version %d); this "
            "node's %s copy from the outage (version %d) is dropped",
            ours.session_id,
            "protected" if stored.protected else "open",
            stored.version,
            "protected" if ours.protected else "open",
            ours.version,
        )
        self._cache[ours.session_id] = stored
        self._tell(stored)
        return True

    async def _refresh_cached(self) -> None:
        """After a reconnect: pick up what other nodes changed in sessions this node holds."""
        for session_id, cached in list(self._cache.items()):
            if self._down:
                return
            try:
                fresh = await self.redis.get(session_id)
            except UNREACHABLE:
                return
            if fresh is not None and (
                fresh.version > cached.version or fresh.created_at != cached.created_at
            ):
                self._cache[session_id] = fresh
                self._tell(fresh)

    def _tell(self, session: Session) -> None:
        for listener in list(self._listeners):
            try:
                listener(clone(session))
            except Exception:
                STORAGE.exception("change listener failed for %s", session.session_id)

    def _on_change(self, message: str | bytes) -> None:
        session_id, version, data = parse_change(message)
        cached = self._cache.get(session_id)
        if cached is None or version == cached.version or session_id in self._dirty:
            return  # not held here, or this node's own write coming back
        session = decode(data)
        if version < cached.version and session.created_at == cached.created_at:
            return  # an older write arriving late (not a new session under an expired id)
        self._cache[session_id] = session
        self._tell(session)

    async def _listen(self) -> None:
        """Follow the change channel; resubscribe (with backoff) whenever the link breaks."""
        attempt = 0
        while True:
            client = aioredis.Redis.from_url(
                self.redis.url, decode_responses=True, socket_connect_timeout=0.5
            )
            self._pubsub_client = client
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.redis.channel)
                attempt = 0
                self.subscribed.set()
                await self._refresh_cached()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        try:
                            self._on_change(message["data"])
                        except Exception:
                            STORAGE.exception("bad change notice on %s", self.redis.channel)
            except UNREACHABLE as exc:
                STORAGE.debug("change channel lost: %s", exc)
                if not self._down and attempt == 0:
                    self._went_down(exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    # Untyped in the redis-py of earlier installs, typed in 8.2: either passes.
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
            attempt += 1
