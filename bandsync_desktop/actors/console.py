"""The console's commands as plain typed methods (no Qt): the console is one actor.

Each method builds the protocol payload a phone would send and submits it through its
``ActorHost`` (``server/peers.py``) to the one command table (``core.commands.COMMANDS``):
the same parser validates it and the same ``Session`` rule runs, with the console's
authority. So the console and the phones obey one rule set, and every change is published to
the phones exactly as a socket command would be. Bad input raises a ``BandSyncError`` and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.chordpro import DEFAULT_METER, DEFAULT_TEMPO, parse_chordpro
from ..core.conductor import CallAt
from ..core.errors import ValidationError
from ..core.session import CONSOLE, SegueAt, Session, member_id
from ..core.song import SongMap
from ..core.stageset import StageSet, StageSong
from ..core.timeline import Boundary
from ..server.peers import ActorHost


@dataclass(frozen=True, slots=True)
class SongSpec:
    """A song as the console puts it on the stands: title, chart, tempo, meter, count-in."""

    title: str
    chart: str = ""
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    beat_unit: int | None = None
    count_in_bars: int | None = None


def chart_sections(spec: SongSpec) -> list[dict[str, Any]] | None:
    """The sections of ``spec``'s chart as ``set_song`` takes them, or ``None`` when the
    chart has no timed line or does not read as ChordPro (it still goes on the stands)."""
    meter = (spec.beats_per_bar, spec.beat_unit or 4) if spec.beats_per_bar else DEFAULT_METER
    try:
        song = parse_chordpro(
            spec.chart, default_tempo_bpm=spec.tempo_bpm or DEFAULT_TEMPO, default_meter=meter
        )
    except ValidationError:
        return None
    if song.song_map is None:
        return None
    sections: list[dict[str, Any]] = song.song_map.to_dict()["sections"]
    return sections


def song_payload(spec: SongSpec, *, form: bool) -> dict[str, Any]:
    """``spec`` as ``set_song`` (and ``segue``) take it; with ``form``, its chart's sections."""
    song: dict[str, Any] = {"title": spec.title, "chart": spec.chart}
    sections = chart_sections(spec) if form else None
    if sections is not None:
        song["sections"] = sections
    if spec.tempo_bpm is not None:
        song["tempo"] = spec.tempo_bpm
    if spec.beats_per_bar is not None:
        song["beatsPerBar"] = spec.beats_per_bar
        song["beatUnit"] = spec.beat_unit or 4
    if spec.count_in_bars is not None:
        song["countInBars"] = spec.count_in_bars
    return song


def stage_song(spec: SongSpec, *, timed: bool) -> StageSong:
    """``spec`` as the phones list it in the set; with ``timed`` (the server plays the
    chart's form, so the song ends after its bars) its length at its sections' tempos."""
    sections = chart_sections(spec) if timed else None
    length = SongMap.from_dict({"sections": sections}).length_ms if sections else None
    return StageSong(
        title=spec.title,
        tempo_bpm=spec.tempo_bpm,
        beats_per_bar=spec.beats_per_bar,
        beat_unit=(spec.beat_unit or 4) if spec.beats_per_bar else None,
        length_ms=length,
    )


