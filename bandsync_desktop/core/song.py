"""The song model: sections with their own tempo, meter and ramp, and exact song time.

A song is a list of *sections* played in order (``SongMap``). A section is a whole number of
bars in one meter, at one tempo, or ramping (accelerando, ritardando) from its tempo to
``ramp_to_bpm`` over the whole section. Tempo counts the meter's beats per minute (in 6/8,
eighth notes), as everywhere in BandSync.

A ramp is linear in beats: over a section of ``B`` beats the tempo at beat ``b`` (counted
from the section's start) is ``T(b) = T0 + (T1 - T0) b / B``. The time it takes to reach
``b`` is ``t(b) = ∫0^b 60000 / T(x) dx = 60000 B / (T1 - T0) · ln(T(b) / T0)`` ms, written
here as ``60000 / T0 · log1p(k b) / k`` with ``k = (T1 - T0) / (B T0)`` so that a gentle
ramp loses no precision; the beat at ``t`` is ``expm1(k t T0 / 60000) / k``. A section at a
constant tempo takes ``60000 b / T0`` ms, and the sections' start times are summed exactly
(as rationals) and rounded once, so a constant-tempo song has no error but one rounding.

Beats and bars count from the song's start: beat 0 is bar 1 beat 1, every section starts on
a downbeat (it has whole bars), so a meter change keeps bars continuous. Before the start the
first section's tempo and meter extend backwards (a count-in reads bar 0); past the end the
last section's final tempo and meter go on, so every conversion is defined, monotonic and
continuous for any input. Every lookup is a binary search over cumulative tables: O(log n).

Nothing here does I/O; ``SongMap.to_dict``/``from_dict`` are the protocol's wire form.
"""

from __future__ import annotations

import math
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

from . import validation
from .errors import ErrorCode, ValidationError

MS_PER_MINUTE: Final = 60_000.0
SECTIONS_MAX: Final = 200
SECTION_BARS_MIN: Final = 1
SECTION_BARS_MAX: Final = 999
SECTION_NAME_MAX: Final = 40
#: A position this close (in beats) below a downbeat reads as that downbeat, as in
#: ``core.timeline``: float noise must not show bar 4 beat 4 at the instant bar 5 starts.
_SNAP: Final = 1e-6


def _whole(value: Any, field_name: str, code: ErrorCode) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise ValidationError(f"{field_name} must be a whole number", code)
    return int(value)


