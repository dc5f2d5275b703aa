"""Tempo ramps on the timeline (accelerando, ritardando): closed-form beat and time, exact
against a 50-digit reference, continuous and monotonic across every change."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.timeline import MS_PER_MINUTE, Segment, Timeline

T0 = 1_764_000_000_000.0  # server times are epoch milliseconds: the float noise is real
getcontext().prec = 50

tempos = st.floats(min_value=20.0, max_value=280.0, allow_nan=False)
beats = st.floats(min_value=0.25, max_value=256.0, allow_nan=False)


def ramping(start: float, end: float, over: float, at: float = T0) -> Timeline:
    return Timeline.stopped(at, start).played(at).with_ramp(at, end, over)


def reference_time(start: float, end: float, over: float, beat: float) -> Decimal:
    """Milliseconds from the ramp's anchor to ``beat``, in 50-digit decimals."""
    t0, t1, n, b = (Decimal(repr(x)) for x in (start, end, over, beat))
    minute = Decimal(60_000)
    if t0 == t1:
        return b * minute / t0
    k = (t1 - t0) / n
    inside = min(b, n)
    ms = minute / k * ((t0 + k * inside) / t0).ln()
    if b > n:
        ms += (b - n) * minute / t1
    return ms


def test_a_ritardando_lands_where_the_integral_says() -> None:
    # 120 -> 60 BPM over 8 beats: 60000/k * ln(60/120) with k = -7.5 BPM per beat.
    tl = ramping(120.0, 60.0, 8.0)
    expected = MS_PER_MINUTE / -7.5 * -0.6931471805599453
    assert tl.segments[-1].ramp_ms == pytest.approx(expected, rel=1e-12)
    # (epoch-millisecond floats carry ~2e-4 ms of noise: 1e-6 beats at these tempos)
    assert tl.beat_at(T0 + expected) == pytest.approx(8.0, abs=1e-6)
    # After the ramp the tempo holds at 60 BPM.
    assert tl.beat_at(T0 + expected + 1_000) == pytest.approx(9.0, abs=1e-6)
    assert tl.tempo_at(T0 + expected + 5_000) == 60.0
    assert tl.tempo_at(T0) == 120.0
    assert 60.0 < tl.tempo_at(T0 + expected / 2) < 120.0


@settings(max_examples=200, deadline=None)
@given(tempos, tempos, beats, st.floats(min_value=0.0, max_value=600.0))
def test_time_and_beat_round_trip_and_match_the_reference(
    start: float, end: float, over: float, beat: float
) -> None:
    tl = ramping(start, end, over)
    segment = tl.segments[-1]
    t = segment.time_of_beat(beat)
    assert abs(float(reference_time(start, end, over, beat)) - (t - T0)) < 1e-3  # 1 µs
    # Back from the instant: within what one ulp of an epoch-ms instant is worth in beats.
    noise = 4 * math.ulp(t) * max(start, end) / MS_PER_MINUTE
    assert tl.beat_at(t) == pytest.approx(beat, abs=max(noise, 1e-9))


@settings(max_examples=150, deadline=None)
@given(tempos, tempos, beats, st.lists(st.floats(min_value=1.0, max_value=30_000.0), max_size=30))
def test_beats_only_go_forward_through_a_ramp(
    start: float, end: float, over: float, steps: list[float]
) -> None:
    tl = ramping(start, end, over)
    t, last = T0, tl.beat_at(T0)
    for step in sorted(steps):
        now = tl.beat_at(T0 + step)
        assert now >= last - 1e-9
        last = now
    del t


@settings(max_examples=150, deadline=None)
@given(
    tempos,
    tempos,
    beats,
    st.floats(min_value=10.0, max_value=20_000.0),
    st.sampled_from(["tempo", "ramp", "meter", "pause", "seek"]),
    tempos,
)
def test_every_change_inside_a_ramp_keeps_position_and_phase_continuous(
    start: float, end: float, over: float, after: float, change: str, other: float
) -> None:
    tl = ramping(start, end, over)
    at = T0 + after
    before_beat, before_position = tl.beat_at(at), tl.position_at(at)
    tempo_then = tl.tempo_at(at)
    if change == "tempo":
        changed = tl.with_tempo(at, other)
    elif change == "ramp":
        changed = tl.with_ramp(at, other, 4.0)
    elif change == "meter":
        changed = tl.with_meter(at, 3, 4)
    elif change == "pause":
        changed = tl.paused(at)
    else:
        changed = tl.sought(at, before_position)
    assert changed.position_at(at) == pytest.approx(before_position, abs=1e-6)
    if change in ("tempo", "ramp", "pause"):
        assert changed.beat_at(at) == pytest.approx(before_beat, abs=1e-6)
    if change == "meter":  # bars continuous: beats renumbered by 3/4, tempo unchanged
        assert changed.beat_at(at) == pytest.approx(before_beat * 3 / 4, abs=1e-6)
    if change in ("meter", "ramp", "pause", "seek"):
        # The tempo does not jump: a ramp goes on (meter), starts from here (ramp), or
        # holds where it had got to (pause, seek).
        assert changed.tempo_at(at) == pytest.approx(tempo_then, rel=1e-9)
    if change == "meter" and at < T0 + tl.segments[-1].ramp_ms:
        # The ramp goes on to its end tempo after the meter change.
        assert changed.latest.end_tempo_bpm == end
    # The earlier part of the timeline is untouched.
    assert changed.beat_at(at - 5.0) == pytest.approx(tl.beat_at(at - 5.0), abs=1e-9)


