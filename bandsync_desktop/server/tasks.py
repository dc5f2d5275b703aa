"""The server's background tasks: one ticker for all sessions, upkeep, heartbeats, loop lag.

Each is a plain coroutine that runs until cancelled; ``app.create_app`` starts and cancels
them through aiohttp's ``cleanup_ctx``, so none is left without an owner.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque

from ..core.session import Session
from ..log import SERVER
from .fanout import TickFanout
from .service import SessionService, tick_room


async def run_ticker(
    service: SessionService, tick_hz: float, fanout: TickFanout | None = None
) -> None:
    """``scroll_tick`` to legacy followers of every playing session, on a fixed grid.

    Positions come from the timeline at the instant of sending, so a late wake-up makes a
    tick late, never wrong; a missed tick is skipped, never made up. With a ``fanout``, each
    session's tick is encoded and framed once and written to its members in one pass.

    Ticks go on until the band stops, not until a stop is placed: the song's form places its
    end ~2 s ahead. When the timeline stops by itself (the form's end, an end call) these
    followers get the ``pause`` they would get from a leader's Pause, at its instant (they
    know no timeline to read it from); a leader's own pause reaches them twice, harmlessly.
    """
    loop = asyncio.get_running_loop()
    interval = 1.0 / tick_hz
    deadline = loop.time()
    clock = service.clock
    was_playing: set[str] = set()
    while True:
        deadline += interval
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            deadline = loop.time()  # fell behind: skip, never burst to catch up
        now = clock.now_ms()
        playing: set[str] = set()
        for session in service.playing_sessions(now):
            if not session.members:
                continue
            timeline = session.timeline
            segment = timeline.segment_at(now)
            if not segment.playing:
                continue  # (stopped now, or before a play placed ahead: told below if it was)
            playing.add(session.session_id)
            payload = {
                "sessionId": session.session_id,
                "positionMs": timeline.position_at(now),
                "tempoBpm": segment.tempo_at(now),
                "isPlaying": segment.playing,
                "beat": segment.beat_at(now),
                "serverTimestamp": now,
            }
            try:
                if fanout is not None:
                    await fanout.emit("scroll_tick", payload, tick_room(session.session_id))
                else:
                    await service.emitter.emit(
                        "scroll_tick", payload, room=tick_room(session.session_id)
                    )
            except Exception:
                SERVER.exception("tick to %s failed", session.session_id)
        for session_id in was_playing - playing:  # stopped by itself since the last tick
            stopped = service.sessions.get(session_id)
            if stopped is not None and not stopped.timeline.is_playing_at(now):
                await _stopped(service, fanout, stopped, now)
        was_playing = playing


async def _stopped(
    service: SessionService, fanout: TickFanout | None, session: Session, now: float
) -> None:
    """A ``pause`` for the legacy followers of ``session``, whose timeline stopped."""
    timeline = session.timeline
    payload = {
        "sessionId": session.session_id,
        "positionMs": timeline.position_at(now),
        "tempoBpm": timeline.tempo_at(now),
        "isPlaying": False,
        "effectiveAt": timeline.segment_at(now).start_ms,
        "serverTimestamp": now,
    }
    try:
        if fanout is not None:
            await fanout.emit("pause", payload, tick_room(session.session_id), droppable=False)
        else:
            await service.emitter.emit("pause", payload, room=tick_room(session.session_id))
    except Exception:
        SERVER.exception("pause to %s failed", session.session_id)


async def run_every(interval_s: float, name: str, job: object) -> None:
    """Run ``await job()`` every ``interval_s``; a failing run is logged, not fatal."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()  # type: ignore[operator]
        except asyncio.CancelledError:
            raise
        except Exception:
            SERVER.exception("%s failed", name)


async def send_heartbeats(service: SessionService, fanout: TickFanout | None = None) -> None:
    """One ``heartbeat`` per session room; answers give each member's RTT."""
    payload = {"timestamp": service.clock.now_ms()}
    for session_id in list(service.sessions):
        if fanout is not None:
            await fanout.emit("heartbeat", payload, session_id)
        else:
            await service.emitter.emit("heartbeat", payload, room=session_id)


class LoopLagMonitor:
    """Measures how late the event loop wakes a 100 ms sleeper: the loop's responsiveness."""

    def __init__(self, interval_s: float = 0.1, window: int = 600) -> None:
        self.interval_s = interval_s
        self.samples: deque[float] = deque(maxlen=window)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.samples.append(max(0.0, (loop.time() - start - self.interval_s) * 1000.0))

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"p50Ms": None, "p99Ms": None, "maxMs": None}
        ordered = sorted(self.samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return {
            "p50Ms": round(statistics.median(ordered), 3),
            "p99Ms": round(p99, 3),
            "maxMs": round(ordered[-1], 3),
        }
