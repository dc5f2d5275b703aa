"""What an in-process peer of the phones may read of a running server, and how it hears of
changes: one read model, so the console (and any bridge to other gear) never reaches into
the service's dicts, its store or the app's keys.

Commands go the other way, through the one command table (``core/commands.py``,
``ConsoleFacade.submit``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..core.health import LinkStats
from ..core.session import Session
from .service import Listener, SessionService
from .storage import StoreState
from .tasks import LoopLagMonitor


@dataclass(frozen=True, slots=True)
class LoopLag:
    """The server loop's lag figures (ms), ``None`` before the first sample."""

    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class ServerView:
    """A read-only view of one running server, and its one subscription.

    Args:
        service: the server's session service.
        lag: the server's loop-lag monitor.
    """

    def __init__(self, service: SessionService, lag: LoopLagMonitor) -> None:
        self._service = service
        self._lag = lag

    @classmethod
    def of(cls, app: web.Application) -> ServerView:
        """The view of the server built by ``create_app``."""
        from .app import LAG, SERVICE  # (app.py builds the parts this view reads)

        return cls(app[SERVICE], app[LAG])

    # -- the one subscription -------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """``listener(event, session_id, payload)`` for every publication (the notices and
        snapshots the phones get, and the server's own: health, session_created, ...)."""
        self._service.add_listener(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._service.remove_listener(listener)

    # -- reading (cheap, no I/O) ------------------------------------------------------------

    def now_ms(self) -> float:
        """Server time (ms), the clock every phone syncs to."""
        return self._service.clock.now_ms()

    def session(self, session_id: str) -> Session | None:
        """A session as this node last wrote or read it (do not change it: submit commands)."""
        return self._service.sessions.get(session_id)

    def link(self, socket_id: str) -> LinkStats | None:
        """The link figures of the member on ``socket_id``, if it is connected to this node."""
        connection = self._service.connections.get(socket_id)
        return connection.link if connection is not None else None

    @property
    def connection_count(self) -> int:
        return len(self._service.connections)

    @property
    def store_state(self) -> StoreState:
        return self._service.store.state

    def loop_lag(self) -> LoopLag:
        figures = self._lag.summary()
        return LoopLag(figures["p50Ms"], figures["p99Ms"], figures["maxMs"])
