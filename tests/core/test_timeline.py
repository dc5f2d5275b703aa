"""The timeline: position and beat from anchors, with every change re-anchored exactly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.timeline import MS_PER_MINUTE, Segment, Timeline, bar_beat

T0 = 1_000_000.0


def test_stopped_timeline_holds_position_and_beat():
    tl = Timeline.stopped(T0, 120.0)
    for t in (T0, T0 + 1, T0 + 60_000):
        assert tl.position_at(t) == 0.0
        assert tl.beat_at(t) == 0.0
        assert not tl.is_playing_at(t)


def test_play_advances_position_one_to_one_and_beats_at_tempo():
    tl = Timeline.stopped(T0, 120.0).played(T0 + 200)
    assert tl.position_at(T0 + 100) == 0.0  # before the start nothing moves
    assert tl.position_at(T0 + 200) == 0.0
    assert tl.position_at(T0 + 10_200) == pytest.approx(10_000.0)
    assert tl.beat_at(T0 + 10_200) == pytest.approx(20.0)  # 120 BPM = 2 beats/s


def test_ten_minutes_of_play_have_zero_drift():
    tl = Timeline.stopped(T0, 133.0).played(T0)
    ten_minutes = 10 * 60_000.0
    assert tl.position_at(T0 + ten_minutes) == ten_minutes  # exact, not approximately
    assert tl.beat_at(T0 + ten_minutes) == pytest.approx(1330.0, abs=1e-9)


def test_pause_keeps_position_and_beat():
    tl = Timeline.stopped(T0, 120.0).played(T0).paused(T0 + 1_500)
    for t in (T0 + 1_500, T0 + 9_999):
        assert tl.position_at(t) == pytest.approx(1_500.0)
        assert tl.beat_at(t) == pytest.approx(3.0)
    # Before the pause, the earlier segment still answers.
    assert tl.position_at(T0 + 1_000) == pytest.approx(1_000.0)


def test_resume_continues_from_the_paused_position():
    tl = Timeline.stopped(T0).played(T0).paused(T0 + 1_000).played(T0 + 5_000)
    assert tl.position_at(T0 + 6_000) == pytest.approx(2_000.0)


def test_tempo_change_keeps_phase_continuous():
    tl = Timeline.stopped(T0, 120.0).played(T0)
    change_at = T0 + 2_000  # beat 4 exactly
    tl2 = tl.with_tempo(change_at, 60.0)
    assert tl2.beat_at(change_at) == pytest.approx(4.0)
    assert tl2.beat_at(change_at + 1_000) == pytest.approx(5.0)  # 60 BPM now
    assert tl2.position_at(change_at + 1_000) == pytest.approx(3_000.0)
    # Before the change the old tempo applies: a device that gets the change early
    # computes the same beats as one that got it late.
    assert tl2.beat_at(T0 + 1_000) == tl.beat_at(T0 + 1_000)


def test_count_in_runs_beats_while_position_holds():
    tl = Timeline.stopped(T0, 120.0).played(T0, count_in_beats=8)  # 2 bars of 4/4
    downbeat = T0 + 8 * 500.0
    assert tl.latest.anchor_ms == downbeat
    assert tl.counting_in_at(T0 + 100)
    assert tl.position_at(T0 + 3_000) == 0.0
    assert tl.beat_at(T0) == pytest.approx(-8.0)
    assert tl.beat_at(T0 + 3_000) == pytest.approx(-2.0)
    assert not tl.counting_in_at(downbeat)
    assert tl.position_at(downbeat + 250) == pytest.approx(250.0)
    assert tl.bar_beat_at(T0).bar == -1  # count-in bars are before bar 1


def test_pause_during_count_in_returns_to_the_start():
    tl = Timeline.stopped(T0).played(T0, count_in_beats=4).paused(T0 + 700)
    assert tl.position_at(T0 + 5_000) == 0.0
    assert tl.beat_at(T0 + 5_000) == 0.0


def test_tempo_change_during_count_in_moves_the_downbeat():
    tl = Timeline.stopped(T0, 120.0).played(T0, count_in_beats=4)
    tl2 = tl.with_tempo(T0 + 1_000, 60.0)  # 2 beats left, now 1 s each
    assert tl2.latest.anchor_ms == pytest.approx(T0 + 3_000)
    assert tl2.beat_at(T0 + 1_000) == pytest.approx(-2.0)
    assert tl2.beat_at(T0 + 3_000) == pytest.approx(0.0)


def test_seek_while_playing_and_paused():
    tl = Timeline.stopped(T0, 120.0).sought(T0, 4_000)
    assert tl.position_at(T0 + 99) == 4_000
    assert tl.beat_at(T0) == pytest.approx(8.0)
    tl = Timeline.stopped(T0, 120.0).played(T0).sought(T0 + 1_000, 30_000)
    assert tl.position_at(T0 + 1_500) == pytest.approx(30_500)
    assert tl.beat_at(T0 + 1_500) == pytest.approx(61.0)


def test_meter_change_keeps_bars_continuous():
    tl = Timeline.stopped(T0, 120.0).played(T0)
    at = T0 + 4 * 4 * 500.0  # top of bar 5 in 4/4
    assert tl.bar_beat_at(at).bar == 5
    tl2 = tl.with_meter(at, 3, 4)
    bb = tl2.bar_beat_at(at)
    assert (bb.bar, bb.beat) == (5, 1)
    bb = tl2.bar_beat_at(at + 3 * 500.0)
    assert (bb.bar, bb.beat) == (6, 1)


@pytest.mark.parametrize(
    ("beat", "bpb", "expected"),
    [(0.0, 4, (1, 1)), (3.99, 4, (1, 4)), (4.0, 4, (2, 1)), (6.5, 3, (3, 1)), (-1.0, 4, (0, 4))],
)
def test_bar_beat(beat, bpb, expected):
    bb = bar_beat(beat, bpb)
    assert (bb.bar, bb.beat) == expected


def test_effective_time_quantises_to_next_beat_and_bar():
    tl = Timeline.stopped(T0, 120.0).played(T0)
    assert tl.effective_time(T0 + 1_100, "now") == T0 + 1_100
    assert tl.effective_time(T0 + 1_100, "beat") == pytest.approx(T0 + 1_500)
    assert tl.effective_time(T0 + 1_100, "bar") == pytest.approx(T0 + 2_000)
    assert tl.effective_time(T0 + 2_000, "bar") == pytest.approx(T0 + 2_000)  # on a downbeat
    paused = Timeline.stopped(T0)
    assert paused.effective_time(T0 + 1_234, "bar") == T0 + 1_234


def test_a_change_never_takes_effect_before_a_pending_one():
    tl = Timeline.stopped(T0, 120.0).played(T0).with_tempo(T0 + 5_000, 90.0)
    assert tl.effective_time(T0 + 1_000, "now") == T0 + 5_000
    with pytest.raises(ValueError):
        tl.with_tempo(T0 + 1_000, 100.0)


def test_pending_changes_stack_in_order_and_prune_after_taking_effect():
    tl = Timeline.stopped(T0, 120.0).played(T0)
    tl = tl.with_tempo(T0 + 1_000, 100.0).with_tempo(T0 + 2_000, 80.0)
    assert [s.tempo_bpm for s in tl.segments] == [120.0, 100.0, 80.0]
    assert len(tl.pruned(T0 + 1_500).segments) == 2
    assert len(tl.pruned(T0 + 2_000).segments) == 1
    assert tl.pruned(T0 + 500) is tl


def test_same_instant_change_replaces_the_pending_segment():
    tl = Timeline.stopped(T0, 120.0).played(T0).with_tempo(T0 + 1_000, 100.0)
    tl = tl.with_tempo(T0 + 1_000, 90.0)
    assert [s.tempo_bpm for s in tl.segments] == [120.0, 90.0]


def test_wire_round_trip():
    tl = (
        Timeline.stopped(T0, 97.0, 7, 8)
        .played(T0 + 10, count_in_beats=7)
        .with_tempo(T0 + 5_000, 140.0)
    )
    assert Timeline.from_wire(tl.to_wire()) == tl
    assert tl.to_wire()[-1]["tempoBpm"] == 140.0


def test_an_empty_timeline_is_refused():
    with pytest.raises(ValueError):
        Timeline([])


def test_segment_beat_ms():
    seg = Segment(T0, T0, 0.0, 0.0, 150.0, True, 4, 4)
    assert seg.beat_ms == pytest.approx(400.0)
    assert seg.time_of_beat(10.0) == pytest.approx(T0 + 4_000)


# -- properties ------------------------------------------------------------------------------

tempos = st.floats(min_value=20.0, max_value=280.0)
gaps = st.floats(min_value=0.0, max_value=120_000.0)


@settings(max_examples=200, deadline=None)
@given(
    tempo=tempos,
    changes=st.lists(st.tuples(gaps, tempos), min_size=1, max_size=8),
    probe=gaps,
)
def test_tempo_changes_never_move_position_and_keep_beats_continuous(tempo, changes, probe):
    tl = Timeline.stopped(T0, tempo).played(T0)
    t = T0
    for gap, new_tempo in changes:
        t += gap
        before = tl.beat_at(t)
        tl = tl.with_tempo(tl.effective_time(t, "now"), new_tempo)
        assert tl.beat_at(t) == pytest.approx(before, abs=1e-6)
    # Position is elapsed play time, whatever the tempo history.
    end = t + probe
    assert tl.position_at(end) == pytest.approx(end - T0, abs=1e-6)
    # Beats are the integral of tempo over time, segment by segment from the start.
    assert tl.segments[0].start_ms == T0
    expected = 0.0
    for first, second in zip(tl.segments, [*tl.segments[1:], None], strict=True):
        stop = second.start_ms if second else end
        expected += (stop - first.start_ms) * first.tempo_bpm / MS_PER_MINUTE
    assert tl.beat_at(end) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    tempo=tempos,
    start=gaps,
    ask=gaps,
    unit=st.sampled_from(["beat", "bar"]),
    bpb=st.integers(min_value=1, max_value=16),
)
def test_quantised_changes_land_on_a_boundary(tempo, start, ask, unit, bpb):
    tl = Timeline.stopped(T0, tempo, bpb).played(T0 + start)
    at = tl.effective_time(T0 + ask, unit)
    assert at >= T0 + ask
    beat = tl.beat_at(at)
    step = 1 if unit == "beat" else bpb
    assert abs(beat / step - round(beat / step)) < 1e-6
    # and it is the *next* boundary: one step earlier lies before the request
    assert at - step * 60_000.0 / tempo < max(T0 + ask, T0 + start) + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["play", "pause", "seek", "tempo", "meter"]),
            gaps,
            st.floats(min_value=0, max_value=600_000),
            tempos,
            st.integers(1, 16),
        ),
        max_size=12,
    )
)
def test_any_sequence_of_changes_is_consistent(ops):
    tl = Timeline.stopped(T0)
    t = T0
    for op, gap, pos, tempo, bpb in ops:
        t += gap
        at = tl.effective_time(t, "now")
        if op == "play":
            tl = tl.played(at, count_in_beats=bpb % 5)
        elif op == "pause":
            tl = tl.paused(at)
        elif op == "seek":
            tl = tl.sought(at, pos)
        elif op == "tempo":
            tl = tl.with_tempo(at, tempo)
        else:
            tl = tl.with_meter(at, bpb, 4)
        tl = tl.pruned(t)
        starts = [s.start_ms for s in tl.segments]
        assert starts == sorted(starts)
        for s in tl.segments:
            assert s.start_ms <= s.anchor_ms
            assert math.isfinite(tl.position_at(s.start_ms))
            assert tl.position_at(s.start_ms) >= 0
    assert Timeline.from_wire(tl.to_wire()) == tl
