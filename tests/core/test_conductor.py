"""The conductor: a song's sections, meters and ramps, and the leader's calls, on the bar."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.conductor import Call, Show, begin, call_bar, plan, song_bar_at
from bandsync_desktop.core.song import Section, SongMap
from bandsync_desktop.core.timeline import Timeline

T0 = 1_764_000_000_000.0
TICK = 100.0  # the server plans a few times a second

SONG = SongMap(
    [
        Section("Intro", 2, 120.0),
        Section("Verse", 4, 120.0),
        Section("Bridge", 2, 140.0, 7, 8),
        Section("Rit", 2, 120.0, 4, 4, ramp_to_bpm=80.0),
        Section("Outro", 1, 80.0),
    ]
)


def run(
    song: SongMap,
    show: Show | None = None,
    until_ms: float = 120_000.0,
    calls: dict[float, Show] | None = None,
) -> tuple[Timeline, list[tuple[float, float]], Show]:
    """Play from the top and plan every TICK ms; returns the timeline with every segment
    ever placed (unpruned), and (instant, time placed) of each."""
    first = song.sections[0]
    timeline = Timeline.stopped(T0, first.tempo_bpm, first.beats_per_bar, first.beat_unit)
    timeline = begin(timeline.played(T0), song, T0)  # as the session's play does
    placed: list[tuple[float, float]] = []
    now = T0
    calls = dict(calls or {})
    show = show or Show()
    while now < T0 + until_ms:
        for when in [w for w in calls if w <= now - T0]:
            show = calls.pop(when)
        before = set(timeline.segments)
        timeline, show = plan(timeline, song, show, now)
        placed += [(s.start_ms, now) for s in timeline.segments if s not in before]
        if not timeline.latest.playing and timeline.latest.start_ms <= now:
            break
        now += TICK
    return timeline, placed, show


def bar_time(timeline: Timeline, bar: int) -> float:
    """When the timeline's downbeat of song bar ``bar`` sounds (searching its segments)."""
    for segment in reversed(timeline.segments):
        if not segment.playing:
            continue
        t = segment.time_of_beat((bar - 1) * segment.beats_per_bar)
        if t >= segment.start_ms - 1e-3 and song_bar_at(timeline, t + 1e-3) == bar:
            return t
    raise AssertionError(f"bar {bar} never sounds")


def test_the_timeline_follows_the_song_map_bar_for_bar() -> None:
    timeline, placed, _ = run(SONG)
    for bar in range(1, SONG.total_bars + 1):
        expected = T0 + SONG.ms_of_bar(bar)
        assert bar_time(timeline, bar) == pytest.approx(expected, abs=1e-3), bar
    # The meter and tempo of each section are in force inside it.
    bridge = T0 + SONG.section_start_ms(2) + 10
    assert timeline.segment_at(bridge).beats_per_bar == 7
    assert timeline.tempo_at(bridge) == 140.0
    rit = SONG.section_start_ms(3)
    middle = T0 + (rit + SONG.section_start_ms(4)) / 2
    assert 80.0 < timeline.tempo_at(middle) < 120.0
    # The song stops on the downbeat after its last bar.
    end = T0 + SONG.length_ms
    assert not timeline.is_playing_at(end + 1)
    assert timeline.is_playing_at(end - 1)
    # Every change was placed well before it happened (the phones hear it in time).
    assert placed and all(instant - at >= 1_500.0 for instant, at in placed)


def test_planning_again_changes_nothing() -> None:
    timeline = Timeline.stopped(T0, 120.0).played(T0)
    once, show = plan(timeline, SONG, Show(), T0 + 11_000)
    twice, again = plan(once, SONG, show, T0 + 11_000)
    assert once != timeline and twice is once and again == show


