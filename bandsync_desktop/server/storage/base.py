"""The ``SessionStore`` interface: versioned, compare-and-set writes of whole sessions."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, TypeVar

from ...core.session import Session

T = TypeVar("T")


class StoreState(StrEnum):
    """What ``/health`` and the console report about the store."""

    MEMORY = "memory"
    REDIS = "redis"
    REDIS_UNREACHABLE = "redis-unreachable"


class SessionStore(Protocol):
    """Async storage of sessions.

    ``update`` is the only way to change a session: it loads the current version, applies
    ``change`` to a private copy and writes it back only if nobody else wrote in between
    (compare-and-set on ``Session.version``), retrying a few times on a lost race. If
    ``change`` raises, nothing is written and the exception propagates.
    """

    kind: str

    @property
    def state(self) -> StoreState: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, session_id: str) -> Session | None:
        """A private copy of the session, or ``None``."""
        ...

    async def create(self, session: Session) -> bool:
        """Store a new session; ``False`` if one with that id exists already."""
        ...

    async def update(self, session_id: str, change: Callable[[Session], T]) -> tuple[Session, T]:
        """Apply ``change`` atomically; returns the stored session and ``change``'s result."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def session_ids(self) -> list[str]: ...

    async def session_count(self) -> int:
        """How many sessions are stored, at a cost independent of how many (``/health``,
        the session cap)."""
        ...
