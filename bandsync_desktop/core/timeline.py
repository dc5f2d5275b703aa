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

Server times are epoch milliseconds in doubles: one ulp there is 0.24 µs. A change placed on a
beat is asked for at that beat's instant rounded to a double; anchoring the new segment at the
rounded instant would add up to half an ulp per change, a random walk over a long set. So an
anchor is a double-double, ``anchor_ms + anchor_lo_ms``: the low part is what the rounding left
over (computed error-free when the change is placed), carried into every beat and time the
segment computes and into the next anchor. The error at any instant is then one rounding, not
one per change. Position, start and the count-in test (``t < anchor_ms``) use the high part
alone: they compare instants, where a sub-ulp part means nothing.
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
    """One stretch of the timeline. See the module docstring.

    A *ramp* (accelerando, ritardando) runs from the anchor: the tempo goes from
    ``tempo_bpm`` to ``ramp_to_bpm`` linearly in beats over ``ramp_beats`` beats, then holds
    at ``ramp_to_bpm``. With tempo ``T(b) = T0 + k b`` (``k`` BPM per beat) the time to beat
    ``b`` after the anchor is ``60000/k * ln(1 + k b / T0)`` ms, and the beat at ``t`` ms is
    ``T0/k * (exp(k t / 60000) - 1)``: closed forms, so a ramp is as exact as a constant
    tempo. A count-in before the anchor runs at ``tempo_bpm``.
    """

    start_ms: float
    anchor_ms: float
    position_ms: float
    beat: float
    tempo_bpm: float
    playing: bool
    beats_per_bar: int
    beat_unit: int
    ramp_to_bpm: float | None = None
    ramp_beats: float = 0.0
    anchor_lo_ms: float = 0.0  # the anchor instant's low part (module docstring)

    @property
    def beat_ms(self) -> float:
        """Length of one beat in milliseconds at this segment's (starting) tempo."""
        return MS_PER_MINUTE / self.tempo_bpm

    @property
    def ramps(self) -> bool:
        return (
            self.ramp_to_bpm is not None
            and self.ramp_beats > 0.0
            and self.ramp_to_bpm != self.tempo_bpm
        )

    @property
    def end_tempo_bpm(self) -> float:
        """The tempo once the ramp (if any) is over."""
        return self.ramp_to_bpm if self.ramps and self.ramp_to_bpm is not None else self.tempo_bpm

    @property
    def _slope(self) -> float:
        """BPM per beat along the ramp."""
        assert self.ramp_to_bpm is not None
        return (self.ramp_to_bpm - self.tempo_bpm) / self.ramp_beats

    @property
    def ramp_ms(self) -> float:
        """How long the ramp takes (0 without one)."""
        if not self.ramps:
            return 0.0
        assert self.ramp_to_bpm is not None
        # log1p of the relative change: a ramp to a tempo a hair away loses no precision
        change = (self.ramp_to_bpm - self.tempo_bpm) / self.tempo_bpm
        return MS_PER_MINUTE / self._slope * math.log1p(change)

    def tempo_at_beat(self, beat: float) -> float:
        """The tempo at ``beat`` (the count-in's before the anchor)."""
        if not self.ramps:
            return self.tempo_bpm
        done = min(max(0.0, beat - self.beat), self.ramp_beats)
        return self.tempo_bpm + self._slope * done

    def tempo_at(self, t_ms: float) -> float:
        """The tempo in force at ``t_ms`` (while paused: the tempo it will resume at)."""
        if not self.playing:
            return self.tempo_bpm
        return self.tempo_at_beat(self.beat_at(t_ms))

    def position_at(self, t_ms: float) -> float:
        if not self.playing:
            return self.position_ms
        return self.position_ms + max(0.0, t_ms - self.anchor_ms)

    def beat_at(self, t_ms: float) -> float:
        if not self.playing:
            return self.beat
        # (t - anchor_ms is exact for two close instants, Sterbenz: the low part is not lost)
        elapsed = t_ms - self.anchor_ms - self.anchor_lo_ms
        if elapsed <= 0.0 or not self.ramps:
            return self.beat + elapsed / self.beat_ms
        ramp_ms = self.ramp_ms
        if elapsed < ramp_ms:
            k = self._slope
            return self.beat + self.tempo_bpm / k * math.expm1(k * elapsed / MS_PER_MINUTE)
        return (
            self.beat + self.ramp_beats + (elapsed - ramp_ms) * self.end_tempo_bpm / MS_PER_MINUTE
        )

    def time_of_beat(self, beat: float) -> float:
        """Server time at which this (playing) segment reaches ``beat``."""
        return self.anchor_ms + self._after_anchor(beat)

    def _after_anchor(self, beat: float) -> float:
        """Milliseconds from ``anchor_ms`` to ``beat`` (the low part included): small next
        to an epoch instant, so the time of a beat is rounded once, when added to it."""
        done = beat - self.beat
        if done <= 0.0 or not self.ramps:
            return self.anchor_lo_ms + done * self.beat_ms
        if done < self.ramp_beats:
            k = self._slope
            return self.anchor_lo_ms + MS_PER_MINUTE / k * math.log1p(k * done / self.tempo_bpm)
        return (
            self.anchor_lo_ms
            + self.ramp_ms
            + (done - self.ramp_beats) * MS_PER_MINUTE / self.end_tempo_bpm
        )

    def residual(self, beat: float, t_ms: float) -> float:
        """The exact instant of ``beat`` minus ``t_ms`` (a double close to it, usually that
        instant rounded): the low part of an anchor placed on ``beat`` at ``t_ms``."""
        instant, rounding = _two_sum(self.anchor_ms, self._after_anchor(beat))
        return (instant - t_ms) + rounding  # (the difference of two close doubles is exact)

    def ramp_from(self, beat: float) -> dict[str, Any]:
        """The tempo and what is left of the ramp for a segment re-anchored at ``beat``
        (a meter change renumbers beats but keeps their length: the beats left stay)."""
        if not self.ramps:
            return {"tempo_bpm": self.tempo_bpm, "ramp_to_bpm": None, "ramp_beats": 0.0}
        left = self.ramp_beats - max(0.0, beat - self.beat)
        if left <= _SNAP:
            return {"tempo_bpm": self.end_tempo_bpm, "ramp_to_bpm": None, "ramp_beats": 0.0}
        return {
            "tempo_bpm": self.tempo_at_beat(beat),
            "ramp_to_bpm": self.ramp_to_bpm,
            "ramp_beats": left,
        }

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "startServerTime": self.start_ms,
            "anchorServerTime": self.anchor_ms,
            "anchorPositionMs": self.position_ms,
            "anchorBeat": self.beat,
            "tempoBpm": self.tempo_bpm,
            "isPlaying": self.playing,
            "beatsPerBar": self.beats_per_bar,
            "beatUnit": self.beat_unit,
        }
        if self.anchor_lo_ms:  # (omitted when 0: the original wire form)
            wire["anchorServerTimeLo"] = self.anchor_lo_ms
        if self.ramps:  # (a segment without a ramp keeps the original wire form)
            wire["rampToBpm"] = self.ramp_to_bpm
            wire["rampBeats"] = self.ramp_beats
        return wire

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Segment:
        ramp_to = data.get("rampToBpm")
        return cls(
            start_ms=float(data["startServerTime"]),
            anchor_ms=float(data["anchorServerTime"]),
            position_ms=float(data["anchorPositionMs"]),
            beat=float(data["anchorBeat"]),
            tempo_bpm=float(data["tempoBpm"]),
            playing=bool(data["isPlaying"]),
            beats_per_bar=int(data["beatsPerBar"]),
            beat_unit=int(data["beatUnit"]),
            ramp_to_bpm=None if ramp_to is None else float(ramp_to),
            ramp_beats=float(data.get("rampBeats", 0.0)) if ramp_to is not None else 0.0,
            anchor_lo_ms=float(data.get("anchorServerTimeLo", 0.0)),
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


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """``a + b`` rounded, and the rounding error: exactly ``a + b`` as two doubles (Knuth)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


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


def _residual(segment: Segment, beat: float, t_ms: float) -> float:
    """The low part of an anchor placed at ``t_ms`` on ``beat`` of ``segment``.

    On a whole beat of a playing segment (the snap's reading: a change on a beat or bar
    boundary) it is that beat's exact instant minus ``t_ms``, if that is a rounding (at most
    an ulp of ``t_ms``): the change is on the beat, and the next segment goes on from its exact
    instant. An instant further off is taken as given, as is any instant between beats (its
    beat, not whole, carries the rest: a beat count's ulp is worth picoseconds).
    """
    if not segment.playing or not beat.is_integer():
        return 0.0
    lo = segment.residual(beat, t_ms)
    return lo if abs(lo) <= math.ulp(t_ms) else 0.0


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

    def tempo_at(self, t_ms: float) -> float:
        """The tempo in force at ``t_ms`` (inside a ramp: the ramp's tempo then)."""
        return self.segment_at(t_ms).tempo_at(t_ms)

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

    def until(self, t_ms: float) -> Timeline:
        """Without the changes pending after ``t_ms`` (the conductor re-plans a song's
        form after a leader's change; nothing that starts by ``t_ms`` is touched)."""
        kept = [s for s in self._segments if s.start_ms <= t_ms]
        if len(kept) == len(self._segments):
            return self
        return Timeline(kept or self._segments[:1])

    def before(self, t_ms: float) -> Timeline:
        """Without the changes from ``t_ms`` on (a segue taken back: the next song's start
        and what followed it go; every change before it stays, a pending play too)."""
        kept = [s for s in self._segments if s.start_ms < t_ms]
        if len(kept) == len(self._segments):
            return self
        return Timeline(kept or self._segments[:1])

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

    def _state_at(self, t_ms: float) -> tuple[Segment, float, float, float]:
        """Segment, position and beat at ``t_ms``, and the low part of an anchor placed
        there (0 but on a whole beat of a playing segment: see ``_residual``)."""
        segment = self.segment_at(t_ms)
        if segment.playing and t_ms <= segment.anchor_ms:
            # Inside a count-in the song has not started: the state is the anchor's. At the
            # anchor's instant it is the anchor, low part and all (a change placed where
            # another anchors lands on its exact instant, on a whole beat or not).
            lo = segment.anchor_lo_ms if t_ms == segment.anchor_ms else 0.0
            return segment, segment.position_ms, segment.beat, lo
        beat = _snap(segment.beat_at(t_ms), t_ms / segment.beat_ms)
        return segment, segment.position_at(t_ms), beat, _residual(segment, beat, t_ms)

    def _reanchored(
        self,
        at_ms: float,
        segment: Segment,
        position_ms: float,
        beat: float,
        anchor_ms: float | None = None,
        anchor_lo_ms: float = 0.0,
        **changes: Any,
    ) -> Timeline:
        """Append ``segment`` re-anchored at ``at_ms`` (or ``anchor_ms``, low part
        ``anchor_lo_ms``) with ``changes``.

        A ramp under way goes on from ``beat`` unless ``changes`` say otherwise.
        """
        if "tempo_bpm" not in changes:
            changes = {**segment.ramp_from(beat), **changes}
        return self._append(
            replace(
                segment,
                start_ms=at_ms,
                anchor_ms=at_ms if anchor_ms is None else anchor_ms,
                anchor_lo_ms=anchor_lo_ms,
                position_ms=position_ms,
                beat=beat,
                **changes,
            )
        )

    def with_tempo(self, at_ms: float, tempo_bpm: float) -> Timeline:
        """Change tempo at ``at_ms``, keeping position and beat phase continuous (a ramp
        under way ends there)."""
        segment, position, beat, lo = self._state_at(at_ms)
        anchor = None
        if segment.playing and at_ms < segment.anchor_ms:
            # A tempo change during a count-in keeps the downbeat's beat number but moves the
            # downbeat so that the remaining count-in beats run at the new tempo.
            left_ms = (segment.anchor_ms - at_ms) + segment.anchor_lo_ms
            remaining_beats = left_ms / segment.beat_ms
            anchor, lo = _two_sum(at_ms, remaining_beats * MS_PER_MINUTE / tempo_bpm)
        return self._reanchored(
            at_ms,
            segment,
            position,
            beat,
            anchor,
            lo,
            tempo_bpm=tempo_bpm,
            ramp_to_bpm=None,
            ramp_beats=0.0,
        )

    def with_ramp(self, at_ms: float, tempo_bpm: float, beats: float) -> Timeline:
        """From ``at_ms`` (a count-in's downbeat, if one runs then), move the tempo to
        ``tempo_bpm`` linearly in beats over ``beats`` beats, keeping position and beat phase
        continuous; the tempo then holds. Paused, the tempo is simply set."""
        segment, position, beat, lo = self._state_at(at_ms)
        if not segment.playing or beats <= 0.0:
            return self.with_tempo(at_ms, tempo_bpm)
        in_count_in = at_ms < segment.anchor_ms
        start = segment.tempo_at_beat(beat)
        return self._reanchored(
            at_ms,
            segment,
            position,
            beat,
            segment.anchor_ms if in_count_in else None,
            segment.anchor_lo_ms if in_count_in else lo,
            tempo_bpm=start,
            ramp_to_bpm=tempo_bpm,
            ramp_beats=float(beats),
        )

    def _frozen(self, segment: Segment, beat: float) -> dict[str, Any]:
        """The tempo reached at ``beat``, held (a pause or a seek ends a ramp)."""
        return {"tempo_bpm": segment.tempo_at_beat(beat), "ramp_to_bpm": None, "ramp_beats": 0.0}

    def played(self, at_ms: float, count_in_beats: int = 0) -> Timeline:
        """Start playing at ``at_ms``, after ``count_in_beats`` beats of count-in."""
        segment, position, beat, _ = self._state_at(at_ms)
        if segment.playing:
            return self
        anchor, lo = _two_sum(at_ms, count_in_beats * segment.beat_ms)
        return self._reanchored(at_ms, segment, position, beat, anchor, lo, playing=True)

    def paused(self, at_ms: float) -> Timeline:
        """Stop at ``at_ms`` where the transport is then (a count-in is abandoned)."""
        segment, position, beat, _ = self._state_at(at_ms)
        if not segment.playing:
            return self
        return self._reanchored(
            at_ms, segment, position, beat, playing=False, **self._frozen(segment, beat)
        )

    def sought(self, at_ms: float, position_ms: float, beat: float | None = None) -> Timeline:
        """Jump to ``position_ms`` at ``at_ms``; playing or paused as before.

        The beat at the new position is ``beat`` when given (a song with a map knows the
        bar a position is in), else derived at the current tempo (``position * bpm``), the
        natural reading when a song keeps one tempo; a ramp under way ends at the tempo it
        had reached.
        """
        segment, _, old_beat, lo = self._state_at(at_ms)
        frozen = self._frozen(segment, old_beat)
        if beat is None:
            beat = _snap(position_ms * frozen["tempo_bpm"] / MS_PER_MINUTE, 0.0)
        # (on a beat, the jump is at that beat's exact instant: the next grid goes on from it)
        return self._reanchored(at_ms, segment, position_ms, beat, None, lo, **frozen)

    def with_meter(self, at_ms: float, beats_per_bar: int, beat_unit: int) -> Timeline:
        """Change meter at ``at_ms``; bars stay continuous (beats are renumbered)."""
        segment, position, beat, lo = self._state_at(at_ms)
        scale = beats_per_bar / segment.beats_per_bar
        new_beat = _snap(beat * scale, 0.0)
        in_count_in = segment.playing and at_ms < segment.anchor_ms
        return self._reanchored(
            at_ms,
            segment,
            position,
            new_beat,
            segment.anchor_ms if in_count_in else None,
            segment.anchor_lo_ms if in_count_in else lo,
            beats_per_bar=beats_per_bar,
            beat_unit=beat_unit,
            **segment.ramp_from(beat),
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
