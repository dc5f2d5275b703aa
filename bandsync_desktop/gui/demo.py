"""Simulated band members: real socket.io clients that join a session on loopback.

Used by the screenshot mode's ``--demo`` and by ``bench/console_lag.py``. Each member
connects with a phone-like user agent, joins, runs real ``clock_sync`` exchanges and reports
the measured link figures (``sync_report``), and answers the server's heartbeats, as the
follower page does. No Qt here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import socketio

from ..core.clocksync import OffsetEstimator, SyncSample

DEMO_MEMBERS: tuple[tuple[str, str], ...] = (
    ("Ana (drums)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1"),
    ("Ben (bass)", "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile Safari/537.36"),
    ("Cleo (keys)", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) Safari/604.1"),
    ("Dev (vocals)", "Mozilla/5.0 (Linux; Android 13; SM-S911B) Firefox/125.0"),
    ("Eli (guitar)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15"),
)


def _local_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(slots=True)
class FollowerStats:
    ticks: int = 0
    plays: int = 0
    snapshots: int = 0
    tempo_changes: int = 0


class SimulatedFollower:
    """One simulated phone.

    Args:
        url: the server's base URL.
        name: display name.
        user_agent: the device's user agent, shown in the console.
        session_id: the session to join.
        timeline: join as a timeline client (no ``scroll_tick``), as the follower page does;
            ``False`` joins as a legacy client that receives ticks.
    """

    def __init__(
        self,
        url: str,
        name: str,
        user_agent: str,
        session_id: str = "band",
        *,
        timeline: bool = True,
    ) -> None:
        self.url = url
        self.name = name
        self.user_agent = user_agent
        self.session_id = session_id
        self.timeline = timeline
        self.stats = FollowerStats()
        self.estimator = OffsetEstimator()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("heartbeat", self._on_heartbeat)
        self.sio.on("scroll_tick", self._on_tick)
        self.sio.on("play", self._on_play)
        self.sio.on("snapshot", self._on_snapshot)
        self.sio.on("tempo_changed", self._on_tempo)

    async def _on_heartbeat(self, data: Any = None) -> None:
        if isinstance(data, dict):
            await self.sio.emit("heartbeat_response", {"timestamp": data.get("timestamp")})

    def _on_tick(self, _data: Any = None) -> None:
        self.stats.ticks += 1

    def _on_play(self, _data: Any = None) -> None:
        self.stats.plays += 1

    def _on_snapshot(self, _data: Any = None) -> None:
        self.stats.snapshots += 1

    def _on_tempo(self, _data: Any = None) -> None:
        self.stats.tempo_changes += 1

    async def join(self) -> dict[str, Any]:
        await self.sio.connect(
            self.url, headers={"User-Agent": self.user_agent}, transports=["websocket"]
        )
        payload: dict[str, Any] = {"sessionId": self.session_id, "displayName": self.name}
        if self.timeline:
            payload["capabilities"] = ["timeline"]
        answer: dict[str, Any] = await self.sio.call("join_session", payload, timeout=10)
        return answer

    async def sync(self, rounds: int = 5) -> None:
        """Real NTP-style exchanges, then a ``sync_report`` of what was measured."""
        for _ in range(rounds):
            t0 = _local_ms()
            reply = await self.sio.call("clock_sync", {"t0": t0}, timeout=10)
            t3 = _local_ms()
            self.estimator.add(SyncSample(t0, float(reply["t1"]), float(reply["t2"]), t3))
        now = _local_ms()
        await self.sio.emit(
            "sync_report",
            {
                "sessionId": self.session_id,
                "rttMs": self.estimator.rtt(now),
                "offsetMs": self.estimator.offset(now),
                "uncertaintyMs": self.estimator.uncertainty(now),
            },
        )

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class DemoBand:
    """A few simulated members for the screenshot mode."""

    def __init__(self, url: str, session_id: str = "band", size: int = 4) -> None:
        self.members = [
            SimulatedFollower(url, name, agent, session_id) for name, agent in DEMO_MEMBERS[:size]
        ]

    async def start(self) -> None:
        for member in self.members:
            await member.join()
        await asyncio.gather(*(member.sync() for member in self.members))

    async def stop(self) -> None:
        await asyncio.gather(*(member.close() for member in self.members))
