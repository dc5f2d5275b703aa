"""Session storage behind one async interface: memory (the default) or Redis."""

from __future__ import annotations

from .base import SessionStore, StoreState
from .memory import MemoryStore


def create_store(url: str | None, *, ttl_s: float = 30 * 60.0) -> SessionStore:
    """The store for a URL: none means memory; ``redis://``/``rediss://`` means Redis
    (wrapped so that an outage is served from memory; ``ttl_s`` is the idle expiry)."""
    if not url:
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        # imported lazily: memory mode needs no redis client
        from .redis import RedisStore
        from .resilient import ResilientStore

        store: SessionStore = ResilientStore(RedisStore(url, ttl_s=ttl_s))
        return store
    raise ValueError(f"unsupported store URL {url!r}: use redis://host:port/db or none")


__all__ = ["MemoryStore", "SessionStore", "StoreState", "create_store"]
