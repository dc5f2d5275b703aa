"""``MemoryStore``: the embedded default. Nothing to install; lost when the process ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ...core.errors import SessionNotFound
from ...core.session import Session
from .base import StoreState

T = TypeVar("T")


def clone(session: Session) -> Session:
    """A deep, independent copy (through the stored form, so it is what Redis would give)."""
    return Session.from_dict(session.to_dict())


class MemoryStore:
    """Sessions in a dict. ``update`` works on a copy, so a refused change leaves no trace.

    A session enters through its stored form (``create``: what Redis would keep); after
    that, copies are made with ``Session.copy``, a tenth of the cost of the round trip.
    """

    kind = "memory"

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    @property
    def state(self) -> StoreState:
        return StoreState.MEMORY

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        return session.copy() if session else None

    async def create(self, session: Session) -> bool:
        if session.session_id in self._sessions:
            return False
        self._sessions[session.session_id] = clone(session)
        return True

    async def update(self, session_id: str, change: Callable[[Session], T]) -> tuple[Session, T]:
        current = self._sessions.get(session_id)
        if current is None:
            raise SessionNotFound(f"no session {session_id!r}")
        working = current.copy()
        result = change(working)
        if working.version != current.version:
            self._sessions[session_id] = working
        return working.copy(), result

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def session_ids(self) -> list[str]:
        return list(self._sessions)

    async def session_count(self) -> int:
        return len(self._sessions)
