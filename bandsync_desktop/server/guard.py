"""Guards in front of python-socketio's packet decoder: floods are dropped unread, malformed
packets get an answer.

Our event handlers turn every bad payload into a typed ``error`` (``handlers.py``). But a
packet that is not valid Socket.IO at all (``42[``, ``42{}``, ``4x``, an event name that is
not a string, a namespace that does not parse) never reaches them: python-socketio raises
while decoding it, and python-engineio logs the traceback at ERROR level and carries on. A
phone could fill the log with tracebacks as fast as it can send. The fuzz tests
(``tests/server/test_fuzz.py``) found these.

``guard_malformed_packets`` wraps the Engine.IO ``message`` handler: a packet that fails to
decode or dispatch (including an event whose name is not a string, or is one of the names
python-socketio reserves for its own ``connect``/``disconnect`` handlers) is logged at DEBUG,
answered with ``error {code: INVALID_PAYLOAD}`` and counted against the connection's rate
limit (a flood of them is answered no more often than the limit allows). Exceptions from our
own handlers never get here: ``handlers.py`` turns each into an ``error`` reply itself.

Floods never get this far: every frame is counted by the Engine.IO frame budget before
python-socketio sees it and dropped there, unread (``engine.py``; set in ``app.create_app``).

A websocket's well-formed events skip both wrappers: ``BandSyncSocketServer.dispatch_event``
(``engine.py``) runs their handlers without python-socketio's decoder, after the same checks
(a list, a name that is a string and not a reserved one, the default namespace, a connected
socket). Whatever it does not take (every packet these guards exist for) comes here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from ..core.errors import ErrorCode, ValidationError
from ..log import SERVER
from .service import SessionService

#: What python-socketio raises on packets it cannot decode or route. ``RecursionError``: a
#: packet nested deeper than the interpreter's recursion limit (``[[[[…]]]]``, ~1,500 deep).
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


def guard_malformed_packets(sio: socketio.AsyncServer, service: SessionService) -> None:
    """Install the guards on ``sio`` (after ``socketio.AsyncServer`` registered its own)."""
    handle: Callable[[str, Any], Awaitable[None]] = sio._handle_eio_message

    async def guarded(eio_sid: str, data: Any) -> None:
        try:
            await handle(eio_sid, data)
        except MALFORMED as exc:
            sid = sio.manager.sid_from_eio_sid(eio_sid, "/")
            SERVER.debug("malformed packet from %s: %s: %s", sid, type(exc).__name__, exc)
            if sid is None or not service.allow(sid):
                return
            error = ValidationError(
                f"malformed Socket.IO packet ({type(exc).__name__})", ErrorCode.INVALID_PAYLOAD
            ).to_payload(None)
            await sio.emit("error", error, to=sid)

    sio.eio.on("message", guarded)

    dispatch: Callable[[str, str | None, int | None, Any], Awaitable[None]] = sio._handle_event
    reserved = frozenset(sio.reserved_events)

    async def checked(eio_sid: str, namespace: str | None, ack_id: int | None, data: Any) -> None:
        # python-socketio dispatches the event name as sent: an unhashable one fails in a
        # background task (an unretrieved exception), and a client may name its event
        # "connect" or "disconnect" and so run those handlers on its own socket.
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ValueError("an event needs a name")
        if data[0] in reserved:
            raise ValueError(f"{data[0]!r} is not an event a client may send")
        await dispatch(eio_sid, namespace, ack_id, data)

    sio._handle_event = checked
