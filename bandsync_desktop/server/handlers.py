"""Socket.IO event handlers: validate the payload, call the service, answer.

Every handler answers through the ack (when the client asked for one) with ``{ok: true, ...}``
or ``{ok: false, error: {code, message, event}}``; a refusal is also sent as an ``error``
event, which is what clients written for the original server listen to.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio

from ..core import validation
from ..core.commands import COMMANDS, Command
from ..core.errors import BandSyncError, ErrorCode, SessionExists, ValidationError
from ..core.ratelimit import TokenBucket
from ..core.session import ANONYMOUS_PREFIX, Session, member_id
from ..log import SERVER
from .service import Connection, SessionService, new_session_id, parse_join

Handler = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any] | None]]

#: Events that are answered but never counted against the rate limit: the answers to the
#: server's own heartbeats. (The follower page's clock-sync burst at join, 16 ``clock_sync``
#: 50 ms apart, and its periodic 2 a second fit the budget of 30/s, bursts of 60.)
UNLIMITED = frozenset({"heartbeat_response"})
#: Changes of membership, which cost every member of the session a notice and a snapshot:
#: they have a budget of their own (``membership_rate_per_s``, ``membership_burst``).
MEMBERSHIP = frozenset({"join_session", "create_session", "leave_session", "set_role"})
#: A refusal for the rate limit is sent as an ``error`` event at most once a window (the
#: ack, when one was asked for, always answers).
RATE_LIMITED_WINDOW_MS = 1000.0


class _Registry:
    def __init__(self, sio: socketio.AsyncServer, service: SessionService) -> None:
        self.sio = sio
        self.service = service

    def on(self, name: str) -> Callable[[Handler], Handler]:
        def decorator(fn: Handler) -> Handler:
            async def handler(sid: str, data: Any = None, *_: Any) -> dict[str, Any]:
                return await self._dispatch(name, fn, sid, data)

            self.sio.on(name, handler)
            return fn

        return decorator

    def _membership_budget(self, connection: Connection) -> TokenBucket:
        bucket = connection.membership_budget
        if bucket is None:
            settings = self.service.settings
            bucket = connection.membership_budget = TokenBucket(
                settings.membership_rate_per_s, settings.membership_burst, self.service.clock
            )
        return bucket

    def _tell_limited(self, connection: Connection | None) -> bool:
        """Whether a rate-limit refusal is to be sent as an ``error`` event now (the first
        of its window): a flood is told once a second, not once an event."""
        if connection is None:
            return True
        now = self.service.clock.now_ms()
        if now - connection.limited_told_at < RATE_LIMITED_WINDOW_MS:
            return False
        connection.limited_told_at = now
        return True

    async def _dispatch(self, name: str, fn: Handler, sid: str, data: Any) -> dict[str, Any]:
        service = self.service
        connection = service.touch(sid)
        charged: TokenBucket | None = None  # the membership token this event took
        try:
            if name not in UNLIMITED and not service.allow(sid):
                raise BandSyncError(
                    "too many events: slow down (refused, nothing changed)",
                    ErrorCode.RATE_LIMITED,
                )
            if name in MEMBERSHIP and connection is not None:
                budget = self._membership_budget(connection)
                if not budget.allow():
                    raise BandSyncError(
                        "too many joins, leaves and role changes: slow down "
                        "(nothing changed, the connection is kept)",
                        ErrorCode.RATE_LIMITED,
                    )
                charged = budget
            payload = validation.payload({} if data is None else data)
            result = await fn(sid, payload)
        except BandSyncError as exc:
            if charged is not None:
                charged.refund()  # refused: it changed nothing and costs the room nothing
            error = exc.to_payload(name)
            SERVER.debug("%s refused for %s: %s", name, sid, exc.message)
            if exc.code is not ErrorCode.RATE_LIMITED or self._tell_limited(connection):
                await self.service.emitter.emit("error", error, to=sid)
            return {"ok": False, "error": error}
        except Exception:
            SERVER.exception("%s failed for %s", name, sid)
            error = BandSyncError("internal server error", ErrorCode.INTERNAL).to_payload(name)
            await self.service.emitter.emit("error", error, to=sid)
            return {"ok": False, "error": error}
        return {"ok": True, **(result or {})}


def _session_id(payload: Mapping[str, Any]) -> str:
    return validation.session_id(payload.get("sessionId"))


def _version(session: Session) -> dict[str, Any]:
    return {"sessionId": session.session_id, "version": session.version}


def _joined(session: Session, sid: str) -> dict[str, Any]:
    """A join's ack: the member's own ids (its clientId only if it chose one) and role."""
    member = session.member_by_socket(sid)
    assert member is not None  # the join that just succeeded put it there
    anonymous = member.client_id.startswith(ANONYMOUS_PREFIX)
    return {
        **_version(session),
        "clientId": None if anonymous else member.client_id,
        "memberId": member_id(member.client_id),
        "socketId": sid,
        "role": session.role_of(member.client_id),
    }


def register(sio: socketio.AsyncServer, service: SessionService) -> None:
    """Attach every protocol event to ``sio``."""
    registry = _Registry(sio, service)
    on = registry.on
    rules = service.rules
    clock = service.clock
    # Answers to the socket that asked: written straight to it on one node (fanout.py), through
    # python-socketio (and its Redis manager) on several.
    reply = service.emitter.emit

    async def connect(sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        service.connect(sid, environ.get("HTTP_USER_AGENT"), environ.get("REMOTE_ADDR"))

    async def disconnect(sid: str, reason: Any = None) -> None:
        await service.disconnect(sid)

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)

    # -- membership -------------------------------------------------------------------------

    @on("join_session")
    async def join_session(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        session_id = _session_id(payload)
        session, _ = await service.join(sid, session_id, **parse_join(payload))
        return _joined(session, sid)

    @on("create_session")
    async def create_session(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        raw = payload.get("sessionId")
        session_id = new_session_id() if raw is None else validation.session_id(raw)
        if await service.store.get(session_id) is not None:
            raise SessionExists(f"session {session_id!r} exists already")
        session, key = await service.join(
            sid, session_id, create_protected=True, **parse_join(payload)
        )
        if key is None:  # lost a race with another creator of the same id
            raise SessionExists(f"session {session_id!r} exists already")
        return {**_joined(session, sid), "leaderKey": key}

    @on("leave_session")
    async def leave_session(sid: str, payload: Mapping[str, Any]) -> None:
        await service.leave(sid, _session_id(payload))

    @on("set_role")
    async def set_role(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        role = validation.role(payload.get("role"))
        key = validation.leader_key(payload.get("leaderKey"))
        session = await service.set_role(sid, _session_id(payload), role, key)
        return _version(session)

    @on("remove_member")
    async def remove_member(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        target = payload.get("member")
        if not isinstance(target, str) or not target:
            raise ValidationError("member must be a socketId or memberId")
        session_id = _session_id(payload)
        actor = service.actor(sid, session_id)
        await service.remove_member(session_id, actor, target)
        return {"sessionId": session_id}

    # -- the leader's commands: one table (core/commands.py) for sockets and console ------

    def command_handler(command: Command) -> Handler:
        async def handle(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
            action = command.parse(payload, rules)  # the payload is validated once, here
            session = await service.command(sid, _session_id(payload), action)
            return _version(session)

        return handle

    for command in COMMANDS.values():
        on(command.name)(command_handler(command))

    # -- time and health --------------------------------------------------------------------

    @on("sync_request")
    async def sync_request(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        session_id = _session_id(payload)
        session = service.sessions.get(session_id) or await service.get_session(session_id)
        response = service.sync_response(session)
        await reply("sync_response", response, to=sid)
        return response

    @on("latency_probe")
    async def latency_probe(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        timestamp = validation.finite(payload.get("timestamp"), "timestamp")
        response = {"clientTimestamp": timestamp, "serverTimestamp": clock.now_ms()}
        await reply("latency_response", response, to=sid)
        return response

    @on("clock_sync")
    async def clock_sync(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        t1 = clock.now_ms()
        t0 = validation.finite(payload.get("t0"), "t0")
        response = {"t0": t0, "t1": t1, "t2": clock.now_ms()}
        await reply("clock_sync", response, to=sid)
        return response

    @on("heartbeat")
    async def heartbeat(sid: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        raw = payload.get("timestamp")  # echoed: a number, or nothing (never what else came)
        timestamp = None if raw is None else validation.finite(raw, "timestamp")
        response = {"timestamp": timestamp, "serverTimestamp": clock.now_ms()}
        await reply("heartbeat_response", response, to=sid)
        return response

    @on("heartbeat_response")
    async def heartbeat_response(sid: str, payload: Mapping[str, Any]) -> None:
        """A client's answer to the server's ``heartbeat``: one RTT sample."""
        sent = payload.get("timestamp")
        connection = service.connections.get(sid)
        if (
            connection is None
            or isinstance(sent, bool)
            or not isinstance(sent, int | float)
            or not math.isfinite(sent)
        ):
            return
        rtt = clock.now_ms() - float(sent)
        if 0 <= rtt < 60_000:
            connection.link.add_rtt(rtt)

    @on("sync_report")
    async def sync_report(sid: str, payload: Mapping[str, Any]) -> None:
        """A timeline client reports its clock-sync quality (shown in the console)."""
        connection = service.connections.get(sid)
        if connection is None:
            return
        values = {}
        for field in ("rttMs", "offsetMs", "uncertaintyMs"):
            raw = payload.get(field)
            if raw is not None:
                values[field] = validation.finite(raw, field)
        # all of the report is checked before any of it is kept
        raw_delay = payload.get("outputDelayMs")
        delay = None if raw_delay is None else validation.output_delay(raw_delay)
        raw_output = payload.get("output")
        output = None if raw_output is None else validation.output(raw_output)
        if delay is not None:
            connection.link.output_delay_ms = delay
            connection.link.output = output
        if "rttMs" in values:
            connection.link.add_rtt(values["rttMs"])
        if "uncertaintyMs" in values:
            connection.link.uncertainty_ms = values["uncertaintyMs"]
        if "offsetMs" in values:
            connection.link.offset_ms = values["offsetMs"]
        if connection.session_id is not None:
            service.notify_health(connection)
