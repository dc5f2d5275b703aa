"""The console's commands as plain typed methods (no Qt).

Each method validates its arguments with the same ``core.validation`` functions a socket
event goes through and runs the same ``Session`` rule through
``SessionService.console_command``, with the console's authority. So the console and the
phones obey one rule set, and every change is published to the phones exactly as a socket
command would be. Bad input raises a ``BandSyncError`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import validation
from ..core.session import CONSOLE, AwayMember, Session, Song, member_id
from ..core.timeline import Boundary, Timeline
from .service import SessionService


@dataclass(frozen=True, slots=True)
class SongSpec:
    """A song as the console puts it on the stands: title, chart, tempo, meter, count-in."""

    title: str
    chart: str = ""
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    beat_unit: int | None = None
    count_in_bars: int | None = None


class ConsoleFacade:
    """Leader commands of the console on one session.

    Args:
        service: the server's session service.
        session_id: the session the console leads (the band session).
    """

    def __init__(self, service: SessionService, session_id: str) -> None:
        self.service = service
        self.session_id = session_id

    @property
    def session(self) -> Session | None:
        """The last state of the session this node wrote or read (no I/O)."""
        return self.service.sessions.get(self.session_id)

    async def set_tempo(self, bpm: float, boundary: Boundary = "beat") -> Session:
        """Change the tempo (20-280 BPM), on the next beat while playing."""
        tempo = validation.tempo(bpm)
        rules = self.service.rules
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.set_tempo(now, a, tempo, boundary, rules)
        )

    async def set_meter(
        self, beats_per_bar: int, beat_unit: int, boundary: Boundary = "bar"
    ) -> Session:
        """Change the meter, on the next bar while playing."""
        beats, unit = validation.meter(beats_per_bar, beat_unit)
        rules = self.service.rules
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.set_meter(now, a, beats, unit, boundary, rules)
        )

    async def set_count_in(self, bars: int) -> Session:
        """Count-in length in bars (0-4) for the next play."""
        count = validation.count_in_bars(bars)
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.set_count_in(now, a, count)
        )

    async def play(self) -> Session:
        """Start after the session's count-in."""
        rules = self.service.rules
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.play(now, a, rules)
        )

    async def pause(self) -> Session:
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.pause(now, a)
        )

    async def stop(self) -> Session:
        """Pause and go back to the top."""
        return await self.service.console_command(self.session_id, lambda s, a, now: s.stop(now, a))

    async def seek(self, position_ms: float) -> Session:
        position = validation.position(position_ms)
        rules = self.service.rules
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.seek(now, a, position, rules)
        )

    async def set_message(self, text: str) -> Session:
        message = validation.message(text)
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.set_message(now, a, message)
        )

    async def set_song(self, spec: SongSpec | None) -> Session:
        """Put a song on the stands (or clear it): title, chart, tempo, meter, count-in."""
        rules = self.service.rules
        if spec is None:
            return await self.service.console_command(
                self.session_id,
                lambda s, a, now: s.set_song(now, a, None, None, None, None, rules),
            )
        song = Song(validation.title(spec.title), validation.chart(spec.chart))
        tempo = None if spec.tempo_bpm is None else validation.tempo(spec.tempo_bpm)
        meter = (
            None
            if spec.beats_per_bar is None
            else validation.meter(spec.beats_per_bar, spec.beat_unit or 4)
        )
        count_in = (
            None if spec.count_in_bars is None else validation.count_in_bars(spec.count_in_bars)
        )
        return await self.service.console_command(
            self.session_id,
            lambda s, a, now: s.set_song(now, a, song, tempo, meter, count_in, rules),
        )

    async def hand_over(self, client_id: str) -> Session:
        """Pass the lead to a member, named by its client id (or ``CONSOLE``: back to it).

        The console names members by the client ids of its own member list, read from the
        session, never taken from the network; the rule itself resolves public ids only, so
        the console's id is turned into that member's public id here, and nothing else is.
        """
        ref = _public_ref(client_id)
        return await self.service.console_command(
            self.session_id, lambda s, a, now: s.hand_over(now, a, ref)
        )

    async def take_lead(self) -> Session:
        """Take the lead back to the console."""
        return await self.hand_over(CONSOLE)

    async def remove(self, client_id: str) -> None:
        """Remove a member, named by its client id; their phone is told and leaves."""
        await self.service.remove_member(self.session_id, CONSOLE, _public_ref(client_id))


def carried_over(previous: Session, now_ms: float) -> Session:
    """The band session of a restarted console server: what the band had, stopped at the top.

    Tempo, meter, count-in, song, stage message and the leader key are kept (a phone that
    was given the key can still claim the lead with it). The transport is stopped at the top,
    as after any stop. Nobody is connected any more, so every member becomes away, keeping
    their seniority; a phone that led has its seat held exactly as if its connection had
    dropped (``Session.leave``), so it gets the lead back when it rejoins within the grace
    period, and the console takes it after that. The version counts on from the previous
    one, so a phone that kept the old state never mistakes the new one for older.

    Args:
        previous: the band session as the stopped server last had it.
        now_ms: the new server's time.
    """
    latest = previous.timeline.latest
    away = {
        cid: AwayMember(gone.display_name, gone.joined_at, now_ms)
        for cid, gone in previous.away.items()
    }
    for cid, member in previous.members.items():
        away[cid] = AwayMember(member.display_name, member.joined_at, now_ms)
    leader = previous.leader_id
    phone_led = leader is not None and leader != CONSOLE and leader in away
    held = leader if phone_led else previous.held_leader_id
    return Session(
        session_id=previous.session_id,
        created_at=now_ms,
        timeline=Timeline.stopped(now_ms, latest.tempo_bpm, latest.beats_per_bar, latest.beat_unit),
        protected=previous.protected,
        console_hosted=previous.console_hosted,
        leader_key=previous.leader_key,
        leader_id=None if held is not None else CONSOLE,
        held_leader_id=held,
        vacant_since=now_ms if held is not None else None,
        away=away,
        message=previous.message,
        count_in_bars=previous.count_in_bars,
        song=previous.song,
        version=previous.version + 1,
        last_activity=now_ms,
    )


def _public_ref(client_id: str) -> str:
    """The public memberId of the member with ``client_id`` (``CONSOLE`` stays itself)."""
    return client_id if client_id == CONSOLE else member_id(client_id)