def test_a_two_hour_set_of_ramps_and_meter_changes_adds_no_error_but_rounding() -> None:
    """Sixty-six songs, each: 240 beats at its tempo, a 16-beat ramp, a meter change, another
    ramp; the last beat's instant after two hours against the 50-digit reference: within 1 µs.

    Server times are epoch milliseconds in doubles (one ulp at 1.76e12 ms is 0.24 µs). Each
    change is asked for at an instant rounded to that; an anchor keeps what the rounding left
    over (``anchor_lo_ms``), so a change on a beat adds nothing. The meter changes here fall
    mid-bar and renumber beats to fractions: a ramp asked for at a fractional beat's rounded
    instant starts at that instant, a fraction of an ulp off the beat, which shifts the ramp's
    end by that times ``1 - T0/T1`` (as plain anchors, 198 half-ulps, this was ~1.2 µs).
    """
    tl = Timeline.stopped(T0, 120.0).played(T0)
    ref_ms = Decimal(0)
    beat = 0.0
    tempo = 120.0
    at = T0
    for song in range(66):
        # 240 beats at its tempo
        ref_ms += Decimal(240) * Decimal(60_000) / Decimal(repr(tempo))
        beat += 240
        at = tl.latest.time_of_beat(beat)
        target = 70.0 + (song * 37) % 150
        tl = tl.with_ramp(at, target, 16.0).pruned(at)
        ref_ms += reference_time(tempo, target, 16.0, 16.0)
        beat += 16
        tempo = target
        at = tl.latest.time_of_beat(beat)
        tl = tl.with_meter(at, 7 if song % 2 else 4, 8 if song % 2 else 4).pruned(at)
        beat = tl.latest.beat  # renumbered
        back = 90.0 + (song * 53) % 120
        tl = tl.with_ramp(at, back, 8.0).pruned(at)
        ref_ms += reference_time(tempo, back, 8.0, 8.0)
        beat += 8
        tempo = back
    end = tl.latest.time_of_beat(beat)
    assert float(ref_ms) > 1.9 * 3_600_000  # really two hours of music
    # (Decimal(float) is the double's exact value; repr would round it)
    error_us = float(Decimal(end) - Decimal(T0) - ref_ms) * 1000
    print(f"two-hour set, 198 changes: {error_us:+.3f} µs off the 50-digit reference")
    assert abs(error_us) <= 1.0
    assert tl.beat_at(end) == pytest.approx(beat, abs=1e-6)