class ConsoleFacade:
    """Leader commands of the console on one session.

    Args:
        host: the actor host of the session the console leads (the band session).
    """

    def __init__(self, host: ActorHost) -> None:
        self.host = host
        self.session_id = host.session_id

    @property
    def session(self) -> Session | None:
        """The last state of the session this node wrote or read (no I/O)."""
        return self.host.session

    async def submit(self, name: str, payload: Mapping[str, Any]) -> Session:
        """Run the command ``name`` of the one table (``core.commands.COMMANDS``) with a
        protocol payload, with the console's authority: validated by the same parser and
        ruled by the same rule as when a phone sends it.

        Raises:
            BandSyncError: the payload is invalid or the rule refuses; nothing changed.
        """
        return await self.host.submit(name, payload)

    async def set_tempo(self, bpm: float, boundary: Boundary = "beat") -> Session:
        """Change the tempo (20-280 BPM), on the next beat while playing."""
        return await self.submit("set_tempo", {"tempo": bpm, "quantize": boundary})

    async def set_meter(
        self, beats_per_bar: int, beat_unit: int, boundary: Boundary = "bar"
    ) -> Session:
        """Change the meter, on the next bar while playing."""
        return await self.submit(
            "set_meter", {"beatsPerBar": beats_per_bar, "beatUnit": beat_unit, "quantize": boundary}
        )

    async def set_count_in(self, bars: int) -> Session:
        """Count-in length in bars (0-4) for the next play."""
        return await self.submit("set_count_in", {"bars": bars})

    async def play(self) -> Session:
        """Start after the session's count-in."""
        return await self.submit("play", {})

    async def pause(self) -> Session:
        return await self.submit("pause", {})

    async def stop(self) -> Session:
        """Pause and go back to the top."""
        return await self.submit("stop", {})

    async def seek(self, position_ms: float) -> Session:
        return await self.submit("seek", {"position": position_ms})

    async def set_message(self, text: str) -> Session:
        return await self.submit("update_message", {"message": text})

    async def set_song(self, spec: SongSpec | None, *, form: bool = True) -> Session:
        """Put a song on the stands (or clear it): title, chart, tempo, meter, count-in,
        and with ``form`` the chart's sections (its section markers and bar lines, read as
        ChordPro), which the server then plays: each section's tempo and meter on its bar,
        the leader's calls, the song's end."""
        song = None if spec is None else song_payload(spec, form=form)
        return await self.submit("set_song", {"song": song})

    async def segue(
        self, spec: SongSpec | None, at: SegueAt = "end", *, form: bool = True
    ) -> Session:
        """The next song straight on: its count-in starts on the downbeat the song playing
        stops on (the next bar, the end of this section, or its end); ``None`` takes a
        segue back. The song as ``set_song`` sends it (with ``form``, its chart's sections)."""
        song = None if spec is None else song_payload(spec, form=form)
        return await self.submit("segue", {"song": song, "at": at})

    async def set_setlist(self, setlist: StageSet | None) -> Session:
        """Show the set on every phone (``None`` takes it off): its songs, the current one."""
        wire = None if setlist is None else setlist.to_wire()
        return await self.submit("set_setlist", {"setlist": wire})

    async def cue(self, text: str, in_bars: int = 0, hold_bars: int = 2) -> Session:
        """A stage cue on every phone: on the next bar (plus ``in_bars``), held
        ``hold_bars`` bars; at once while stopped."""
        return await self.submit("cue", {"text": text, "inBars": in_bars, "holdBars": hold_bars})

    async def clear_cue(self) -> Session:
        """Take the stage cue off the phones."""
        return await self.submit("clear_cue", {})

    async def jump(self, section: int | str, at: CallAt = "bar") -> Session:
        """Go to a section of the song's form (its index or name): at the next downbeat
        (``"bar"``) or at the end of the section playing (``"section"``)."""
        return await self.submit("jump", {"section": section, "at": at})

    async def vamp(self, on: bool = True) -> Session:
        """Repeat the section playing until released (``on=False``)."""
        return await self.submit("vamp", {"on": on})

    async def end(self, at: CallAt = "bar") -> Session:
        """End the song after this bar (``"bar"``) or this section (``"section"``)."""
        return await self.submit("end", {"at": at})

    async def hand_over(self, client_id: str) -> Session:
        """Pass the lead to a member, named by its client id (or ``CONSOLE``: back to it).

        The console names members by the client ids of its own member list, read from the
        session, never taken from the network; the rule itself resolves public ids only, so
        the console's id is turned into that member's public id here, and nothing else is.
        """
        return await self.submit("hand_over", {"to": _public_ref(client_id)})

    async def take_lead(self) -> Session:
        """Take the lead back to the console."""
        return await self.hand_over(CONSOLE)

    async def remove(self, client_id: str) -> None:
        """Remove a member, named by its client id; their phone is told and leaves."""
        await self.host.remove_member(_public_ref(client_id))


def _public_ref(client_id: str) -> str:
    """The public memberId of the member with ``client_id`` (``CONSOLE`` stays itself)."""
    return client_id if client_id == CONSOLE else member_id(client_id)
