"""The song model: sections with tempo, meter and ramps; exact song time in ms, beats, bars."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal, getcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.errors import ErrorCode, ValidationError
from bandsync_desktop.core.song import Section, SongMap

TWO_HOURS_MS = 2 * 3600 * 1000.0
MICROSECOND_MS = 1e-3


def song() -> SongMap:
    """Verse 8 bars 4/4 at 120, a 7/8 bridge slowing 100 → 80 over 4 bars, 2 bars of 3/4."""
    return SongMap(
        [
            Section("Verse", 8, 120.0),
            Section("Bridge", 4, 100.0, 7, 8, ramp_to_bpm=80.0),
            Section("Out", 2, 90.0, 3, 4),
        ]
    )


def ramp_ms(beats: float, total_beats: int, t0: float, t1: float) -> float:
    """The ramp's integral by its textbook closed form: 60000 B/(T1-T0) ln(T(b)/T0)."""
    tempo = t0 + (t1 - t0) * beats / total_beats
    return 60_000.0 * total_beats / (t1 - t0) * math.log(tempo / t0)


def test_constant_sections_take_their_exact_length() -> None:
    verse = Section("Verse", 8, 120.0)
    assert verse.beats == 32
    assert verse.length_ms == 16_000.0
    assert SongMap([verse]).length_ms == 16_000.0
    assert Section("Waltz", 3, 138.0, 3, 4).length_ms == pytest.approx(9 * 60_000 / 138)


def test_a_ramp_is_linear_in_beats_and_its_time_the_integral() -> None:
    rit = Section("Rit", 1, 120.0, 4, 4, ramp_to_bpm=60.0)
    assert rit.ramps and rit.end_tempo_bpm == 60.0
    assert rit.tempo_at_beat(2.0) == 90.0  # half-way through the beats, half-way in tempo
    assert rit.length_ms == pytest.approx(-4000.0 * math.log(0.5), rel=1e-15)  # 2772.6 ms
    assert rit.length_ms > 4 * 60_000 / 120  # slowing down takes longer than holding 120
    assert rit.length_ms < 4 * 60_000 / 60
    for beat in (0.0, 0.5, 1.0, 2.0, 3.99):
        assert rit.ms_at_beat(beat) == pytest.approx(ramp_ms(beat, 4, 120.0, 60.0), rel=1e-14)
        assert rit.beat_at_ms(rit.ms_at_beat(beat)) == pytest.approx(beat, abs=1e-12)
    # a ramp to the same tempo is no ramp
    held = Section("Held", 2, 100.0, ramp_to_bpm=100.0)
    assert not held.ramps and held.length_ms == 8 * 600.0


def test_sections_start_on_downbeats_and_bars_stay_continuous_across_meters() -> None:
    m = song()
    assert (m.total_bars, m.total_beats) == (14, 32 + 28 + 6)
    assert [m.section_start_bar(i) for i in range(3)] == [1, 9, 13]
    assert [m.section_start_beat(i) for i in range(3)] == [0, 32, 60]
    bridge_ms = Section("B", 4, 100.0, 7, 8, ramp_to_bpm=80.0).length_ms
    assert m.section_start_ms(1) == 16_000.0
    assert m.section_start_ms(2) == pytest.approx(16_000.0 + bridge_ms, abs=1e-9)
    assert m.length_ms == pytest.approx(16_000.0 + bridge_ms + 4_000.0, abs=1e-9)

    at = m.position_at_ms(16_000.0)  # the bridge's first downbeat
    assert (at.bar, at.beat_in_bar, at.section, at.section_name, at.bar_in_section) == (
        9,
        1,
        1,
        "Bridge",
        1,
    )
    assert (at.beats_per_bar, at.tempo_bpm) == (7, 100.0)
    last = m.position_at_beat(59.5)  # the bridge's last eighth note, half-way
    assert (last.bar, last.beat_in_bar, last.bar_in_section, last.fraction) == (12, 7, 4, 0.5)
    assert last.tempo_bpm == pytest.approx(80.0 + 20.0 * 0.5 / 28)
    out = m.position_at_beat(63.0)
    assert (out.bar, out.beat_in_bar, out.section_name, out.tempo_bpm) == (14, 1, "Out", 90.0)
    assert [m.beat_of_bar(bar) for bar in (1, 9, 10, 13, 14)] == [0, 32, 39, 60, 63]
    assert m.ms_of_bar(13) == m.section_start_ms(2)
    assert [m.section_of_bar(bar) for bar in (1, 8, 9, 12, 13, 14)] == [0, 0, 1, 1, 2, 2]
    assert m.bar_position_at_beat(39.0 + 3.5) == pytest.approx(9.5)  # the chart's 0-based bar


