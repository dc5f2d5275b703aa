"""``SessionService``: the one facade over sessions, used by socket handlers and the console.

Socket handlers validate payloads and call these methods with the socket's identity; the
console's bridge calls the same methods with ``actor=CONSOLE``. So both obey one rule set.
Every accepted change is written through the store (compare-and-set), then published: the
core's notices to the session room, then a fresh ``snapshot``. Listeners (the console) get
the same publications in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..config import Settings
from ..core import validation
from ..core.clock import Clock
from ..core.errors import (
    BandSyncError,
    NotInSession,
    SessionFull,
    SessionNotFound,
    StoreUnavailable,
    TooManySessions,
    ValidationError,
)
from ..core.health import LinkStats
from ..core.ratelimit import TokenBucket
from ..core.session import ANONYMOUS_PREFIX, CONSOLE, Notice, Rules, Session
from ..core.validation import Role
from ..log import SERVER
from .storage.base import SessionStore, StoreState

T = TypeVar("T")

MEMBERSHIP_SNAPSHOT_INTERVAL_S = 0.25  # room snapshots after joins/leaves are coalesced
SWEEP_BATCH = 100  # sessions the expiry sweep looks at between two yields to the loop
_BOUNCE = object()


class Emitter(Protocol):
    """What the service needs of a socket.io server (``socketio.AsyncServer`` fits)."""

    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        to: str | None = None,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        namespace: str | None = None,
        callback: Any = None,
        ignore_queue: bool = False,
    ) -> None: ...

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...

    async def disconnect(
        self, sid: str, namespace: str | None = None, ignore_queue: bool = False
    ) -> None: ...


Listener = Callable[[str, str, Mapping[str, Any]], None]


def tick_room(session_id: str) -> str:
    """The room of the members that want ``scroll_tick`` (clients that do not compute it)."""
    return f"ticks:{session_id}"


@dataclass(slots=True)
class Connection:
    """What this node knows about one socket.

    ``membership`` serialises the socket's joins, leaves and its disconnect: a client that
    sends ``join_session`` for A and B without waiting, then drops, must not stay in A as a
    member with no socket (a ghost that fills the session).
    """

    sid: str
    bucket: TokenBucket
    address: str | None = None
    membership: asyncio.Lock = field(default_factory=asyncio.Lock)
    user_agent: str | None = None
    session_id: str | None = None
    client_id: str | None = None
    wants_ticks: bool = True
    link: LinkStats = field(default_factory=LinkStats)
    # The budget of joins, leaves and role changes (handlers.py; made at the first one), and
    # when this socket was last sent an ``error RATE_LIMITED`` (at most once a second).
    membership_budget: TokenBucket | None = None
    limited_told_at: float = float("-inf")


class SessionService:
    """Sessions, connections and publication. One per server process."""

    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        clock: Clock,
        emitter: Emitter,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.emitter = emitter
        self.rules = Rules(
            leader_grace_ms=settings.leader_grace_s * 1000.0,
            max_members=settings.max_members,
            lead_ms=settings.lead_ms,
        )
        self.connections: dict[str, Connection] = {}
        self.sessions: dict[str, Session] = {}  # last state this node wrote or read
        self._listeners: list[Listener] = []
        self._pending_snapshots: dict[str, asyncio.TimerHandle] = {}
        # (session created_at, newest snapshot version) sent to each room
        self._room_versions: dict[str, tuple[float, int]] = {}
        # A lock exists while an update of its session runs or waits (a refused join of a
        # fresh id must leave nothing behind: finding 9 of docs/security.md).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # The sessions each peer address created on this node (the per-address cap).
        self._created_by: dict[str, str] = {}
        self._created_count: dict[str, int] = {}
        # Open sessions made while the store was unreachable (see ensure_session).
        self._unverified: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- listeners (the console) ----------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event, session_id, payload)`` for every publication."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _notify(self, event: str, session_id: str, payload: Mapping[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, session_id, payload)
            except Exception:
                SERVER.exception("listener failed on %s", event)

    # -- connections ----------------------------------------------------------------------

    def connect(self, sid: str, user_agent: str | None, address: str | None = None) -> Connection:
        connection = Connection(
            sid=sid,
            bucket=TokenBucket(
                self.settings.rate_limit_per_s, self.settings.rate_limit_burst, self.clock
            ),
            address=address,
            user_agent=(user_agent or "")[:200] or None,
        )
        connection.link.last_seen = self.clock.now_ms()
        self.connections[sid] = connection
        return connection

    async def disconnect(self, sid: str) -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        async with connection.membership:  # after any join still under way
            if connection.session_id is not None:
                await self._detach(connection, disconnected=True)

    def touch(self, sid: str) -> Connection | None:
        connection = self.connections.get(sid)
        if connection is not None:
            connection.link.last_seen = self.clock.now_ms()
        return connection

    def _connection(self, sid: str) -> Connection:
        connection = self.connections.get(sid)
        if connection is None:
            raise NotInSession("connection is not registered")
        return connection

    def actor(self, sid: str, session_id: str) -> str:
        """The client id a socket speaks for in ``session_id``; refused if not a member."""
        connection = self._connection(sid)
        if connection.session_id != session_id or connection.client_id is None:
            raise NotInSession(f"you are not in session {session_id!r}; join it first")
        return connection.client_id

    # -- storage with publication ---------------------------------------------------------

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    async def _update(self, session_id: str, change: Callable[[Session], T]) -> tuple[Session, T]:
        async with self._lock(session_id):
            session, result = await self.store.update(session_id, change)
        cached = self.sessions.get(session_id)
        if (
            cached is None
            or session.version >= cached.version
            or session.created_at != cached.created_at
        ):  # with Redis, another node's newer write may have been adopted meanwhile
            self.sessions[session_id] = session
        return session, result

    async def get_session(self, session_id: str) -> Session:
        session = await self.store.get(session_id)
        if session is None:
            raise SessionNotFound(f"session {session_id!r} does not exist")
        self.sessions[session_id] = session
        return session

    def snapshot(self, session: Session) -> dict[str, Any]:
        """The protocol snapshot, with this node's link health of each member."""
        now = self.clock.now_ms()
        data = session.snapshot(now)
        by_socket = {m["socketId"]: m for m in data["members"]}
        for sid, member in by_socket.items():
            connection = self.connections.get(sid)
            member["health"] = connection.link.to_wire(now) if connection else None
        return data

    async def _publish(self, session: Session, notices: list[Notice]) -> None:
        sid = session.session_id
        for event, payload in notices:
            await self.emitter.emit(event, payload, room=sid)
            self._notify(event, sid, payload)
        self._cancel_coalesced(sid)
        await self._send_snapshot(session, room=sid)

    async def _send_snapshot(self, session: Session, *, room: str) -> None:
        """A room snapshot, never older than one this node already sent to that room.

        Updates of a session are serialised, but their publications are not: a change that
        finished first may publish after a later one. The newer state already went out (it
        includes the older change), so a stale snapshot is replaced by the newest known.
        """
        latest = self.sessions.get(session.session_id)
        if (
            latest is not None
            and latest.created_at == session.created_at
            and latest.version > session.version
        ):
            session = latest
        sent_created, sent_version = self._room_versions.get(room, (session.created_at, 0))
        if sent_created == session.created_at and session.version < sent_version:
            return  # (a session re-created under the same id counts versions afresh)
        self._room_versions[room] = (session.created_at, session.version)
        data = self.snapshot(session)
        await self.emitter.emit("snapshot", data, room=room)
        if room == session.session_id:
            self._notify("snapshot", session.session_id, data)

    def _cancel_coalesced(self, session_id: str) -> None:
        handle = self._pending_snapshots.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def _publish_membership_later(self, session_id: str) -> None:
        """Joins and leaves: one room snapshot per interval, however many happened."""
        if session_id in self._pending_snapshots:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._pending_snapshots.pop(session_id, None)
            session = self.sessions.get(session_id)
            if session is not None:
                task = loop.create_task(self._membership_snapshot(session))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._pending_snapshots[session_id] = loop.call_later(MEMBERSHIP_SNAPSHOT_INTERVAL_S, fire)

    async def _membership_snapshot(self, session: Session) -> None:
        await self._send_snapshot(session, room=session.session_id)
        stats = {
            "sessionId": session.session_id,
            "memberCount": len(session.members),
            "connections": len(self.connections),
        }
        await self.emitter.emit("room_stats", stats, room=session.session_id)
        self._notify("room_stats", session.session_id, stats)

    async def _publish_notices(
        self, session_id: str, notices: list[Notice], *, at_once: bool = False
    ) -> None:
        """Send notices to the room and the listeners, ``user_joined`` one window late.

        A join is announced ``MEMBERSHIP_SNAPSHOT_INTERVAL_S`` after it happened (at once
        with ``at_once``, when other changes go out with it), and a member who leaves before
        its join was announced produces nothing for the room: a phone joining and leaving in
        a loop would otherwise send every member two notices per loop. The pending
        announcement is kept in ``_pending_snapshots`` (cancelled by ``close``) under
        ``"<session id> <socket id>"``, a key no session id can be (they have no spaces).
        """
        loop = asyncio.get_running_loop()
        for event, payload in notices:
            if event in ("user_joined", "user_left"):
                member = payload.get("member", payload)
                socket_id = member.get("socketId") if isinstance(member, Mapping) else None
                key = f"{session_id} {socket_id}"
                pending = self._pending_snapshots.pop(key, None)
                if pending is not None:
                    pending.cancel()
                    if event == "user_left":
                        continue  # the room never heard of this join
                if event == "user_joined" and not at_once:

                    def announce(notice: Notice = (event, payload), key: str = key) -> None:
                        self._pending_snapshots.pop(key, None)
                        task = loop.create_task(
                            self._publish_notices(session_id, [notice], at_once=True)
                        )
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)

                    self._pending_snapshots[key] = loop.call_later(
                        MEMBERSHIP_SNAPSHOT_INTERVAL_S, announce
                    )
                    continue
            await self.emitter.emit(event, payload, room=session_id)
            self._notify(event, session_id, payload)

    async def close(self) -> None:
        for handle in self._pending_snapshots.values():
            handle.cancel()
        self._pending_snapshots.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- sessions -------------------------------------------------------------------------

    async def ensure_session(
        self,
        session_id: str,
        *,
        protected: bool = False,
        console_hosted: bool = False,
        address: str | None = None,
    ) -> tuple[Session, bool]:
        """The session, created if missing. Returns it and whether it was created now.

        ``address`` is the peer that asks (``None``: the console or the server itself). A
        peer gets a new session only within the caps. While the store is unreachable this
        node cannot tell whether the id is a protected session it has not seen: it makes no
        protected session then, and an open one it makes is *unverified*: members may join,
        but nobody may take its lead until the store answers again (and the write-back has
        kept the stored session, if there was one: ``_PUT_IF_NEWER`` in redis.py).
        """
        existing = await self.store.get(session_id)
        if existing is not None:
            self.sessions[session_id] = existing
            return existing, False
        if not console_hosted:
            await self._check_new_session(session_id, address, protected=protected)
        session = Session.create(
            session_id,
            self.clock.now_ms(),
            protected=protected,
            console_hosted=console_hosted,
            tempo_bpm=self.settings.default_tempo,
            beats_per_bar=self.settings.default_beats_per_bar,
            beat_unit=self.settings.default_beat_unit,
        )
        if not await self.store.create(session):
            return await self.ensure_session(session_id)
        self.sessions[session_id] = session
        if address is not None and address not in self.settings.connection_cap_exempt:
            self._created_by[session_id] = address
            self._created_count[address] = self._created_count.get(address, 0) + 1
        SERVER.info(
            "session %s created (%s)", session_id, "protected" if session.protected else "open"
        )
        self._notify("session_created", session_id, {"protected": session.protected})
        return session, True

    async def _check_new_session(
        self, session_id: str, address: str | None, *, protected: bool
    ) -> None:
        """Refuse a new session the store cannot vouch for or the caps do not allow."""
        if self.store.state is StoreState.REDIS_UNREACHABLE:
            if protected:
                raise StoreUnavailable(
                    f"session {session_id!r} cannot be created while the session store is "
                    "unreachable: try again in a moment"
                )
            self._unverified.add(session_id)
        limit = self.settings.max_sessions_per_address
        if (
            limit
            and address is not None
            and address not in self.settings.connection_cap_exempt
            and self._created_count.get(address, 0) >= limit
        ):
            raise TooManySessions(
                f"this device has made {limit} sessions that are still open: join one of "
                "them, or wait until they expire"
            )
        total = self.settings.max_sessions
        if total and await self.store.session_count() >= total:
            raise TooManySessions(f"this server holds {total} sessions, its limit")

    def _check_claim_allowed(self, session_id: str) -> None:
        """Nobody leads a session made while the store was unreachable until it answers."""
        if session_id not in self._unverified:
            return
        if self.store.state is not StoreState.REDIS_UNREACHABLE:
            self._unverified.clear()  # the store is back: every write-back has been merged
            return
        raise StoreUnavailable(
            f"session {session_id!r} was made while the session store is unreachable: "
            "nobody can take its lead until it answers again"
        )

    def _check_seats(self, session: Session, connection: Connection, client_id: str | None) -> None:
        """One address holds at most ``max_members_per_address`` seats of a session (of the
        members connected to this node): 64 connections from one phone must not fill the
        band's session so that real phones get ``SESSION_FULL``. A client taking back its
        own seat is not counted twice."""
        limit = self.settings.max_members_per_address
        address = connection.address
        if not limit or address is None or address in self.settings.connection_cap_exempt:
            return
        cid = client_id or ANONYMOUS_PREFIX + connection.sid
        if cid in session.members:
            return
        held = 0
        for member in session.members.values():
            other = self.connections.get(member.socket_id)
            held += other is not None and other.address == address
        if held >= limit:
            raise SessionFull(
                f"this device already holds {limit} places in session {session.session_id!r}"
            )

    def _forget_session(self, session_id: str) -> None:
        """A session is gone (deleted or expired): drop what this node kept for it."""
        self._unverified.discard(session_id)
        self.sessions.pop(session_id, None)
        self._room_versions.pop(session_id, None)
        self._cancel_coalesced(session_id)
        address = self._created_by.pop(session_id, None)
        if address is not None:
            left = self._created_count.get(address, 1) - 1
            if left > 0:
                self._created_count[address] = left
            else:
                self._created_count.pop(address, None)

    async def join(
        self,
        sid: str,
        session_id: str,
        *,
        client_id: str | None = None,
        display_name: str | None = None,
        role: Role | None = None,
        key: str | None = None,
        wants_ticks: bool = True,
        create_protected: bool = False,
    ) -> tuple[Session, str | None]:
        """Join (creating an open session if needed). Returns the session and, for a protected
        session created by this join, its leader key."""
        connection = self._connection(sid)
        # A connection's joins, leaves and disconnect run one at a time (no ghost members).
        async with connection.membership:
            if self.connections.get(sid) is not connection:
                raise NotInSession("connection closed")  # dropped while the join waited
            switching = connection.session_id is not None and connection.session_id != session_id
            session, created = await self.ensure_session(
                session_id, protected=create_protected, address=connection.address
            )
            new_key = session.leader_key if created and create_protected else None
            if created and create_protected:
                role, key = "leader", new_key
            now = self.clock.now_ms()
            if role == "leader":
                try:
                    self._check_claim_allowed(session_id)
                except BandSyncError:
                    if created:
                        await self.store.delete(session_id)
                        self._forget_session(session_id)
                    raise

            def change(s: Session) -> tuple[str, str | None, list[Notice]]:
                self._check_seats(s, connection, client_id)
                member, replaced, notices = s.join(
                    now,
                    sid,
                    client_id=client_id,
                    display_name=display_name,
                    role=role,
                    key=key,
                    device=connection.user_agent,
                    rules=self.rules,
                )
                return member.client_id, replaced, notices

            try:
                session, (member_client_id, replaced, notices) = await self._update(
                    session_id, change
                )
            except BandSyncError:
                if created and not create_protected:
                    # A refused first join leaves no empty ad hoc session behind.
                    await self.store.delete(session_id)
                    self._forget_session(session_id)
                raise
            if switching:  # only once the new session took it: a refused join changes nothing
                await self._detach(connection, disconnected=False)
            connection.session_id = session_id
            connection.client_id = member_client_id
            connection.wants_ticks = wants_ticks
            await self.emitter.enter_room(sid, session_id)
            if wants_ticks:
                await self.emitter.enter_room(sid, tick_room(session_id))
            if replaced is not None:
                await self._evict_socket(replaced, session_id)
            await self.emitter.emit("snapshot", self.snapshot(session), to=sid)
            leadership = [n for n in notices if n[0] == "role_changed"]
            others = [n for n in notices if n[0] != "role_changed"]
            # (a join that moves the lead is published at once, its user_joined first)
            await self._publish_notices(session_id, others, at_once=bool(leadership))
            if leadership:
                await self._publish(session, leadership)
            else:
                self._publish_membership_later(session_id)
            SERVER.info("%s joined %s", connection.client_id, session_id)
            return session, new_key

    async def _evict_socket(self, old_sid: str, session_id: str) -> None:
        """An older socket of a client that re-attached: it no longer speaks for the member."""
        old = self.connections.get(old_sid)
        if old is not None and old.session_id == session_id:
            old.session_id = None
            old.client_id = None
            await self.emitter.leave_room(old_sid, session_id)
            await self.emitter.leave_room(old_sid, tick_room(session_id))

    async def leave(self, sid: str, session_id: str) -> None:
        connection = self._connection(sid)
        async with connection.membership:
            if connection.session_id != session_id:
                raise NotInSession(f"you are not in session {session_id!r}")
            await self._detach(connection, disconnected=False)

    async def _detach(self, connection: Connection, *, disconnected: bool) -> None:
        session_id = connection.session_id
        client_id = connection.client_id
        sid = connection.sid
        connection.session_id = None
        connection.client_id = None
        if session_id is None or client_id is None:
            return
        if not disconnected:
            await self.emitter.leave_room(sid, session_id)
            await self.emitter.leave_room(sid, tick_room(session_id))
        now = self.clock.now_ms()

        def change(s: Session) -> list[Notice] | object:
            member = s.members.get(client_id)
            if member is None or member.socket_id != sid:
                return _BOUNCE  # the client re-attached on a newer socket: nothing to do
            return s.leave(now, client_id, disconnected=disconnected)

        try:
            session, notices = await self._update(session_id, change)
        except SessionNotFound:
            return
        if notices is _BOUNCE or not isinstance(notices, list):
            return
        await self._after_change(session, notices)
        SERVER.info("%s left %s", client_id, session_id)

    async def _after_change(self, session: Session, notices: list[Notice]) -> None:
        """Publish: leadership/transport changes at once, pure membership coalesced."""
        membership = [n for n in notices if n[0] in ("user_joined", "user_left")]
        if len(membership) < len(notices):
            # membership first, as the core ordered it (user_left before the pause and
            # role_changed a leader's leaving causes); a user_left of an unannounced join
            # is dropped there too
            await self._publish_notices(session.session_id, membership, at_once=True)
            await self._publish(session, [n for n in notices if n not in membership])
        else:
            await self._publish_notices(session.session_id, notices)
            self._publish_membership_later(session.session_id)

    # -- commands -------------------------------------------------------------------------

    async def command(
        self, sid: str, session_id: str, action: Callable[[Session, str, float], list[Notice]]
    ) -> Session:
        """Run a member's command: ``action(session, actor, now)``; publish if it changed."""
        connection = self._connection(sid)
        if connection.session_id != session_id and session_id not in self.sessions:
            await self.get_session(session_id)  # raises SessionNotFound for an unknown id
        actor = self.actor(sid, session_id)
        return await self._run(session_id, actor, action)

    async def console_command(
        self, session_id: str, action: Callable[[Session, str, float], list[Notice]]
    ) -> Session:
        """The same, with the console's authority."""
        return await self._run(session_id, CONSOLE, action)

    async def _run(
        self, session_id: str, actor: str, action: Callable[[Session, str, float], list[Notice]]
    ) -> Session:
        now = self.clock.now_ms()
        before: list[int] = []

        def change(s: Session) -> list[Notice]:
            before.append(s.version)
            return action(s, actor, now)

        session, notices = await self._update(session_id, change)
        if session.version != before[-1]:
            await self._after_change(session, notices)
        return session

    async def set_role(self, sid: str, session_id: str, role: Role, key: str | None) -> Session:
        if role == "leader":
            self._check_claim_allowed(session_id)
        return await self.command(
            sid, session_id, lambda s, actor, now: s.set_role(now, actor, role, key)
        )

    async def remove_member(self, session_id: str, actor: str, target: str) -> None:
        """Remove a member (leader or console); their socket is told and leaves the room."""
        now = self.clock.now_ms()
        removed_sid: list[str] = []

        def change(s: Session) -> list[Notice]:
            member, notices = s.remove(now, actor, target)
            removed_sid.append(member.socket_id)
            return notices

        session, notices = await self._update(session_id, change)
        for sid in removed_sid:
            connection = self.connections.get(sid)
            if connection is not None and connection.session_id == session_id:
                connection.session_id = None
                connection.client_id = None
                await self.emitter.emit(
                    "removed", {"sessionId": session_id, "reason": "removed by the leader"}, to=sid
                )
                await self.emitter.leave_room(sid, session_id)
                await self.emitter.leave_room(sid, tick_room(session_id))
        await self._after_change(session, notices)

    # -- periodic upkeep ------------------------------------------------------------------

    async def housekeeping(self) -> None:
        """Elect leaders whose grace ran out; forget members gone too long."""
        now = self.clock.now_ms()
        for session_id, cached in list(self.sessions.items()):
            if not cached.housekeeping_due(now, self.rules):
                continue
            try:
                session, notices = await self._update(
                    session_id, lambda s: s.housekeeping(now, self.rules)
                )
            except SessionNotFound:
                self.sessions.pop(session_id, None)
                continue
            if notices:
                SERVER.info("session %s: leader %s", session_id, session.leader_id)
                await self._publish(session, notices)

    async def conduct(self) -> None:
        """Play the form of each playing song that has one: place its section boundaries
        and the leader's calls on the timeline before they happen (``Session.conduct``).

        The cached copy is asked first, so a session with nothing due costs no store round
        trip; the change itself runs under the session's lock, on the stored session, like
        any command (with Redis, any node may do it: the step is idempotent).
        """
        now = self.clock.now_ms()
        for session_id, cached in list(self.sessions.items()):
            if not cached.would_conduct(now):
                continue
            try:
                session, notices = await self._update(session_id, lambda s: s.conduct(now))
            except SessionNotFound:
                self.sessions.pop(session_id, None)
                continue
            if session.version != cached.version:
                await self._publish(session, notices)

    async def expire_idle(self) -> list[str]:
        """Delete sessions idle for longer than the expiry; tells anyone still listening.

        Its cost per run grows with the number of sessions, so it yields to the loop every
        ``SWEEP_BATCH`` sessions (ticks and commands go on between), and reads from the store
        only the sessions that this node's copy shows idle (or that it holds no copy of).
        """
        now = self.clock.now_ms()
        idle_ms = self.settings.idle_expiry_s * 1000.0
        expired: list[str] = []
        for done, session_id in enumerate(await self.store.session_ids(), start=1):
            if done % SWEEP_BATCH == 0:
                await asyncio.sleep(0)
            cached = self.sessions.get(session_id)
            if cached is not None and not cached.is_idle(now, idle_ms):
                continue
            session = await self.store.get(session_id)
            if session is None or not session.is_idle(now, idle_ms):
                continue
            await self.store.delete(session_id)
            self._forget_session(session_id)
            expired.append(session_id)
            payload = {"sessionId": session_id, "reason": "idle"}
            await self.emitter.emit("session_expired", payload, room=session_id)
            self._notify("session_expired", session_id, payload)
            SERVER.info("session %s expired after %.0f s idle", session_id, idle_ms / 1000)
        return expired

    # -- helpers for handlers -------------------------------------------------------------

    def notify_health(self, connection: Connection) -> None:
        """Tell listeners (the console) a member's link figures changed."""
        if connection.session_id is None:
            return
        payload: dict[str, Any] = {"socketId": connection.sid, "clientId": connection.client_id}
        payload.update(connection.link.to_wire(self.clock.now_ms()))
        self._notify("health", connection.session_id, payload)

    def allow(self, sid: str) -> bool:
        """Rate limit: one token per event."""
        connection = self.connections.get(sid)
        return connection is None or connection.bucket.allow()

    def sync_response(self, session: Session) -> dict[str, Any]:
        now = self.clock.now_ms()
        latest = session.timeline.latest
        return {
            "sessionId": session.session_id,
            "positionMs": session.timeline.position_at(now),
            "tempoBpm": latest.end_tempo_bpm,
            "isPlaying": latest.playing,
            "serverTime": now,
            "serverTimestamp": now,
            "version": session.version,
        }

    def playing_sessions(self, now_ms: float | None = None) -> list[Session]:
        """Sessions playing, or (given ``now_ms``) still playing then: a stop placed ahead
        (a song's end, 2 s before it) leaves the band playing until its instant."""
        at = now_ms

        def plays(session: Session) -> bool:
            timeline = session.timeline
            return timeline.latest.playing or (at is not None and timeline.is_playing_at(at))

        return [s for s in self.sessions.values() if plays(s)]


def new_session_id() -> str:
    """A short, readable, unguessable session id for ``create_session`` without one."""
    return "s-" + secrets.token_hex(4)


def parse_join(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a ``join_session`` payload into ``SessionService.join`` keyword arguments."""
    capabilities = data.get("capabilities")
    if capabilities is not None and not isinstance(capabilities, list):
        raise ValidationError("capabilities must be a list of strings")
    timeline_capable = capabilities is not None and "timeline" in capabilities
    display_name = data.get("displayName")
    validation.display_name(display_name, "")  # refused before any session is made for it
    return {
        "client_id": validation.client_id(data.get("clientId")),
        "display_name": display_name,
        "role": validation.optional_role(data.get("role")),
        "key": validation.leader_key(data.get("leaderKey")),
        "wants_ticks": not timeline_capable,
    }
