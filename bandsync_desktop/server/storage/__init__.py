"""Session storage behind one async interface: memory (the default) or Redis."""

from __future__ import annotations

from .base import SessionStore, StoreState
from .memory import MemoryStore


def create_store(url: str | None) -> SessionStore:
    """The store for a URL: none means memory; ``redis://``/``rediss://`` means Redis."""
    if not url:
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore  # imported lazily: memory mode needs no redis client

        store: SessionStore = RedisStore(url)
        return store
    raise ValueError(f"unsupported store URL {url!r}: use redis://host:port/db or none")


__all__ = ["MemoryStore", "SessionStore", "StoreState", "create_store"]