def section_name(value: Any) -> str:
    """A section's name: trimmed, 1-40 characters, one line of visible text.

    Control characters are refused, and so are invisible formatting characters (Unicode
    ``Cf``: text-direction overrides, zero-width spaces): a name is shown on every phone's
    strip and in the console, and must read there as it was written.

    Raises:
        ValidationError: ``INVALID_SONG`` when it is not such a string.
    """
    if not isinstance(value, str):
        raise ValidationError("name must be a string", ErrorCode.INVALID_SONG)
    if len(value) > 10 * SECTION_NAME_MAX:  # refused before a huge one is read char by char
        raise ValidationError(
            f"name must be at most {SECTION_NAME_MAX} characters", ErrorCode.INVALID_SONG
        )
    categories = {unicodedata.category(char) for char in value}
    if categories & {"Cc", "Cs", "Zl", "Zp"}:
        raise ValidationError("name must not contain control characters", ErrorCode.INVALID_SONG)
    if "Cf" in categories:
        raise ValidationError(
            "name must not contain invisible formatting or text-direction characters",
            ErrorCode.INVALID_SONG,
        )
    name = value.strip()
    if not name:
        raise ValidationError("name must not be empty", ErrorCode.INVALID_SONG)
    if len(name) > SECTION_NAME_MAX:
        raise ValidationError(
            f"name must be at most {SECTION_NAME_MAX} characters", ErrorCode.INVALID_SONG
        )
    return name


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of a song in one meter: ``bars`` bars at ``tempo_bpm``, or ramping.

    With ``ramp_to_bpm`` set the tempo moves linearly in beats from ``tempo_bpm`` at the
    section's first downbeat to ``ramp_to_bpm`` at its end (the next section's first
    downbeat, which then plays at its own tempo). Every field is checked on construction.

    Attributes:
        name: what the band calls it ("Verse 1", "Chorus"); 1-40 characters.
        bars: whole bars, 1-999.
        tempo_bpm: the tempo at the start, within ``validation.TEMPO_MIN``-``TEMPO_MAX``.
        beats_per_bar: the meter's beats (1-16).
        beat_unit: the meter's note value (2, 4, 8 or 16).
        ramp_to_bpm: the tempo the section ramps to by its end, or ``None`` (constant).

    Raises:
        ValidationError: a field is out of range (code ``INVALID_SONG``, ``INVALID_TEMPO``
            or ``INVALID_METER``).
    """

    name: str
    bars: int
    tempo_bpm: float
    beats_per_bar: int = 4
    beat_unit: int = 4
    ramp_to_bpm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", section_name(self.name))
        bars = _whole(self.bars, "bars", ErrorCode.INVALID_SONG)
        if not SECTION_BARS_MIN <= bars <= SECTION_BARS_MAX:
            raise ValidationError(
                f"bars must be between {SECTION_BARS_MIN} and {SECTION_BARS_MAX}",
                ErrorCode.INVALID_SONG,
            )
        object.__setattr__(self, "bars", bars)
        object.__setattr__(self, "tempo_bpm", validation.tempo(self.tempo_bpm))
        beats, unit = validation.meter(self.beats_per_bar, self.beat_unit)
        object.__setattr__(self, "beats_per_bar", beats)
        object.__setattr__(self, "beat_unit", unit)
        if self.ramp_to_bpm is not None:
            try:
                ramp = validation.tempo(self.ramp_to_bpm)
            except ValidationError as exc:
                raise ValidationError(f"ramp {exc.message}", exc.code) from exc
            object.__setattr__(self, "ramp_to_bpm", ramp)

    @property
    def beats(self) -> int:
        """Beats in the section (bars × beats per bar)."""
        return self.bars * self.beats_per_bar

    @property
    def ramps(self) -> bool:
        """Whether the tempo changes over the section."""
        return self.ramp_to_bpm is not None and self.ramp_to_bpm != self.tempo_bpm

    @property
    def end_tempo_bpm(self) -> float:
        """The tempo at the section's end (its tempo unless it ramps)."""
        return self.ramp_to_bpm if self.ramp_to_bpm is not None else self.tempo_bpm

    @property
    def _k(self) -> float:
        """The ramp's relative slope per beat: ``(T1 - T0) / (B T0)``."""
        return (self.end_tempo_bpm - self.tempo_bpm) / (self.beats * self.tempo_bpm)

    def _length(self) -> Fraction:
        """The section's length in ms: exact for a constant tempo, the rounded closed form
        of the ramp's integral otherwise."""
        if not self.ramps:
            return Fraction(60_000 * self.beats) / Fraction(self.tempo_bpm)
        return Fraction(self.ms_at_beat(float(self.beats)))

    @property
    def length_ms(self) -> float:
        """How long the section plays, in ms."""
        return float(self._length())

    def tempo_at_beat(self, beat: float) -> float:
        """The tempo ``beat`` beats into the section (clamped to the section)."""
        if not self.ramps:
            return self.tempo_bpm
        done = min(max(beat, 0.0), float(self.beats))
        return self.tempo_bpm + (self.end_tempo_bpm - self.tempo_bpm) * done / self.beats

    def ms_at_beat(self, beat: float) -> float:
        """Milliseconds from the section's start to ``beat`` beats into it (0..beats)."""
        if not self.ramps:
            return beat * MS_PER_MINUTE / self.tempo_bpm
        k = self._k
        return MS_PER_MINUTE / self.tempo_bpm * math.log1p(k * beat) / k

    def beat_at_ms(self, ms: float) -> float:
        """Beats from the section's start after ``ms`` milliseconds of it (0..length)."""
        if not self.ramps:
            return ms * self.tempo_bpm / MS_PER_MINUTE
        k = self._k
        return math.expm1(k * ms * self.tempo_bpm / MS_PER_MINUTE) / k

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{name, bars, tempoBpm, beatsPerBar, beatUnit, rampToBpm}``."""
        return {
            "name": self.name,
            "bars": self.bars,
            "tempoBpm": self.tempo_bpm,
            "beatsPerBar": self.beats_per_bar,
            "beatUnit": self.beat_unit,
            "rampToBpm": self.ramp_to_bpm,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Section:
        """A section from its wire form; ``beatsPerBar``/``beatUnit`` default to 4/4.

        Raises:
            ValidationError: a field is missing or out of range.
        """
        item = validation.payload(data)
        return cls(
            name=item.get("name"),  # type: ignore[arg-type]  # checked in __post_init__
            bars=item.get("bars"),  # type: ignore[arg-type]
            tempo_bpm=item.get("tempoBpm"),  # type: ignore[arg-type]
            beats_per_bar=item.get("beatsPerBar", 4),
            beat_unit=item.get("beatUnit", 4),
            ramp_to_bpm=item.get("rampToBpm"),
        )


@dataclass(frozen=True, slots=True)
class SongPosition:
    """Where a song is at one instant.

    Attributes:
        beat: beats from the song's start (beat 0 is bar 1 beat 1; negative before it).
        bar: the song's bar, 1-based (0 and below before the start).
        beat_in_bar: the beat in that bar, 1-based.
        fraction: how far into that beat, 0..1.
        section: the index of the section (0 before the start, the last one past the end).
        section_name: that section's name.
        bar_in_section: the bar within the section, 1-based (past its bars after the end).
        beats_per_bar: the meter's beats in force.
        tempo_bpm: the tempo at this instant (inside a ramp, the ramp's tempo then).
    """

    beat: float
    bar: int
    beat_in_bar: int
    fraction: float
    section: int
    section_name: str
    bar_in_section: int
    beats_per_bar: int
    tempo_bpm: float


@dataclass(frozen=True, slots=True, init=False)
class SongMap:
    """A song's sections in order, with exact conversions between ms, beats and bars.

    Immutable; built once, every conversion a binary search over tables made here.

    Args:
        sections: 1-200 ``Section`` objects, played in this order.

    Raises:
        ValidationError: no sections, more than 200, or a song longer than a day
            (``validation.POSITION_MAX_MS``: no position could reach its end).
    """

    sections: tuple[Section, ...]
    _start_beats: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _start_bars: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _start_ms: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _total_beats: int = field(init=False, repr=False, compare=False)
    _total_bars: int = field(init=False, repr=False, compare=False)
    _length_ms: float = field(init=False, repr=False, compare=False)

    def __init__(self, sections: Iterable[Section]) -> None:
        items = tuple(sections)
        if not items:
            raise ValidationError("a song has at least one section", ErrorCode.INVALID_SONG)
        if len(items) > SECTIONS_MAX:
            raise ValidationError(
                f"a song has at most {SECTIONS_MAX} sections, not {len(items)}",
                ErrorCode.INVALID_SONG,
            )
        if not all(isinstance(item, Section) for item in items):
            raise ValidationError("a song's sections must be sections", ErrorCode.INVALID_SONG)
        start_beats, start_bars, start_ms = [], [], []
        beats = bars = 0
        exact = Fraction(0)
        for section in items:
            start_beats.append(beats)
            start_bars.append(bars)
            # Summed as rationals and rounded once: no error accumulates over sections.
            start_ms.append(float(exact))
            beats += section.beats
            bars += section.bars
            exact += section._length()
        length = float(exact)
        if length > validation.POSITION_MAX_MS:
            raise ValidationError(
                "the song is longer than a day; no position could reach its end",
                ErrorCode.INVALID_SONG,
            )
        object.__setattr__(self, "sections", items)
        object.__setattr__(self, "_start_beats", tuple(start_beats))
        object.__setattr__(self, "_start_bars", tuple(start_bars))
        object.__setattr__(self, "_start_ms", tuple(start_ms))
        object.__setattr__(self, "_total_beats", beats)
        object.__setattr__(self, "_total_bars", bars)
        object.__setattr__(self, "_length_ms", length)

    # -- totals -------------------------------------------------------------------------

    @property
    def total_bars(self) -> int:
        return self._total_bars

    @property
    def total_beats(self) -> int:
        return self._total_beats

    @property
    def length_ms(self) -> float:
        """The song's length: the sum of its sections' lengths, in ms."""
        return self._length_ms

    def section_start_ms(self, index: int) -> float:
        """When section ``index`` starts, in ms from the song's start."""
        return self._start_ms[index]

    def section_start_beat(self, index: int) -> int:
        """The beat on which section ``index`` starts (its first downbeat)."""
        return self._start_beats[index]

    def section_start_bar(self, index: int) -> int:
        """The song's bar (1-based) on which section ``index`` starts."""
        return self._start_bars[index] + 1

    # -- ms <-> beat ----------------------------------------------------------------------

    def beat_at_ms(self, ms: float) -> float:
        """The beat (fractional) ``ms`` milliseconds into the song."""
        last = len(self.sections) - 1
        index = min(max(bisect_right(self._start_ms, ms) - 1, 0), last)
        section = self.sections[index]
        if ms < 0.0:
            return ms * section.tempo_bpm / MS_PER_MINUTE
        if index == last and ms >= self._length_ms:
            return self._total_beats + (ms - self._length_ms) * section.end_tempo_bpm / (
                MS_PER_MINUTE
            )
        local = section.beat_at_ms(ms - self._start_ms[index])
        # clamped to the section: float noise must not step past the next section's start
        return self._start_beats[index] + min(max(local, 0.0), float(section.beats))

    def ms_at_beat(self, beat: float) -> float:
        """Milliseconds from the song's start to ``beat`` (fractional)."""
        last = len(self.sections) - 1
        index = min(max(bisect_right(self._start_beats, beat) - 1, 0), last)
        section = self.sections[index]
        if beat < 0.0:
            return beat * MS_PER_MINUTE / section.tempo_bpm
        if index == last and beat >= self._total_beats:
            return self._length_ms + (beat - self._total_beats) * MS_PER_MINUTE / (
                section.end_tempo_bpm
            )
        start = self._start_ms[index]
        end = self._start_ms[index + 1] if index < last else self._length_ms
        local = section.ms_at_beat(beat - self._start_beats[index])
        return min(max(start + local, start), end)

    # -- beats <-> bars and sections ------------------------------------------------------

    def section_at_beat(self, beat: float) -> int:
        """The index of the section playing at ``beat`` (a downbeat starts its section)."""
        index = bisect_right(self._start_beats, beat + _SNAP) - 1
        return min(max(index, 0), len(self.sections) - 1)

    def section_at_ms(self, ms: float) -> int:
        """The index of the section playing ``ms`` into the song."""
        return self.section_at_beat(self.beat_at_ms(ms))

    def tempo_at_beat(self, beat: float) -> float:
        """The tempo at ``beat``: a section's own, or its ramp's at that beat."""
        last = len(self.sections) - 1
        index = min(max(bisect_right(self._start_beats, beat) - 1, 0), last)
        return self.sections[index].tempo_at_beat(beat - self._start_beats[index])

    def tempo_at_ms(self, ms: float) -> float:
        return self.tempo_at_beat(self.beat_at_ms(ms))

    def position_at_beat(self, beat: float) -> SongPosition:
        """Bar, beat in bar, section and bar in section at ``beat``."""
        index = self.section_at_beat(beat)
        section = self.sections[index]
        local = beat - self._start_beats[index]
        whole = math.floor(local + _SNAP)
        bar_in_section, in_bar = divmod(whole, section.beats_per_bar)
        return SongPosition(
            beat=beat,
            bar=self._start_bars[index] + bar_in_section + 1,
            beat_in_bar=in_bar + 1,
            fraction=min(max(0.0, local - whole), 1.0),
            section=index,
            section_name=section.name,
            bar_in_section=bar_in_section + 1,
            beats_per_bar=section.beats_per_bar,
            tempo_bpm=self.tempo_at_beat(beat),
        )

    def position_at_ms(self, ms: float) -> SongPosition:
        """Where the song is ``ms`` milliseconds after its start."""
        return self.position_at_beat(self.beat_at_ms(ms))

    def bar_position_at_beat(self, beat: float) -> float:
        """The 0-based fractional bar at ``beat`` (bar 1 beat 1 is 0.0; the page's
        ``chartmap.js`` coordinate for which chart line plays)."""
        index = self.section_at_beat(beat)
        local = beat - self._start_beats[index]
        return self._start_bars[index] + local / self.sections[index].beats_per_bar

    def section_of_bar(self, bar: int) -> int:
        """The index of the section holding the song's bar ``bar`` (1-based)."""
        index = bisect_right(self._start_bars, bar - 1) - 1
        return min(max(index, 0), len(self.sections) - 1)

    def beat_of_bar(self, bar: int) -> int:
        """The beat on which the song's bar ``bar`` (1-based) starts."""
        index = self.section_of_bar(bar)
        offset = bar - 1 - self._start_bars[index]
        return self._start_beats[index] + offset * self.sections[index].beats_per_bar

    def ms_of_bar(self, bar: int) -> float:
        """When the song's bar ``bar`` (1-based) starts, in ms."""
        return self.ms_at_beat(float(self.beat_of_bar(bar)))

    # -- wire form ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{sections: [Section.to_dict(), ...]}``."""
        return {"sections": [section.to_dict() for section in self.sections]}

    @classmethod
    def from_dict(cls, data: Any) -> SongMap:
        """A song map from its wire form, every field checked.

        Raises:
            ValidationError: naming the section (1-based) whose field is wrong.
        """
        item = validation.payload(data)
        raw = item.get("sections")
        if not isinstance(raw, list):
            raise ValidationError("sections must be a list", ErrorCode.INVALID_SONG)
        if len(raw) > SECTIONS_MAX:  # refused before a huge list is read
            raise ValidationError(
                f"a song has at most {SECTIONS_MAX} sections, not {len(raw)}",
                ErrorCode.INVALID_SONG,
            )
        sections = []
        for number, entry in enumerate(raw, start=1):
            try:
                sections.append(Section.from_dict(entry))
            except ValidationError as exc:
                raise ValidationError(f"section {number}: {exc.message}", exc.code) from exc
        return cls(sections)

    def __repr__(self) -> str:
        return f"SongMap({len(self.sections)} sections, {self._total_bars} bars)"


__all__ = [
    "SECTIONS_MAX",
    "SECTION_BARS_MAX",
    "SECTION_BARS_MIN",
    "SECTION_NAME_MAX",
    "Section",
    "SongMap",
    "SongPosition",
    "section_name",
]
