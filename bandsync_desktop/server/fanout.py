"""Room fan-out for the server's own periodic packets (``scroll_tick``, ``heartbeat``).

Profiling the 10 Hz tick fan-out (docs/load.md) showed where a plain
``AsyncServer.emit(room=...)`` spends its time per recipient: python-socketio encodes the
packet once per emit, but then creates one task per recipient, python-engineio puts the
packet on the socket's queue, its writer task wakes to frame it, and aiohttp compresses it
with permessage-deflate when the client offered it (every browser does) and writes it. So:

* websockets are created without permessage-deflate (``LeanServer.compress``, engine.py):
  ~15 % of the fan-out's CPU and a zlib context of several hundred kB per connection, for
  packets of ~150 bytes that compress badly anyway;
* ``TickFanout.emit`` encodes the packet once per room, builds the websocket frame once,
  and writes that frame to each local member's websocket in one synchronous pass: no task
  per recipient. Our sockets (``engine.LeanSocket``) write every packet straight to the
  transport once upgraded, so the tick is in order with everything sent before it; a socket
  still on long-polling (or python-engineio's own socket, in the benchmark's ``stock``
  variant) gets it through its queue. A recipient whose transport already buffers more than
  ``max_buffered_bytes`` (a phone that stopped reading) misses the packet: a tick is a sample
  of the timeline and the next one supersedes it, and an unread backlog must not grow.

Only members connected to this process are reached (as ``get_participants`` returns them),
which is what ticks want: each node serves its own followers' ticks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet

from .engine import LeanSocket, websocket_frame

NAMESPACE = "/"
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024
#: ``json.dumps(obj, separators=(",", ":"))`` (as python-socketio encodes), without building
#: an encoder a call.
encode_json = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(slots=True)
class FanoutStats:
    """Counters of how packets left (shown by benchmarks; cheap to keep)."""

    direct: int = 0
    queued: int = 0
    dropped_slow: int = 0


class TickFanout:
    """Sends one packet to every local member of a room with one encoding and one frame.

    Args:
        sio: The server whose rooms and Engine.IO sockets are used.
        max_buffered_bytes: A recipient whose transport buffers more than this misses the
            packet instead of queueing it.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self.sio = sio
        self.max_buffered_bytes = max_buffered_bytes
        self.enabled = True
        self.stats = FanoutStats()

    async def emit(self, event: str, data: Any, room: str, *, droppable: bool = True) -> int:
        """Send ``event`` with ``data`` to every local member of ``room``; returns how many
        recipients it was written or queued for. A ``droppable`` packet (a tick, a
        heartbeat: the next one supersedes it) skips recipients that stopped reading."""
        if not self.enabled:
            await self.sio.emit(event, data, room=room)
            return -1
        # Socket.IO EVENT packet for the default namespace, encoded as python-socketio does.
        text = "2" + encode_json([event, data])
        frame: bytes | None = None
        sockets = self.sio.eio.sockets
        sent = 0
        for _sid, eio_sid in self.sio.manager.get_participants(NAMESPACE, room):
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            if isinstance(socket, LeanSocket) and socket.transport is not None:
                if droppable and socket.buffered() > self.max_buffered_bytes:
                    self.stats.dropped_slow += 1
                    continue
                if frame is None:
                    frame = websocket_frame("4" + text)
                if not socket.write_frame(frame):
                    continue
                self.stats.direct += 1
            else:
                await socket.send(eio_packet.Packet(eio_packet.MESSAGE, text))
                self.stats.queued += 1
            sent += 1
        return sent


class RoomEmitter:
    """The service's emitter on one node: room broadcasts through the fan-out, the rest
    through python-socketio.

    A snapshot or notice to a session's room is encoded once and written to every member in
    one pass (python-socketio runs a task per recipient: the console's loop stalled ~40 ms
    sending a tempo change to 200 phones), and so is a packet ``to`` one socket (a reply
    such as ``latency_response``: python-socketio's task and ``asyncio.wait`` cost it two
    loop iterations). Never dropped for a slow reader: a snapshot is state, not a sample.
    With several nodes the service talks to python-socketio directly, whose Redis manager
    carries broadcasts to the other nodes' members.
    """

    def __init__(self, sio: socketio.AsyncServer, fanout: TickFanout) -> None:
        self.sio = sio
        self.fanout = fanout

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
    ) -> None:
        target = to or room  # (as python-socketio reads them: each sid is a room of its own)
        if (
            isinstance(target, str)
            and skip_sid is None
            and namespace in (None, NAMESPACE)
            and callback is None
            and self.fanout.enabled
        ):
            await self.fanout.emit(event, data, target, droppable=False)
            return
        await self.sio.emit(
            event,
            data,
            to=to,
            room=room,
            skip_sid=skip_sid,
            namespace=namespace,
            callback=callback,
            ignore_queue=ignore_queue,
        )

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        await self.sio.enter_room(sid, room, namespace=namespace)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        await self.sio.leave_room(sid, room, namespace=namespace)

    async def disconnect(
        self, sid: str, namespace: str | None = None, ignore_queue: bool = False
    ) -> None:
        await self.sio.disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