def test_a_thousand_changes_on_beats_and_bars_leave_one_rounding_not_a_thousand() -> None:
    """A thousand changes, as the server places them (tempo on a beat; ramps, meters and
    jumps on a downbeat), each at its instant rounded to an epoch-ms double: every anchor
    stays within a nanosecond of the exact instant (50-digit reference), and the last beat's
    instant is one rounding (half an ulp, 0.12 µs) off it. Without the anchors' low parts the
    half-ulps random-walk: 4.7 µs at worst, 3.9 µs at the end here."""
    tl = Timeline.stopped(T0, 120.0).played(T0)
    exact = Decimal(T0)  # the exact instant of ``beat``
    beat, tempo, bpb = 0.0, 120.0, 4
    worst = Decimal(0)
    kinds = {"tempo": 0, "ramp": 0, "meter": 0, "jump": 0}
    for i in range(1000):
        bars = 1 + (i * 7) % 5
        beat += bars * bpb
        exact += Decimal(bars * bpb) * Decimal(60_000) / Decimal(repr(tempo))
        at = tl.latest.time_of_beat(beat)
        kind = ("tempo", "ramp", "meter", "jump")[(i * 5 + i // 4) % 4]
        kinds[kind] += 1
        if kind == "tempo":
            tempo = 60.0 + (i * 37) % 200 + 0.5 * (i % 3)
            tl = tl.with_tempo(at, tempo)
        elif kind == "ramp":
            target, over = 60.0 + (i * 53) % 200, float(bpb * (1 + i % 4))
            tl = tl.with_ramp(at, target, over)
        elif kind == "meter":
            new_bpb = 2 + (i * 3) % 11
            tl = tl.with_meter(at, new_bpb, 4)
            beat = beat / bpb * new_bpb  # bars continuous: still a whole beat
            bpb = new_bpb
        else:  # the conductor's repeat: back to bar 9 of the form
            tl = tl.sought(at, 30_000.0, beat=float(8 * bpb))
            beat = float(8 * bpb)
        tl = tl.pruned(at)
        anchor = tl.latest
        assert anchor.beat == beat and beat.is_integer()
        worst = max(worst, abs(Decimal(anchor.anchor_ms) + Decimal(anchor.anchor_lo_ms) - exact))
        if kind == "ramp":
            exact += reference_time(tempo, target, over, over)
            beat += over
            tempo = target
    beat += bpb
    exact += Decimal(bpb) * Decimal(60_000) / Decimal(repr(tempo))
    end = tl.latest.time_of_beat(beat)
    error_ms = float(Decimal(end) - exact)
    print(
        f"1000 changes over {float(exact - Decimal(T0)) / 3_600_000:.1f} h {kinds}: "
        f"anchors within {float(worst):.1e} ms, last beat {error_ms * 1000:+.3f} µs"
    )
    assert min(kinds.values()) >= 200
    assert worst <= Decimal("1e-6")  # 1 ns: nothing adds up from change to change
    assert abs(error_ms) <= math.ulp(end) / 2 + 1e-6  # the one rounding of ``end``


def test_a_change_on_a_beat_carries_the_rounding_of_its_instant() -> None:
    tl = Timeline.stopped(T0, 133.0).played(T0)
    at = tl.latest.time_of_beat(1001.0)  # 1001 beats at 133 BPM: not a whole number of ms
    exact = Decimal(T0) + Decimal(1001) * Decimal(60_000) / Decimal(133)
    changed = tl.with_tempo(at, 90.0)
    anchor = changed.latest
    assert anchor.start_ms == anchor.anchor_ms == at  # where the change was asked for
    assert anchor.anchor_lo_ms != 0.0
    assert abs(Decimal(at) + Decimal(anchor.anchor_lo_ms) - exact) < Decimal("1e-9")
    # The beat there is continuous within what an ulp of the instant is worth in beats (``at``
    # is a hair before the exact instant, and the new segment's tempo already applies there),
    # and the next beats count from the exact instant.
    ulp_in_beats = math.ulp(at) * 133.0 / MS_PER_MINUTE
    assert changed.beat_at(at) == pytest.approx(tl.beat_at(at), abs=ulp_in_beats)
    next_beat = Decimal(changed.latest.time_of_beat(1002.0)) - (exact + Decimal(60_000) / 90)
    assert abs(next_beat) <= Decimal(math.ulp(at)) / 2
    # Between beats an instant is taken as given: no low part.
    assert tl.with_tempo(at + 100.0, 90.0).latest.anchor_lo_ms == 0.0
    # An instant further off than a rounding is not that beat's: no low part either.
    assert tl.with_tempo(at + 4 * math.ulp(at), 90.0).latest.anchor_lo_ms == 0.0


def test_the_wire_form_carries_an_anchor_low_part_only_when_there_is_one() -> None:
    tl = Timeline.stopped(T0, 133.0).played(T0)
    changed = tl.with_tempo(tl.latest.time_of_beat(1001.0), 90.0)
    wire = changed.to_wire()
    assert wire[-1]["anchorServerTimeLo"] == changed.latest.anchor_lo_ms != 0.0
    assert Timeline.from_wire(wire) == changed
    # Without one, the original BandSync segment: the field is absent, not 0.
    assert "anchorServerTimeLo" not in wire[0]
    assert Segment.from_wire(wire[0]).anchor_lo_ms == 0.0


def test_the_wire_form_carries_a_ramp_and_only_then() -> None:
    tl = ramping(100.0, 140.0, 12.0)
    wire = tl.to_wire()
    assert wire[-1]["rampToBpm"] == 140.0 and wire[-1]["rampBeats"] == 12.0
    assert Timeline.from_wire(wire) == tl
    plain = Timeline.stopped(T0, 100.0).played(T0).to_wire()
    assert "rampToBpm" not in plain[-1]
    assert Segment.from_wire(plain[-1]).ramp_to_bpm is None


def test_a_ramp_asked_for_while_paused_simply_sets_the_tempo() -> None:
    tl = Timeline.stopped(T0, 100.0).with_ramp(T0 + 10, 80.0, 8.0)
    assert tl.latest.tempo_bpm == 80.0 and not tl.latest.ramps


def test_a_ramp_during_a_count_in_starts_at_the_downbeat() -> None:
    tl = Timeline.stopped(T0, 120.0).played(T0, count_in_beats=4)  # downbeat at T0 + 2000
    ramped = tl.with_ramp(T0 + 500, 60.0, 8.0)
    assert ramped.latest.anchor_ms == T0 + 2_000
    assert ramped.beat_at(T0 + 1_500) == pytest.approx(-1.0)  # the count-in at 120
    assert ramped.tempo_at(T0 + 2_000) == 120.0
