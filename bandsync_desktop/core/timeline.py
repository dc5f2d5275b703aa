"""The transport timeline: position and beat at any server instant, from anchors.

Nothing here advances by counting ticks. A *segment* says: from server time ``start_ms`` on,
the transport is at ``position_ms``/``beat`` at the instant ``anchor_ms`` and moves (or not)
at ``tempo_bpm``. A change (tempo, play, pause, seek, meter) appends a new segment that takes
effect at an instant chosen by the caller, usually a short lead into the future and on a beat
or bar boundary, so that every device switches at the same server instant.

``start_ms <= anchor_ms``. Between them a count-in runs: beats advance (negative relative to
the anchor beat) while the song position holds. A timeline is the list of segments in start
order; the one in force at ``t`` is the last whose ``start_ms <= t``. Segments that a later one
superseded before "now" are pruned, so the list is one segment plus any pending changes.

Position is song time in milliseconds: it advances 1:1 with server time while playing and is
independent of tempo. Beat is the musical count: it advances at ``tempo_bpm``; bar and beat in
bar derive from it and the meter (beat 0 is the first beat of bar 1).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

MS_PER_MINUTE: Final = 60_000.0
_SNAP: Final = 1e-6  # reading a bar or a boundary, beats this close to a whole number count as it
_NOISE: Final = 8 * sys.float_info.epsilon  # relative error of a few float operations
MAX_PENDING: Final = 16  # pending changes kept at once; more means a client is flooding

Boundary = Literal["now", "beat", "bar"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of the timeline. See the module docstring."""

    start_ms: float
    anchor_ms: float
    position_ms: float
    beat: float
    tempo_bpm: float
    playing: bool
    beats_per_bar: int
    beat_unit: int

    @property
    def beat_ms(self) -> float:
        """Length of one beat in milliseconds at this segment's tempo."""
        return MS_PER_MINUTE / self.tempo_bpm

    def position_at(self, t_ms: float) -> float:
        if not self.playing:
            return self.position_ms
        return self.position_ms + max(0.0, t_ms - self.anchor_ms)

    def beat_at(self, t_ms: float) -> float:
        if not self.playing:
            return self.beat
        return self.beat + (t_ms - self.anchor_ms) / self.beat_ms

    def time_of_beat(self, beat: float) -> float:
        """Server time at which this (playing) segment reaches ``beat``."""
        return self.anchor_ms + (beat - self.beat) * self.beat_ms

    def to_wire(self) -> dict[str, Any]:
        return {
            "startServerTime": self.start_ms,
            "anchorServerTime": self.anchor_ms,
            "anchorPositionMs": self.position_ms,
            "anchorBeat": self.beat,
            "tempoBpm": self.tempo_bpm,
            "isPlaying": self.playing,
            "beatsPerBar": self.beats_per_bar,
            "beatUnit": self.beat_unit,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Segment:
        return cls(
            start_ms=float(data["startServerTime"]),
            anchor_ms=float(data["anchorServerTime"]),
            position_ms=float(data["anchorPositionMs"]),
            beat=float(data["anchorBeat"]),
            tempo_bpm=float(data["tempoBpm"]),
            playing=bool(data["isPlaying"]),
            beats_per_bar=int(data["beatsPerBar"]),
            beat_unit=int(data["beatUnit"]),
        )


@dataclass(frozen=True, slots=True)
class BarBeat:
    """A musical position: 1-based bar and beat, and the fraction into the beat (0..1)."""

    bar: int
    beat: int
    fraction: float


def bar_beat(beat: float, beats_per_bar: int) -> BarBeat:
    """Bar and beat (both 1-based) of an absolute beat count. Beat 0 is bar 1, beat 1."""
    whole = math.floor(beat + _SNAP)
    bar, in_bar = divmod(whole, beats_per_bar)
    return BarBeat(bar=bar + 1, beat=in_bar + 1, fraction=max(0.0, beat - whole))


def _snap(beat: float, magnitude: float) -> float:
    """Round a re-anchored beat to a whole one when only float noise separates them.

    ``magnitude`` is the largest operand of the computation, in beats (server times are
    epoch milliseconds, so a beat computed from them carries an error of about
    ``epsilon * t / beat_ms``). Rounding more than that would let quick changes drift the
    beat; rounding less would leave boundary beats a hair off their whole number.
    """
    nearest = round(beat)
    noise = _NOISE * max(1.0, abs(magnitude), abs(beat))
    return float(nearest) if abs(beat - nearest) <= noise else beat


class Timeline:
    """An immutable, ordered list of segments. Every change returns a new timeline."""

    __slots__ = ("_segments",)

    def __init__(self, segments: Sequence[Segment]) -> None:
        if not segments:
            raise ValueError("a timeline has at least one segment")
        self._segments: tuple[Segment, ...] = tuple(segments)

    @classmethod
    def stopped(
        cls, now_ms: float, tempo_bpm: float = 120.0, beats_per_bar: int = 4, beat_unit: int = 4
    ) -> Timeline:
        """A transport at the top of the song, paused."""
        return cls([Segment(now_ms, now_ms, 0.0, 0.0, tempo_bpm, False, beats_per_bar, beat_unit)])

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._segments

    @property
    def latest(self) -> Segment:
        """The last segment: the state once every pending change has taken effect."""
        return self._segments[-1]

    def segment_at(self, t_ms: float) -> Segment:
        """The segment in force at ``t_ms`` (the first one for instants before it)."""
        found = self._segments[0]
        for segment in self._segments[1:]:
            if segment.start_ms > t_ms:
                break
            found = segment
        return found

    def position_at(self, t_ms: float) -> float:
        """Song position (ms) at server time ``t_ms``."""
        return self.segment_at(t_ms).position_at(t_ms)

    def beat_at(self, t_ms: float) -> float:
        """Absolute beat count at server time ``t_ms`` (negative relative during a count-in)."""
        return self.segment_at(t_ms).beat_at(t_ms)

    def bar_beat_at(self, t_ms: float) -> BarBeat:
        segment = self.segment_at(t_ms)
        return bar_beat(segment.beat_at(t_ms), segment.beats_per_bar)

    def is_playing_at(self, t_ms: float) -> bool:
        return self.segment_at(t_ms).playing

    def counting_in_at(self, t_ms: float) -> bool:
        """True between a play's start and its downbeat (the count-in)."""
        segment = self.segment_at(t_ms)
        return segment.playing and t_ms < segment.anchor_ms

    def pruned(self, now_ms: float) -> Timeline:
        """Drop segments that a later segment had superseded by ``now_ms``."""
        keep_from = 0
        for index, segment in enumerate(self._segments):
            if segment.start_ms <= now_ms:
                keep_from = index
            else:
                break
        if keep_from == 0:
            return self
        return Timeline(self._segments[keep_from:])

    # -- scheduling -------------------------------------------------------------------------

    def effective_time(self, not_before_ms: float, boundary: Boundary) -> float:
        """The instant a change asked for at ``not_before_ms`` takes effect.

        Changes never take effect before a change already pending (so none is lost or
        reordered). While playing, ``'beat'`` and ``'bar'`` move the instant to the next
        beat or downbeat of the timeline as it will be then.
        """
        last = self.latest
        t = max(not_before_ms, last.start_ms)
        if boundary == "now" or not last.playing:
            return t
        unit = 1 if boundary == "beat" else last.beats_per_bar
        current = last.beat_at(t)
        target = math.ceil(current / unit - _SNAP) * unit
        return max(t, last.time_of_beat(target))

    def _append(self, segment: Segment) -> Timeline:
        if segment.start_ms < self.latest.start_ms:
            raise ValueError("a change cannot take effect before a pending one")
        kept = [s for s in self._segments if s.start_ms < segment.start_ms]
        if not kept:
            # The new segment starts where the first one did: it simply replaces it.
            return Timeline([segment])
        if len(kept) >= MAX_PENDING:
            raise ValueError("too many pending changes")
        return Timeline([*kept, segment])

    def _state_at(self, t_ms: float) -> tuple[Segment, float, float]:
        segment = self.segment_at(t_ms)
        if segment.playing and t_ms < segment.anchor_ms:
            # Inside a count-in the song has not started: the state is the anchor's.
            return segment, segment.position_ms, segment.beat
        beat = _snap(segment.beat_at(t_ms), t_ms / segment.beat_ms)
        return segment, segment.position_at(t_ms), beat

    def _reanchored(
        self,
        at_ms: float,
        segment: Segment,
        position_ms: float,
        beat: float,
        anchor_ms: float | None = None,
        **changes: Any,
    ) -> Timeline:
        """Append ``segment`` re-anchored at ``at_ms`` (or ``anchor_ms``) with ``changes``."""
        return self._append(
            replace(
                segment,
                start_ms=at_ms,
                anchor_ms=at_ms if anchor_ms is None else anchor_ms,
                position_ms=position_ms,
                beat=beat,
                **changes,
            )
        )

    def with_tempo(self, at_ms: float, tempo_bpm: float) -> Timeline:
        """Change tempo at ``at_ms``, keeping position and beat phase continuous."""
        segment, position, beat = self._state_at(at_ms)
        anchor = None
        if segment.playing and at_ms < segment.anchor_ms:
            # A tempo change during a count-in keeps the downbeat's beat number but moves the
            # downbeat so that the remaining count-in beats run at the new tempo.
            remaining_beats = (segment.anchor_ms - at_ms) / segment.beat_ms
            anchor = at_ms + remaining_beats * MS_PER_MINUTE / tempo_bpm
        return self._reanchored(at_ms, segment, position, beat, anchor, tempo_bpm=tempo_bpm)

    def played(self, at_ms: float, count_in_beats: int = 0) -> Timeline:
        """Start playing at ``at_ms``, after ``count_in_beats`` beats of count-in."""
        segment, position, beat = self._state_at(at_ms)
        if segment.playing:
            return self
        anchor = at_ms + count_in_beats * segment.beat_ms
        return self._reanchored(at_ms, segment, position, beat, anchor, playing=True)

    def paused(self, at_ms: float) -> Timeline:
        """Stop at ``at_ms`` where the transport is then (a count-in is abandoned)."""
        segment, position, beat = self._state_at(at_ms)
        if not segment.playing:
            return self
        return self._reanchored(at_ms, segment, position, beat, playing=False)

    def sought(self, at_ms: float, position_ms: float) -> Timeline:
        """Jump to ``position_ms`` at ``at_ms``; playing or paused as before.

        The beat at the new position is derived at the current tempo (``position * bpm``),
        the natural reading when a song keeps one tempo.
        """
        segment, _, _ = self._state_at(at_ms)
        beat = _snap(position_ms / segment.beat_ms, 0.0)
        return self._reanchored(at_ms, segment, position_ms, beat)

    def with_meter(self, at_ms: float, beats_per_bar: int, beat_unit: int) -> Timeline:
        """Change meter at ``at_ms``; bars stay continuous (beats are renumbered)."""
        segment, position, beat = self._state_at(at_ms)
        new_beat = _snap(beat / segment.beats_per_bar * beats_per_bar, 0.0)
        in_count_in = segment.playing and at_ms < segment.anchor_ms
        return self._reanchored(
            at_ms,
            segment,
            position,
            new_beat,
            segment.anchor_ms if in_count_in else None,
            beats_per_bar=beats_per_bar,
            beat_unit=beat_unit,
        )

    # -- wire -------------------------------------------------------------------------------

    def to_wire(self) -> list[dict[str, Any]]:
        return [segment.to_wire() for segment in self._segments]

    @classmethod
    def from_wire(cls, data: Sequence[Mapping[str, Any]]) -> Timeline:
        return cls([Segment.from_wire(item) for item in data])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeline) and self._segments == other._segments

    def __hash__(self) -> int:
        return hash(self._segments)

    def __repr__(self) -> str:
        return f"Timeline({list(self._segments)!r})"