def test_vamp_repeats_the_section_until_released() -> None:
    verse_start = SONG.section_start_bar(1)
    # Vamp asked during the verse; released after two more times round.
    verse_ms = SONG.section_start_ms(2) - SONG.section_start_ms(1)
    asked = SONG.section_start_ms(1) + 1_000
    released = SONG.section_start_ms(1) + 2 * verse_ms + 1_000
    timeline, _, _ = run(SONG, calls={asked: Show(vamp=1), released: Show()})
    starts = [
        s.start_ms - T0
        for s in timeline.segments
        if s.playing and s.beat == (verse_start - 1) * 4 and s.start_ms > T0
    ]
    assert len(starts) == 2  # went back to the verse's first bar twice
    assert starts[0] == pytest.approx(SONG.section_start_ms(2), abs=1e-3)
    assert starts[1] - starts[0] == pytest.approx(verse_ms, abs=1e-3)
    # Then on to the bridge, three verses later than the map alone.
    after = T0 + SONG.section_start_ms(2) + 2 * verse_ms + 10
    assert song_bar_at(timeline, after) == SONG.section_start_bar(2)
    assert timeline.segment_at(after).beats_per_bar == 7


def test_a_jump_lands_on_the_next_downbeat_in_the_target_section() -> None:
    timeline = Timeline.stopped(T0, 120.0).played(T0)
    asked = T0 + 2_900.0  # inside bar 2 (bars of 2 s at 120 in 4/4)
    bar = call_bar(timeline, SONG, asked, "bar")
    assert bar == 3
    show = Show(call=Call("jump", bar, 2))
    timeline, show = plan(timeline, SONG, show, asked)
    at = T0 + 4_000.0
    assert show.call is None
    assert song_bar_at(timeline, at) == SONG.section_start_bar(2)
    segment = timeline.segment_at(at)
    assert segment.start_ms == pytest.approx(at)
    assert (segment.beats_per_bar, segment.beat_unit, segment.tempo_bpm) == (7, 8, 140.0)
    assert timeline.position_at(at) == pytest.approx(SONG.section_start_ms(2))
    # Before the downbeat the intro plays on untouched.
    assert song_bar_at(timeline, at - 1) == 2


def test_end_after_this_section_stops_on_its_last_downbeat() -> None:
    timeline = Timeline.stopped(T0, 120.0).played(T0)
    asked = T0 + 5_000.0  # in the verse (bars 3-6)
    bar = call_bar(timeline, SONG, asked, "section")
    assert bar == SONG.section_start_bar(2)
    timeline, show = plan(timeline, SONG, Show(call=Call("end", bar)), asked, horizon_ms=1e9)
    stop = T0 + SONG.section_start_ms(2)
    assert show.idle
    assert timeline.is_playing_at(stop - 1) and not timeline.is_playing_at(stop)
    assert timeline.position_at(stop + 5_000) == pytest.approx(SONG.section_start_ms(2))


def test_a_call_during_the_count_in_lands_on_the_first_downbeat() -> None:
    timeline = Timeline.stopped(T0, 120.0).played(T0, count_in_beats=4)
    assert call_bar(timeline, SONG, T0 + 500, "bar") == 1
    assert call_bar(timeline, SONG, T0 + 500, "section") == 1


def test_a_leaders_live_tempo_change_holds_until_the_next_section() -> None:
    timeline = Timeline.stopped(T0, 120.0).played(T0)
    change = T0 + 5_000.0  # a beat in the verse
    timeline = timeline.with_tempo(change, 100.0)
    timeline, _ = plan(timeline, SONG, Show(), T0 + 5_000, horizon_ms=1e9)
    assert timeline.tempo_at(change + 500) == 100.0
    # The bridge's own tempo wins at its start, wherever that now falls.
    bridge = bar_time(timeline, SONG.section_start_bar(2))
    assert timeline.tempo_at(bridge + 1) == 140.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 4),
            st.floats(40.0, 240.0),
            st.sampled_from([(4, 4), (3, 4), (7, 8), (2, 4), (5, 8)]),
            st.one_of(st.none(), st.floats(40.0, 240.0)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_song_plays_bar_for_bar_as_its_map_says(sections: list[tuple]) -> None:  # type: ignore[type-arg]
    song = SongMap(
        Section(f"S{i}", bars, tempo, meter[0], meter[1], ramp_to_bpm=ramp)
        for i, (bars, tempo, meter, ramp) in enumerate(sections)
    )
    timeline, placed, _ = run(song, until_ms=song.length_ms + 5_000)
    for bar in range(1, song.total_bars + 1):
        assert bar_time(timeline, bar) == pytest.approx(T0 + song.ms_of_bar(bar), abs=1e-3)
    assert not timeline.is_playing_at(T0 + song.length_ms + 1)
    assert all(instant - at >= 0.0 for instant, at in placed)