def test_float_noise_below_a_downbeat_reads_as_that_downbeat() -> None:
    m = song()
    at = m.position_at_beat(32.0 - 1e-9)
    assert (at.bar, at.beat_in_bar, at.section, at.fraction) == (9, 1, 1, 0.0)
    assert m.section_at_beat(32.0 - 1e-3) == 0  # a real moment before it is still the verse
    assert m.section_at_ms(m.section_start_ms(2)) == 2


def test_before_the_start_and_past_the_end_the_outer_sections_go_on() -> None:
    m = song()
    count_in = m.position_at_ms(-500.0)  # one beat of count-in at 120
    assert (count_in.beat, count_in.bar, count_in.beat_in_bar) == (-1.0, 0, 4)
    assert (count_in.section, count_in.bar_in_section) == (0, 0)
    assert m.ms_at_beat(-4.0) == -2_000.0
    past = m.position_at_ms(m.length_ms + 2_000.0)  # 3 beats (a bar of 3/4) at 90 past bar 15
    assert past.beat == pytest.approx(69.0)
    assert (past.bar, past.beat_in_bar, past.section, past.bar_in_section) == (16, 1, 2, 4)
    assert m.tempo_at_ms(m.length_ms + 60_000.0) == 90.0
    ramped_end = SongMap([Section("Accel", 2, 100.0, ramp_to_bpm=140.0)])
    assert ramped_end.tempo_at_beat(100.0) == 140.0  # the ramp's end tempo goes on
    assert ramped_end.ms_at_beat(9.0) - ramped_end.length_ms == pytest.approx(60_000 / 140)


