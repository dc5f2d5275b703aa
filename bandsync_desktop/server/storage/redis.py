"""``RedisStore``: sessions in Redis, one key per session, every write a compare-and-set.

Layout (all keys under one prefix, ``bandsync:`` by default):

* ``<prefix>s:<sessionId>`` — a hash ``{v: version, d: stored JSON}`` with a TTL of the idle
  expiry, refreshed by every write and by :meth:`RedisStore.touch`;
* ``<prefix>sessions`` — a set of session ids (an index; ids whose key expired are pruned when
  listed);
* ``<prefix>changes`` — a pub/sub channel: every accepted write publishes
  ``"<sessionId> <version>\\n<JSON>"``, so other nodes can refresh what they hold in memory.

A write is one Lua script: it compares the stored version with the version the writer read,
and only then stores the new state, refreshes the TTL, indexes the id and publishes — so
concurrent writers on any number of processes never lose an update (the loser re-reads and
re-applies its change). Connection errors propagate as ``redis.exceptions`` errors; the
resilient wrapper (``resilient.py``) turns them into an outage that loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ...core.errors import SessionNotFound, VersionConflict
from ...core.session import Session
from ...log import STORAGE
from .base import StoreState

T = TypeVar("T")

DEFAULT_PREFIX: Final = "bandsync:"
MAX_ATTEMPTS: Final = 200  # lost compare-and-set races before giving up on one update
POOL_SIZE: Final = 64  # connections to Redis from one process
POOL_WAIT_S: Final = 2.0  # how long a command waits for a free pooled connection

# KEYS: session key, index set. ARGV: expected version ("0": must not exist), new version,
# data, ttl ms, session id, channel. Returns "ok" or the stored version that won instead.
_CAS: Final = """
local current = redis.call('HGET', KEYS[1], 'v')
if not current then current = '0' end
if current ~= ARGV[1] then return current end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[5] .. ' ' .. ARGV[2] .. '\\n' .. ARGV[3])
return 'ok'
"""

# Same arguments but no expected version: store only if the stored version is older (or the
# key is missing). Used to write back what a node accepted while Redis was unreachable.
# Versions only compare within one incarnation of a session id (same createdAt). Another
# incarnation (made by a node that could not see this one) never replaces a protected
# session: its key and protection are never lost to a merge, whatever the versions say.
_PUT_IF_NEWER: Final = """
local current = redis.call('HGET', KEYS[1], 'v')
if current then
  local stored = cjson.decode(redis.call('HGET', KEYS[1], 'd'))
  local ours = cjson.decode(ARGV[3])
  if stored['createdAt'] ~= ours['createdAt'] and stored['protected'] then return current end
  if stored['createdAt'] ~= ours['createdAt'] and ours['protected'] then current = '0' end
  if tonumber(current) >= tonumber(ARGV[2]) then return current end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[5] .. ' ' .. ARGV[2] .. '\\n' .. ARGV[3])
return 'ok'
"""


def one_retry() -> Retry:
    """Retry a command once, at once, on a broken connection: a pooled connection to a Redis
    that restarted fails once even though Redis is back. A down Redis fails again in ~1 ms."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def encode(session: Session) -> str:
    """The stored JSON of a session (compact: this is what Redis keeps per session)."""
    return json.dumps(session.to_dict(), separators=(",", ":"), ensure_ascii=False)


def decode(data: str | bytes) -> Session:
    return Session.from_dict(json.loads(data))


def parse_change(message: str | bytes) -> tuple[str, int, str]:
    """Split a change notice into session id, version and stored JSON."""
    text = message.decode() if isinstance(message, bytes) else message
    head, _, data = text.partition("\n")
    session_id, _, version = head.partition(" ")
    return session_id, int(version), data


