"""The conductor: a song's form and the leader's calls, placed on the timeline ahead of time.

A song with a map (``core/song.SongMap``: sections with their own tempo, meter and ramps) is
played by appending, a little before each section boundary, the changes that section brings:
its meter, its tempo or its ramp, exactly at the boundary's downbeat. The leader's calls land
on a downbeat the same way:

* **jump** to a section, at the next bar or at the end of the current section;
* **vamp**: repeat the current section until released (at its end the song goes back to its
  first bar, again and again);
* **end** after this bar or this section (the transport stops on that downbeat).

Nothing here keeps time: ``plan`` is a pure function of the timeline, the map, the calls and
"now", returning the timeline with every boundary that falls within the horizon placed on
it. It is idempotent (planning again changes nothing), so any node may run it, any number of
times; the server runs it a few times a second for each playing session with a map, and a
boundary is placed about two seconds before it happens, so every phone hears of it in time
(a change the phones hear early is kept until its instant, as every scheduled change is).

Bars: the timeline renumbers beats at a meter change so that bars stay continuous
(``core/timeline.py``), so the timeline's bar (0-based ``floor(beat / beatsPerBar)``) is the
song's bar minus one, in every meter. A live tempo change from the leader holds until the next
section that has its own tempo (every section has one: the map's rule wins at its start).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from .song import SongMap
from .timeline import Timeline

#: Boundaries this far ahead are placed on the timeline (ms).
HORIZON_MS: Final = 2_000.0
#: How often the server plans (s): a boundary is placed 1.75-2 s before it happens.
STEP_S: Final = 0.25
#: At most this many boundaries are placed in one plan (very short sections at a fast tempo).
MAX_STEPS: Final = 8
_SNAP: Final = 1e-6

CallKind = Literal["jump", "end"]
CallAt = Literal["bar", "section"]


@dataclass(frozen=True, slots=True)
class Call:
    """A leader's call waiting for its downbeat.

    Attributes:
        kind: ``"jump"`` (to ``section``) or ``"end"`` (stop there).
        bar: the song's bar (1-based) on whose downbeat it happens.
        section: the section a jump goes to (its index in the map).
    """

    kind: CallKind
    bar: int
    section: int | None = None

    def to_wire(self, song_map: SongMap | None = None) -> dict[str, Any]:
        wire: dict[str, Any] = {"kind": self.kind, "bar": self.bar}
        if self.section is not None:
            wire["section"] = self.section
            if song_map is not None:
                wire["sectionName"] = song_map.sections[self.section].name
        return wire

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Call:
        kind = data["kind"]
        if kind not in ("jump", "end"):
            raise ValueError(f"not a call: {kind!r}")
        section = data.get("section")
        return cls(kind, int(data["bar"]), None if section is None else int(section))


@dataclass(frozen=True, slots=True)
class Show:
    """What the leader asked of the song's form: a section to vamp on, a call waiting.

    A call is *placed* (on the timeline, ``placed``, with its instant ``placed_at``) once
    its downbeat is within the horizon; until that instant the phones still show it as
    coming, then it is gone.
    """

    vamp: int | None = None
    call: Call | None = None
    placed: Call | None = None
    placed_at: float | None = None
    #: A jump placed out of a vamp ends it at its instant (the phones show the vamp until then).
    vamp_ends_at: float | None = None

    @property
    def idle(self) -> bool:
        return self.vamp is None and self.call is None

    @property
    def coming(self) -> Call | None:
        """The call the band waits for: waiting or placed."""
        return self.call if self.call is not None else self.placed

    def landed(self, now_ms: float) -> Show:
        """Without a placed call whose instant has come (nor the vamp it ended)."""
        show = self
        if show.placed_at is not None and show.placed_at <= now_ms:
            show = replace(show, placed=None, placed_at=None)
        if show.vamp_ends_at is not None and show.vamp_ends_at <= now_ms:
            show = replace(show, vamp=None, vamp_ends_at=None)
        return show


def song_bar_at(timeline: Timeline, t_ms: float) -> int:
    """The song's bar (1-based) the timeline is in at ``t_ms`` (during a count-in: the bar
    the count-in leads to)."""
    segment = timeline.segment_at(t_ms)
    at = max(t_ms, segment.anchor_ms) if segment.playing else t_ms
    beat = segment.beat_at(at)
    return math.floor(beat / segment.beats_per_bar + _SNAP) + 1


def call_bar(timeline: Timeline, song_map: SongMap, not_before_ms: float, at: CallAt) -> int:
    """The song's bar a call asked for at ``not_before_ms`` lands on: the next downbeat
    (``"bar"``) or the start of the next section (``"section"``: the end of this one), never
    before a change already pending. Stopped: the bar the song is at."""
    t = max(not_before_ms, timeline.latest.start_ms)
    segment = timeline.segment_at(t)
    if not segment.playing:
        return song_bar_at(timeline, t)
    beat = segment.beat_at(max(t, segment.anchor_ms))
    next_bar = math.ceil(beat / segment.beats_per_bar - _SNAP) + 1
    if at == "bar":
        return next_bar
    index = song_map.section_of_bar(next_bar)
    if song_map.section_start_bar(index) == next_bar or next_bar > song_map.total_bars:
        return next_bar
    if index + 1 < len(song_map.sections):
        return song_map.section_start_bar(index + 1)
    return song_map.total_bars + 1  # the end of the song


def begin(timeline: Timeline, song_map: SongMap, at_ms: float) -> Timeline:
    """Make the transport at ``at_ms`` (a play's start, a seek) play as the map says there:
    the section's meter and tempo, or what is left of its ramp. During a count-in the
    count-in takes the section's tempo too."""
    segment = timeline.segment_at(at_ms)
    t = max(at_ms, segment.anchor_ms) if segment.playing else at_ms
    index = song_map.section_of_bar(max(song_bar_at(timeline, t), 1))
    return _play_section(timeline, song_map, index, at_ms, t)


def seek(timeline: Timeline, song_map: SongMap, at_ms: float, position_ms: float) -> Timeline:
    """Go to ``position_ms`` of the song at ``at_ms``, as the map plays it: the bar and beat
    there (not the current tempo's reading of the milliseconds), the section's meter, and its
    tempo or what is left of its ramp."""
    where = song_map.position_at_ms(position_ms)
    section = song_map.sections[where.section]
    if (timeline.segment_at(at_ms).beats_per_bar, timeline.segment_at(at_ms).beat_unit) != (
        section.beats_per_bar,
        section.beat_unit,
    ):
        timeline = timeline.with_meter(at_ms, section.beats_per_bar, section.beat_unit)
    beat_in_section = where.beat - song_map.section_start_beat(where.section)
    beat = (song_map.section_start_bar(where.section) - 1) * section.beats_per_bar
    timeline = timeline.sought(at_ms, position_ms, beat=beat + beat_in_section)
    return _play_section(timeline, song_map, where.section, at_ms, at_ms)


def _play_section(
    timeline: Timeline, song_map: SongMap, index: int, at_ms: float, t: float
) -> Timeline:
    """Section ``index``'s meter, and its tempo or what is left of its ramp at the beat the
    transport is on at ``t`` (its first downbeat, at a boundary), from ``at_ms`` on."""
    section = song_map.sections[index]
    segment = timeline.segment_at(at_ms)
    if (segment.beats_per_bar, segment.beat_unit) != (section.beats_per_bar, section.beat_unit):
        timeline = timeline.with_meter(at_ms, section.beats_per_bar, section.beat_unit)
        segment = timeline.segment_at(at_ms)
    start_beat = (song_map.section_start_bar(index) - 1) * section.beats_per_bar
    local = min(max(segment.beat_at(t) - start_beat, 0.0), float(section.beats))
    ramp = section.ramp_to_bpm
    if ramp is not None and ramp != section.tempo_bpm and local < section.beats - _SNAP:
        timeline = timeline.with_tempo(at_ms, section.tempo_at_beat(local))
        if timeline.segment_at(at_ms).playing:
            return timeline.with_ramp(at_ms, ramp, section.beats - local)
        return timeline
    tempo = section.tempo_at_beat(local)
    if segment.ramps or segment.tempo_at(t) != tempo:
        return timeline.with_tempo(at_ms, tempo)
    return timeline


def plan(
    timeline: Timeline,
    song_map: SongMap,
    show: Show,
    now_ms: float,
    horizon_ms: float = HORIZON_MS,
) -> tuple[Timeline, Show]:
    """Place every section boundary and call due within ``horizon_ms`` of ``now_ms``.

    Returns the new timeline and what is left of the show (a call that has been placed is
    done). Unchanged objects come back when there is nothing to place.
    """
    show = show.landed(now_ms)
    cursor = max(now_ms, timeline.latest.start_ms)
    for _ in range(MAX_STEPS):
        segment = timeline.segment_at(cursor)
        if not segment.playing:
            break
        bar = song_bar_at(timeline, cursor)
        index = song_map.section_of_bar(max(bar, 1))
        section_end_bar = (
            song_map.section_start_bar(index + 1)
            if index + 1 < len(song_map.sections)
            else song_map.total_bars + 1
        )
        if bar >= section_end_bar:  # past the end of the song: the last section goes on
            section_end_bar = bar + 1 if show.call is None else max(show.call.bar, bar + 1)
        event_bar = section_end_bar
        call = show.call
        if call is not None and bar < call.bar <= event_bar:
            event_bar = call.bar
        elif call is not None and call.bar <= bar:
            event_bar = bar + 1  # a call whose bar went by (a seek): at the next downbeat
        at = segment.time_of_beat((event_bar - 1) * segment.beats_per_bar)
        if at > now_ms + horizon_ms:
            break
        if at < timeline.latest.start_ms:
            # A change the leader made lands after this boundary: it wins; look past it.
            cursor = timeline.latest.start_ms
            if cursor <= at:
                break
            continue
        timeline, show = _at_boundary(timeline, song_map, show, at, event_bar, index, call)
        if not timeline.segment_at(at).playing:
            break
        cursor = at + _SNAP
    return timeline, show


def _at_boundary(
    timeline: Timeline,
    song_map: SongMap,
    show: Show,
    at: float,
    event_bar: int,
    index: int,
    call: Call | None,
) -> tuple[Timeline, Show]:
    """What happens on the downbeat of ``event_bar`` at ``at``."""
    if call is not None and call.bar <= event_bar:
        if call.kind == "end":
            return timeline.paused(at), Show(placed=call, placed_at=at)
        assert call.section is not None
        ends = at if show.vamp is not None else None
        placed = replace(show, call=None, placed=call, placed_at=at, vamp_ends_at=ends)
        return _go_to(timeline, song_map, call.section, at), placed
    ends_section = index + 1 >= len(song_map.sections) or (
        event_bar == song_map.section_start_bar(index + 1)
    )
    vamping = show.vamp is not None and show.vamp_ends_at is None
    if vamping and ends_section and show.vamp == index:
        return _go_to(timeline, song_map, index, at), show
    if event_bar > song_map.total_bars:
        # the song is over: stop on its last downbeat (a call placed before still shows)
        return timeline.paused(at), Show(placed=show.placed, placed_at=show.placed_at)
    following = song_map.section_of_bar(event_bar)
    if following == index and not ends_section:
        return timeline, show
    return _enter(timeline, song_map, following, at), show


def _go_to(timeline: Timeline, song_map: SongMap, index: int, at: float) -> Timeline:
    """From ``at``, play section ``index`` from its first bar."""
    section = song_map.sections[index]
    bar = song_map.section_start_bar(index)
    timeline = timeline.with_meter(at, section.beats_per_bar, section.beat_unit)
    timeline = timeline.sought(
        at, song_map.section_start_ms(index), beat=float((bar - 1) * section.beats_per_bar)
    )
    return _play_section(timeline, song_map, index, at, at)


def _enter(timeline: Timeline, song_map: SongMap, index: int, at: float) -> Timeline:
    """Section ``index`` begins at ``at`` in its turn: its meter and tempo, if they differ."""
    return _play_section(timeline, song_map, index, at, at)