def test_wire_form_is_camel_case_and_round_trips() -> None:
    m = song()
    wire = m.to_dict()
    assert wire["sections"][1] == {
        "name": "Bridge",
        "bars": 4,
        "tempoBpm": 100.0,
        "beatsPerBar": 7,
        "beatUnit": 8,
        "rampToBpm": 80.0,
    }
    assert wire["sections"][0]["rampToBpm"] is None
    assert SongMap.from_dict(wire) == m
    assert hash(SongMap.from_dict(wire)) == hash(m)
    minimal = SongMap.from_dict({"sections": [{"name": "A", "bars": 2, "tempoBpm": 90}]})
    assert minimal.sections[0] == Section("A", 2, 90.0, 4, 4, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.sections[0].bars = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sections", "code", "message"),
    [
        ([], ErrorCode.INVALID_SONG, "at least one section"),
        ([{"name": "V", "bars": 2, "tempoBpm": 120}] * 201, ErrorCode.INVALID_SONG, "at most 200"),
        ([{"name": "V", "bars": 0, "tempoBpm": 120}], ErrorCode.INVALID_SONG, "between 1 and 999"),
        ([{"name": "V", "bars": 1000, "tempoBpm": 120}], ErrorCode.INVALID_SONG, "1 and 999"),
        ([{"name": "V", "bars": 1.5, "tempoBpm": 120}], ErrorCode.INVALID_SONG, "whole number"),
        ([{"name": "V", "bars": True, "tempoBpm": 120}], ErrorCode.INVALID_SONG, "whole number"),
        ([{"name": "V", "bars": 4, "tempoBpm": 19}], ErrorCode.INVALID_TEMPO, "between 20"),
        ([{"name": "V", "bars": 4, "tempoBpm": 281}], ErrorCode.INVALID_TEMPO, "280"),
        ([{"name": "V", "bars": 4, "tempoBpm": "120"}], ErrorCode.INVALID_TEMPO, "number"),
        ([{"name": "V", "bars": 4, "tempoBpm": math.nan}], ErrorCode.INVALID_TEMPO, "finite"),
        ([{"name": "V", "bars": 4}], ErrorCode.INVALID_TEMPO, "number"),
        (
            [{"name": "V", "bars": 4, "tempoBpm": 90, "beatsPerBar": 17}],
            ErrorCode.INVALID_METER,
            "beatsPerBar",
        ),
        (
            [{"name": "V", "bars": 4, "tempoBpm": 90, "beatUnit": 3}],
            ErrorCode.INVALID_METER,
            "beatUnit",
        ),
        (
            [{"name": "V", "bars": 4, "tempoBpm": 90, "rampToBpm": 300}],
            ErrorCode.INVALID_TEMPO,
            "ramp tempo must be between",
        ),
        ([{"name": "", "bars": 4, "tempoBpm": 90}], ErrorCode.INVALID_SONG, "empty"),
        ([{"name": "x" * 41, "bars": 4, "tempoBpm": 90}], ErrorCode.INVALID_SONG, "at most 40"),
        ([{"name": "a\x00b", "bars": 4, "tempoBpm": 90}], ErrorCode.INVALID_SONG, "control"),
        ([{"name": 7, "bars": 4, "tempoBpm": 90}], ErrorCode.INVALID_SONG, "string"),
        (["verse"], ErrorCode.INVALID_PAYLOAD, "JSON object"),
        (
            [{"name": "Drone", "bars": 999, "tempoBpm": 20, "beatsPerBar": 16}] * 30,
            ErrorCode.INVALID_SONG,
            "longer than a day",
        ),
    ],
)
def test_invalid_songs_are_refused_with_a_clear_error(
    sections: list[Any], code: ErrorCode, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        SongMap.from_dict({"sections": sections})
    assert info.value.code == code
    if sections and "longer" not in message and "at most 200" not in message:
        assert info.value.message.startswith("section 1: ")


def test_the_sections_field_must_be_a_list_of_sections() -> None:
    with pytest.raises(ValidationError, match="sections must be a list"):
        SongMap.from_dict({"sections": "verse"})
    with pytest.raises(ValidationError, match="JSON object"):
        SongMap.from_dict([])
    with pytest.raises(ValidationError, match="must be sections"):
        SongMap(["verse"])  # type: ignore[list-item]
    good = {"name": "V", "bars": 2, "tempoBpm": 90}
    with pytest.raises(ValidationError, match=r"^section 3: bars") as info:
        SongMap.from_dict({"sections": [good, good, {**good, "bars": -1}]})
    assert info.value.code == ErrorCode.INVALID_SONG


# -- properties --------------------------------------------------------------------------------

tempos = st.floats(20.0, 280.0, allow_nan=False)
meters = st.sampled_from([(4, 4), (3, 4), (7, 8), (6, 8), (2, 2), (5, 4), (12, 8), (1, 4)])


@st.composite
def sections(draw: st.DrawFn, *, ramps: bool = True, max_bars: int = 64) -> Section:
    beats, unit = draw(meters)
    tempo = draw(tempos)
    ramp = draw(st.none() | tempos) if ramps else None
    name = draw(st.sampled_from(["Intro", "Verse", "Chorus", "Bridge", "Solo", "Outro"]))
    return Section(name, draw(st.integers(1, max_bars)), tempo, beats, unit, ramp)


song_maps = st.lists(sections(), min_size=1, max_size=12).map(SongMap)


def noise(m: SongMap) -> float:
    """Float noise of a position in ms: a few ulps of the song's length."""
    return 1e-12 * max(1.0, m.length_ms) + 1e-9


@settings(max_examples=150, deadline=None)
@given(song_maps, st.lists(st.floats(-0.1, 1.1, allow_nan=False), min_size=1, max_size=20))
def test_ms_to_beat_to_ms_round_trips_within_float_noise(
    m: SongMap, fractions_of_song: list[float]
) -> None:
    for fraction in fractions_of_song:
        ms = fraction * m.length_ms
        assert m.ms_at_beat(m.beat_at_ms(ms)) == pytest.approx(ms, abs=noise(m))
        beat = fraction * m.total_beats
        assert m.beat_at_ms(m.ms_at_beat(beat)) == pytest.approx(beat, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(song_maps, st.lists(st.floats(-0.1, 1.1, allow_nan=False), min_size=2, max_size=30))
def test_position_is_monotonic_in_time(m: SongMap, fractions_of_song: list[float]) -> None:
    instants = sorted(f * m.length_ms for f in fractions_of_song)
    # every section boundary and the instants a hair either side of it
    for index in range(len(m.sections)):
        start = m.section_start_ms(index)
        instants += [start - 1e-6, start, start + 1e-6]
    instants.sort()
    beats = [m.beat_at_ms(ms) for ms in instants]
    assert beats == sorted(beats)
    bars = [m.bar_position_at_beat(b) for b in beats]
    assert bars == sorted(bars)
    assert [m.section_at_beat(b) for b in beats] == sorted(m.section_at_beat(b) for b in beats)
    times = [m.ms_at_beat(b) for b in sorted(f * m.total_beats for f in fractions_of_song)]
    assert times == sorted(times)


@settings(max_examples=150, deadline=None)
@given(song_maps)
def test_continuous_at_every_section_boundary(m: SongMap) -> None:
    for index in range(1, len(m.sections)):
        start_ms = m.section_start_ms(index)
        start_beat = m.section_start_beat(index)
        assert m.beat_at_ms(start_ms) == start_beat
        assert m.ms_at_beat(float(start_beat)) == start_ms
        # from the left, the previous section ends where this one starts
        before = m.sections[index - 1]
        assert m.section_start_ms(index - 1) + before.ms_at_beat(before.beats) == pytest.approx(
            start_ms, abs=noise(m)
        )
        eps = 1e-3  # ms: beats move at most 280 / 60000 per ms (plus float noise)
        step = 1.01 * eps * 280 / 60_000
        assert m.beat_at_ms(start_ms - eps) == pytest.approx(start_beat, abs=step)
        assert m.beat_at_ms(start_ms + eps) == pytest.approx(start_beat, abs=step)
        at = m.position_at_ms(start_ms)
        assert (at.section, at.bar, at.beat_in_bar, at.bar_in_section) == (
            index,
            m.section_start_bar(index),
            1,
            1,
        )


@settings(max_examples=150, deadline=None)
@given(song_maps)
def test_total_length_is_the_sum_of_the_sections(m: SongMap) -> None:
    exact = sum((Fraction(s.length_ms) for s in m.sections), Fraction(0))
    assert m.length_ms == pytest.approx(float(exact), abs=noise(m))
    assert m.length_ms == pytest.approx(math.fsum(s.length_ms for s in m.sections), abs=noise(m))
    assert m.total_beats == sum(s.beats for s in m.sections)
    assert m.total_bars == sum(s.bars for s in m.sections)
    assert m.beat_at_ms(m.length_ms) == m.total_beats
    assert m.ms_at_beat(float(m.total_beats)) == m.length_ms


class Reference:
    """The same song in exact rationals (constant-tempo sections only)."""

    def __init__(self, m: SongMap) -> None:
        self.m = m
        self.starts: list[Fraction] = []
        total = Fraction(0)
        for section in m.sections:
            assert not section.ramps
            self.starts.append(total)
            total += Fraction(60_000 * section.beats) / Fraction(section.tempo_bpm)
        self.length = total

    def ms_at_beat(self, beat: Fraction) -> Fraction:
        index = self.m.section_at_beat(float(beat))
        section = self.m.sections[index]
        done = beat - self.m.section_start_beat(index)
        return self.starts[index] + done * 60_000 / Fraction(section.tempo_bpm)


@st.composite
def two_hour_songs(draw: st.DrawFn) -> SongMap:
    """Constant-tempo sections until the song lasts two hours (at most 200 of them)."""
    chosen: list[Section] = []
    length = 0.0
    while length < TWO_HOURS_MS:
        section = draw(sections(ramps=False, max_bars=999).filter(lambda s: s.bars >= 100))
        chosen.append(section)
        length += section.length_ms
    assert len(chosen) <= 200
    return SongMap(chosen)


@settings(max_examples=25, deadline=None)
@given(two_hour_songs(), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_a_two_hour_song_agrees_with_exact_rationals_within_a_microsecond(
    m: SongMap, fractions_of_song: list[float]
) -> None:
    ref = Reference(m)
    assert m.length_ms >= TWO_HOURS_MS
    assert abs(Fraction(m.length_ms) - ref.length) <= MICROSECOND_MS
    assert m.length_ms == float(ref.length)  # summed exactly, rounded once
    for fraction in [*fractions_of_song, 1.0]:
        beat = Fraction(fraction) * m.total_beats
        assert abs(Fraction(m.ms_at_beat(float(beat))) - ref.ms_at_beat(beat)) <= MICROSECOND_MS
        ms = fraction * m.length_ms
        back = m.ms_at_beat(m.beat_at_ms(ms))
        assert abs(back - ms) <= MICROSECOND_MS
    for index in range(len(m.sections)):
        assert abs(Fraction(m.section_start_ms(index)) - ref.starts[index]) <= MICROSECOND_MS


def test_a_two_hour_song_of_ramps_agrees_with_a_50_digit_integral() -> None:
    """Ramps against ln() in 50-digit decimals: the error after two hours stays < 1 µs."""
    getcontext().prec = 50
    tempos_up = [(60.0 + 3.7 * i, 200.0 - 2.9 * i) for i in range(40)]
    m = SongMap(Section("Ramp", 180, t0, 4, 4, ramp_to_bpm=t1) for t0, t1 in tempos_up)
    total = Decimal(0)
    for section in m.sections:
        t0, t1 = Decimal(section.tempo_bpm), Decimal(section.end_tempo_bpm)
        beats = Decimal(section.beats)
        total += Decimal(60_000) * beats / (t1 - t0) * (t1 / t0).ln()
    assert m.length_ms > TWO_HOURS_MS
    assert abs(Decimal(m.length_ms) - total) < Decimal(MICROSECOND_MS)
    end = m.ms_at_beat(m.total_beats - 0.5)
    assert m.beat_at_ms(end) == pytest.approx(m.total_beats - 0.5, abs=1e-9)