class RedisStore:
    """Sessions in Redis (see the module docstring for the layout).

    Args:
        url: ``redis://host:port/db`` (or ``rediss://``, ``unix://``).
        ttl_s: idle expiry of a session key, refreshed on every write and by ``touch``.
        prefix: key prefix, so several deployments can share one Redis database.
        timeout_s: socket timeout of one command; a hung Redis counts as unreachable after it.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 30 * 60.0,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 1.0,
    ) -> None:
        self.url = url
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self.prefix = prefix
        self.index_key = f"{prefix}sessions"
        self.channel = f"{prefix}changes"
        # A blocking pool: when a reconnect storm has every pooled connection busy, a command
        # waits its turn (Redis answers in well under a millisecond) instead of failing with
        # MaxConnectionsError, which would look like an outage.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT_S,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=min(timeout_s, 0.5),
            health_check_interval=0,
            retry=one_retry(),
        )
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._cas = self.client.register_script(_CAS)
        self._put_if_newer = self.client.register_script(_PUT_IF_NEWER)

    @property
    def state(self) -> StoreState:
        return StoreState.REDIS

    def key(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    async def start(self) -> None:
        """Check the connection (raises a ``redis`` error when Redis is unreachable)."""
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        await self.client.ping()

    async def get(self, session_id: str) -> Session | None:
        data = await self.client.hget(self.key(session_id), "d")
        return None if data is None else decode(data)

    async def _write(
        self, script: Any, session: Session, expected: int | None
    ) -> str:  # "ok" or the winning stored version
        args = [
            "" if expected is None else str(expected),
            str(session.version),
            encode(session),
            str(self.ttl_ms),
            session.session_id,
            self.channel,
        ]
        result = await script(keys=[self.key(session.session_id), self.index_key], args=args)
        return str(result)

    async def create(self, session: Session) -> bool:
        return await self._write(self._cas, session, 0) == "ok"

    async def update(self, session_id: str, change: Callable[[Session], T]) -> tuple[Session, T]:
        for attempt in range(MAX_ATTEMPTS):
            session = await self.get(session_id)
            if session is None:
                raise SessionNotFound(f"no session {session_id!r}")
            read_version = session.version
            result = change(session)  # may raise: then nothing is written
            if session.version == read_version:
                return session, result  # nothing changed, nothing to write
            if await self._write(self._cas, session, read_version) == "ok":
                return session, result
            if attempt >= 3:  # a crowd of writers: spread the retries out a little
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt, 20)))
        raise VersionConflict(f"session {session_id!r} is too busy: {MAX_ATTEMPTS} lost races")

    async def put_if_newer(self, session: Session) -> bool:
        """Store ``session`` unless Redis already holds the same or a newer version."""
        return await self._write(self._put_if_newer, session, None) == "ok"

    async def version_of(self, session_id: str) -> int | None:
        raw = await self.client.hget(self.key(session_id), "v")
        return None if raw is None else int(raw)

    async def delete(self, session_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.key(session_id))
            pipe.srem(self.index_key, session_id)
            await pipe.execute()

    async def session_ids(self) -> list[str]:
        """Ids of stored sessions; ids whose key expired are dropped from the index."""
        ids = sorted(str(sid) for sid in await self.client.smembers(self.index_key))
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.exists(self.key(session_id))
            exists = await pipe.execute()
        gone = [sid for sid, alive in zip(ids, exists, strict=True) if not alive]
        if gone:
            await self.client.srem(self.index_key, *gone)
            STORAGE.debug("pruned %d expired session ids from the index", len(gone))
        return [sid for sid, alive in zip(ids, exists, strict=True) if alive]

    async def session_count(self) -> int:
        """The size of the index (one ``SCARD``). Ids whose key expired count until the next
        ``session_ids`` (the expiry sweep) prunes them."""
        return int(await self.client.scard(self.index_key))

    async def touch(self, session_ids: Iterable[str]) -> None:
        """Refresh the TTL of sessions that are in use though nothing changed (a quiet band)."""
        ids = list(session_ids)
        if not ids:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.pexpire(self.key(session_id), self.ttl_ms)
            await pipe.execute()

    async def memory_usage(self, session_id: str) -> int | None:
        """Bytes Redis uses for one session key (``MEMORY USAGE``), for the benchmark."""
        usage = await self.client.memory_usage(self.key(session_id), samples=0)
        return None if usage is None else int(usage)
