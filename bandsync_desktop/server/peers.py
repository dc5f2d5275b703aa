"""The one interface of the server's in-process peers (the console, the bridges to other gear).

A peer of the phones that lives in the process (``bandsync_desktop/actors/``) is an
``Actor``: it is started with an ``ActorHost`` for one session and stopped with the server.
Through the host it reads the running server (``host.view``: the read model), hears of every
change (``host.subscribe``, this session's publications only) and gives commands
(``host.submit``): the protocol payload a phone would send, parsed by the same entry of the
one command table (``core/commands.py``) and ruled by the same ``Session`` rule, with the
console's authority (the owner of the server runs the actors). So no actor reaches into the
service, and no command is validated twice.

The composition roots choose which actors run: ``create_app(actors=...)`` starts them once the
band session exists and stops them before the server closes; the console can start and stop
one while the server runs (``ActorSet``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..core.commands import COMMANDS
from ..core.session import CONSOLE, Session
from ..core.timeline import Timeline
from .readmodel import ServerView
from .service import SessionService

#: ``listener(event, payload)`` for one session's publications.
SessionListener = Callable[[str, Mapping[str, Any]], None]


class ActorHost:
    """What an actor gets: the read model, this session's publications, command submission.

    Args:
        service: the server's session service (only ``submit`` uses it, through the table).
        view: the server's read model.
        session_id: the session the actor follows and commands (the band session).
    """

    def __init__(self, service: SessionService, view: ServerView, session_id: str) -> None:
        self._service = service
        self.view = view
        self.session_id = session_id
        self._listeners: dict[SessionListener, Callable[[str, str, Mapping[str, Any]], None]] = {}

    @property
    def session(self) -> Session | None:
        """The session as this node last wrote or read it (no I/O; do not change it)."""
        return self.view.session(self.session_id)

    @property
    def timeline(self) -> Timeline | None:
        """The session's timeline (immutable: safe to hand to another thread)."""
        session = self.session
        return session.timeline if session is not None else None

    def now_ms(self) -> float:
        """Server time (ms)."""
        return self.view.now_ms()

    async def submit(self, name: str, payload: Mapping[str, Any]) -> Session:
        """Run the command ``name`` of the one table with a protocol payload, with the
        console's authority.

        Raises:
            KeyError: no command has that name.
            BandSyncError: the payload is invalid or the rule refuses; nothing changed.
        """
        action = COMMANDS[name].parse(payload, self._service.rules)
        return await self._service.console_command(self.session_id, action)

    async def remove_member(self, public_ref: str) -> None:
        """Remove a member named by its public id (``memberId`` or ``socketId``), with the
        console's authority; their phone is told and leaves. (Not a table command: it
        changes who is in the session, not what it plays.)"""
        await self._service.remove_member(self.session_id, CONSOLE, public_ref)

    def subscribe(self, listener: SessionListener) -> None:
        """``listener(event, payload)`` for each publication of this session (notices, then
        the fresh ``snapshot``), called on the server's loop; it must not block."""

        def filtered(event: str, session_id: str, payload: Mapping[str, Any]) -> None:
            if session_id == self.session_id:
                listener(event, payload)

        self._listeners[listener] = filtered
        self.view.subscribe(filtered)

    def unsubscribe(self, listener: SessionListener) -> None:
        filtered = self._listeners.pop(listener, None)
        if filtered is not None:
            self.view.unsubscribe(filtered)


@runtime_checkable
class Actor(Protocol):
    """An in-process peer of the phones. ``name`` is unique among the running actors."""

    name: str

    async def start(self, host: ActorHost) -> None:
        """Begin following (and, if it may, commanding) ``host.session_id``.

        Raises:
            ActorError: the actor cannot run (its gear or library is missing); nothing runs.
        """
        ...

    async def stop(self) -> None:
        """Stop; release threads, ports and sockets. Safe to call twice."""
        ...

    def status(self) -> Mapping[str, Any]:
        """What the console shows of it (state, peers, port, ...): plain JSON values."""
        ...


class ActorError(Exception):
    """An actor cannot start: the message says why, for the leader to read."""


class ActorSet:
    """The actors running beside one server; started and stopped as a set or one by one."""

    def __init__(self, host: ActorHost) -> None:
        self.host = host
        self._running: dict[str, Actor] = {}
        self._lock = asyncio.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self._running

    def get(self, name: str) -> Actor | None:
        return self._running.get(name)

    @property
    def running(self) -> tuple[Actor, ...]:
        return tuple(self._running.values())

    async def start(self, actor: Actor) -> None:
        """Start ``actor`` (one with the same name is stopped first).

        Raises:
            ActorError: it cannot run; nothing of it is left running.
        """
        async with self._lock:
            old = self._running.pop(actor.name, None)
            if old is not None:
                await old.stop()
            try:
                await actor.start(self.host)
            except BaseException:
                await actor.stop()
                raise
            self._running[actor.name] = actor

    async def start_all(self, actors: Iterable[Actor]) -> None:
        for actor in actors:
            await self.start(actor)

    async def stop(self, name: str) -> None:
        async with self._lock:
            actor = self._running.pop(name, None)
            if actor is not None:
                await actor.stop()

    async def stop_all(self) -> None:
        """Stop every actor, the last started first."""
        async with self._lock:
            while self._running:
                _, actor = self._running.popitem()
                await actor.stop()
