"""ChordPro: a chart's facts, sections and bars, read by the page's rule; written back."""

from __future__ import annotations

import codecs
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core import validation
from bandsync_desktop.core.chordpro import (
    MAX_FILE_BYTES,
    ChordProSong,
    decode_chordpro,
    export_chordpro,
    format_tempo,
    map_chart,
    normalize_chart,
    parse_chordpro,
    parse_directive,
)
from bandsync_desktop.core.errors import ErrorCode, ValidationError
from bandsync_desktop.core.song import Section

SONG = "\n".join(
    [
        "{title: Harbour Lights}",  # 0
        "{st: The Tide}",  # 1
        "{key: D}",  # 2
        "{capo: 2}",  # 3
        "{tempo: 96}",  # 4
        "{time: 4/4}",  # 5
        "{duration: 3:45}",  # 6
        "{x_made_up: kept}",  # 7 unknown: kept, ignored
        "| D | G |",  # 8: 2 bars before any label: the intro
        "{start_of_verse: Verse 1}",  # 9
        "[D]Lights on the [G]water",  # 10: 1 bar
        "| D | A | x2",  # 11: 4 bars
        "{time: 2/4}",  # 12: a 2/4 bar before the chorus, in the verse
        "| A |",  # 13: 1 bar
        "{end_of_verse}",  # 14
        "{soc}",  # 15
        "{time: 4/4}",  # 16: before the chorus' first bar: the whole chorus is 4/4
        "G  D  A  D",  # 17: 1 bar (chords, no bar lines)
        "Sing it out",  # 18 lyric: no time
        "{eoc}",  # 19
        "{c: Solo}",  # 20 a comment that names a section
        "|: Bm | G :| x2",  # 21: 4 bars
        "{c: brushes, softly}",  # 22 a comment that is a note: no section
        "[Bridge]",  # 23 a text header
        "{tempo: 104}",  # 24
        "| Em | A |",  # 25: 2 bars
        "{x_ramp: 80}",  # 26: the bridge's rest slows to 80
        "| Em | A | D | D |",  # 27: 4 bars
        "{eob}",  # 28
        "| D |",  # 29: 1 bar after the last label: the outro, at 80 still
    ]
)


def read(text: str = SONG, **kwargs: Any) -> ChordProSong:
    return parse_chordpro(text, **kwargs)


def sections(song: ChordProSong) -> list[tuple[Any, ...]]:
    assert song.song_map is not None
    return [
        (s.name, s.bars, s.tempo_bpm, f"{s.beats_per_bar}/{s.beat_unit}", s.ramp_to_bpm)
        for s in song.song_map.sections
    ]


def test_a_song_reads_its_facts_sections_tempo_meter_and_ramp() -> None:
    song = read()
    assert (song.title, song.subtitle, song.key, song.capo) == (
        "Harbour Lights",
        "The Tide",
        "D",
        "2",
    )
    assert (song.duration, song.duration_s) == ("3:45", 225.0)
    assert (song.tempo_bpm, song.meter, song.count_in_bars) == (96.0, (4, 4), None)
    assert song.unknown == ("x_made_up",)
    assert song.chart == SONG  # the chart itself is kept as it is
    assert sections(song) == [
        ("Intro", 2, 96.0, "4/4", None),
        ("Verse 1", 5, 96.0, "4/4", None),
        ("Verse 1", 1, 96.0, "2/4", None),  # the verse goes on in 2/4
        ("Chorus", 1, 96.0, "4/4", None),
        ("Solo", 4, 96.0, "4/4", None),
        ("Bridge", 2, 104.0, "4/4", None),
        ("Bridge", 4, 104.0, "4/4", 80.0),  # the ramp runs over the rest of the bridge
        ("Outro", 1, 80.0, "4/4", None),  # and its end tempo goes on
    ]
    assert song.section_lines == (8, 10, 13, 17, 21, 25, 27, 29)


def test_sections_start_on_the_bar_the_page_gives_their_first_line() -> None:
    song = read()
    assert song.song_map is not None
    page = song.chart_map
    assert song.song_map.total_bars == page.total_bars == 20
    for index, line in enumerate(song.section_lines):
        assert song.song_map.section_start_bar(index) == page.lines[line].start_bar + 1
    # the chart line playing in each section's first bar is that section's first line
    timed = page.timed
    for index, line in enumerate(song.section_lines):
        bar = song.song_map.section_start_bar(index) - 1
        playing = max(i for i in timed if page.lines[i].start_bar <= bar)
        assert playing == line


def test_the_page_kinds_and_bars_of_each_line() -> None:
    lines = read().chart_map.lines
    assert [(lines[i].kind, lines[i].bars) for i in (8, 10, 11, 17, 18, 21, 27)] == [
        ("bars", 2),
        ("inline", 1),
        ("bars", 4),
        ("chords", 1),
        ("text", 0),
        ("bars", 4),
        ("bars", 4),
    ]
    assert all(lines[i].kind == "header" for i in (0, 7, 9, 12, 20, 23, 26))


@pytest.mark.parametrize(
    ("chart", "names"),
    [
        ("| C |\n| G |", ["Song"]),  # no label at all: one section
        (
            "| C |\n{sov}\n| G |\n{eov}\n| F |\n{soc}\n| C |\n{eoc}\n| G |",
            ["Intro", "Verse", "Interlude", "Chorus", "Outro"],
        ),
        ('{start_of_verse label="Verse 2"}\n| C |', ["Verse 2"]),
        ('{start_of_verse: label="First"}\n| C |', ["First"]),
        (
            "{start_of_part: Solo}\n| C |\n{start_of_solo}\n| G |\n{start_of_grid}\n| F |",
            ["Solo", "Solo", "Grid"],
        ),
        (
            "Verse 1:\n| C |\n[Pre-Chorus]\n| G |\n{ci: Chorus x2}\n| F |",
            ["Verse 1", "Pre-Chorus", "Chorus x2"],
        ),
        ("{c: Swing, brushes}\n| C |\n{c: Verse 3}\n| G |", ["Intro", "Verse 3"]),
        ("{c: Bridge (guitar)}\n| C |\n{cb: Outro:}\n| G |", ["Bridge (guitar)", "Outro"]),
        ("[Verse]\n[Verse 2]\n| C |", ["Verse 2"]),  # the last label before a bar names it
        ("{soc}\n{eoc}\n{sov}\nwords only\n[C] [G]", ["Verse"]),  # no bars: no section
        (f"[{'Very long section name ' * 3}]\n| C |", ["Very long section name Very long sectio…"]),
    ],
)
def test_section_markers_and_names(chart: str, names: list[str]) -> None:
    assert [s[0] for s in sections(read(chart))] == names


def test_tempo_and_meter_change_from_the_next_bar() -> None:
    chart = "{sov}\n| C | G |\n{tempo: 140}\n{time: 7/8}\n| C |\n{tempo: 90}\n| G |\n{soc}\n| F |"
    assert sections(read(chart)) == [
        ("Verse", 2, 120.0, "4/4", None),  # the defaults before any {tempo}/{time}
        ("Verse", 1, 140.0, "7/8", None),  # two changes before one bar: one split
        ("Verse", 1, 90.0, "7/8", None),
        ("Chorus", 1, 90.0, "7/8", None),  # a tempo and a meter hold until changed
    ]
    song = read(chart, default_tempo_bpm=100.0, default_meter=(3, 4))
    assert sections(song)[0] == ("Verse", 2, 100.0, "3/4", None)
    assert (song.tempo_bpm, song.meter) == (None, None)  # the chart gave none for bar 1


def test_a_ramp_covers_its_section_and_a_tempo_after_it_wins() -> None:
    chart = "{tempo: 120}\n{x_ramp: 60}\n{sov}\n| C | G |\n{soc}\n| F |\n{tempo: 110}\n{sob}\n| C |"
    assert sections(read(chart)) == [
        ("Verse", 2, 120.0, "4/4", 60.0),
        ("Chorus", 1, 60.0, "4/4", None),
        ("Bridge", 1, 110.0, "4/4", None),
    ]
    song = read(chart)
    assert song.song_map is not None
    verse = song.song_map.sections[0]
    assert song.song_map.section_start_ms(1) == pytest.approx(verse.length_ms)
    assert verse.length_ms > 8 * 500.0  # slowing down: longer than 8 beats at 120


def test_charts_without_timed_lines_have_no_song_map_and_lyric_sheets_move() -> None:
    facts_only = read("{title: Notes}\n{tempo: 80}\n{c: tacet}")
    assert facts_only.song_map is None and facts_only.section_lines == ()
    assert (facts_only.title, facts_only.tempo_bpm) == ("Notes", 80.0)
    assert read("").song_map is None
    sheet = read("Verse:\nfirst line\nsecond line\nChorus:\nsing")
    assert sections(sheet) == [("Verse", 2, 120.0, "4/4", None), ("Chorus", 1, 120.0, "4/4", None)]


def test_real_world_text_crlf_bom_tabs_and_lone_cr() -> None:
    windows = "\ufeff{title: Tabbed}\r\n{tempo: 100}\r\nG\tC\tD\r\n|\tAm\t|\tF\t|\r\n\r\n"
    song = read(windows)
    assert song.chart == "{title: Tabbed}\n{tempo: 100}\nG\tC\tD\n|\tAm\t|\tF\t|"
    assert sections(song) == [("Song", 3, 100.0, "4/4", None)]
    old_mac = read("{title: Old}\r| C | G |\r")
    assert old_mac.chart == "{title: Old}\n| C | G |" and old_mac.title == "Old"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("{title: Café}\n".encode(), "{title: Café}\n"),
        (codecs.BOM_UTF8 + "{t: Naïve}".encode(), "{t: Naïve}"),
        (codecs.BOM_UTF16_LE + "{t: Über}".encode("utf-16-le"), "{t: Über}"),
        (codecs.BOM_UTF16_BE + "{t: Ø}".encode("utf-16-be"), "{t: Ø}"),
        (codecs.BOM_UTF32_LE + "{t: 🎸}".encode("utf-32-le"), "{t: 🎸}"),
    ],
)
def test_files_in_utf8_or_with_a_bom_decode(data: bytes, text: str) -> None:
    assert decode_chordpro(data) == text


def test_bytes_that_are_not_utf8_are_a_clear_error() -> None:
    latin1 = "{title: Cafe}\n{c: déjà vu}\n".encode("latin-1")
    with pytest.raises(ValidationError, match=r"line 2 is not UTF-8 text \(byte 0xE9\)") as info:
        decode_chordpro(latin1)
    assert "save the file as UTF-8" in info.value.message
    assert info.value.code == ErrorCode.INVALID_SONG
    with pytest.raises(ValidationError, match="bytes; a chart is at most") as info:
        decode_chordpro(b"| C |\n" * (MAX_FILE_BYTES // 6 + 1))
    assert info.value.code == ErrorCode.PAYLOAD_TOO_LARGE


def test_huge_charts_and_control_characters_are_refused() -> None:
    with pytest.raises(ValidationError, match="at most 20000") as info:
        read("| C |\n" * (validation.CHART_MAX // 6 + 1))
    assert info.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    with pytest.raises(ValidationError, match=r"line 3 holds a control character \(U\+0007\)"):
        read("{t: X}\n| C |\nbell\x07")
    assert normalize_chart("a\tb") == "a\tb"  # tabs are text


@pytest.mark.parametrize(
    ("chart", "code", "message"),
    [
        ("{title: X}\n{tempo: 300}", ErrorCode.INVALID_TEMPO, "line 2: tempo must be between"),
        ("{tempo: fast}", ErrorCode.INVALID_TEMPO, r"line 1: \{tempo: fast\} is not a tempo"),
        ("| C |\n{time: 4/3}", ErrorCode.INVALID_METER, "line 2: beatUnit must be"),
        ("{time: waltz}", ErrorCode.INVALID_METER, "is not a meter"),
        ("{time: 17/4}", ErrorCode.INVALID_METER, "beatsPerBar must be between"),
        ("| C |\n\n{x_ramp: 500}", ErrorCode.INVALID_TEMPO, "line 3: tempo must be"),
        ("{x_count_in: 9}", ErrorCode.INVALID_COUNT_IN, "line 1: countInBars"),
        ("{x_count_in: two}", ErrorCode.INVALID_COUNT_IN, "line 1: countInBars"),
        ("[V]\n" + "| C | x16\n" * 63, ErrorCode.INVALID_SONG, "line 64: the section 'V' passes"),
        ("[Solo]\n| C |\n" * 201, ErrorCode.INVALID_SONG, "201 sections; a song has at most 200"),
    ],
)
def test_bad_directives_name_their_line(chart: str, code: ErrorCode, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        read(chart)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("value", "tempo"),
    [("96", 96.0), ("96.5", 96.5), (" 120 BPM ", 120.0), ("72bpm", 72.0)],
)
def test_tempo_values(value: str, tempo: float) -> None:
    assert read(f"{{tempo: {value}}}\n| C |").tempo_bpm == tempo


@pytest.mark.parametrize(
    ("value", "meter"), [("3/4", (3, 4)), ("7 / 8", (7, 8)), ("C", (4, 4)), ("C|", (2, 2))]
)
def test_time_values(value: str, meter: tuple[int, int]) -> None:
    assert read(f"{{time: {value}}}\n| C |").meter == meter


def test_facts_first_value_wins_and_aliases_are_read() -> None:
    song = read("{t:}\n{t: One}\n{title: Two}\n{a: Someone}\n{artist: Else}\n{x_count_in: 2}")
    assert (song.title, song.artist, song.count_in_bars) == ("One", "Someone", 2)
    assert parse_directive("{ soc }") is not None and parse_directive("{soc}").name == (  # type: ignore[union-attr]
        "start_of_chorus"
    )
    assert read("{duration: 225}").duration_s == 225.0
    assert read("{duration: about 4 min}").duration_s is None


def test_the_known_directives_are_not_reported_unknown() -> None:
    chart = "{new_page}\n{chorus}\n{highlight: x}\n{x_lights: red}\n{define: G 1 3 2 0 0 0 3}"
    assert read(chart).unknown == ("x_lights",)


# -- export -----------------------------------------------------------------------------------


def export(song: ChordProSong, **overrides: Any) -> str:
    facts: dict[str, Any] = {
        "title": song.title or "Untitled",
        "tempo_bpm": song.tempo_bpm or 120.0,
        "beats_per_bar": (song.meter or (4, 4))[0],
        "beat_unit": (song.meter or (4, 4))[1],
        "count_in_bars": song.count_in_bars,
    }
    facts.update(overrides)
    return export_chordpro(song.chart, **facts)


def test_an_unchanged_song_exports_to_its_own_text() -> None:
    assert export(read()) == SONG + "\n"


def test_export_sets_the_songs_facts_and_keeps_the_mid_song_changes() -> None:
    text = export(read(), title="Harbour Lights (live)", tempo_bpm=92.5, beats_per_bar=3)
    again = read(text)
    assert (again.title, again.tempo_bpm, again.meter) == ("Harbour Lights (live)", 92.5, (3, 4))
    assert text.split("\n")[:6] == [
        "{title: Harbour Lights (live)}",
        "{st: The Tide}",
        "{key: D}",
        "{capo: 2}",
        "{tempo: 92.5}",
        "{time: 3/4}",
    ]
    assert "{time: 2/4}" in text and "{tempo: 104}" in text and "{x_ramp: 80}" in text
    assert sections(again)[5:] == sections(read())[5:]  # the bridge keeps its own tempo


def test_export_adds_missing_directives_after_the_title() -> None:
    plain = "C  G  Am  F\nwords"
    text = export_chordpro(
        plain, title="Opener", tempo_bpm=96.0, beats_per_bar=4, beat_unit=4, count_in_bars=2
    )
    assert (
        text == "{title: Opener}\n{tempo: 96}\n{time: 4/4}\n{x_count_in: 2}\nC  G  Am  F\nwords\n"
    )
    titled = export_chordpro(
        "{key: G}\n{t: Old}\n| G |", title="New", tempo_bpm=70, beats_per_bar=6, beat_unit=8
    )
    assert titled == "{key: G}\n{title: New}\n{tempo: 70}\n{time: 6/8}\n| G |\n"
    assert export_chordpro("", title="Empty", tempo_bpm=120, beats_per_bar=4, beat_unit=4) == (
        "{title: Empty}\n{tempo: 120}\n{time: 4/4}\n"
    )


@pytest.mark.parametrize("tempo", [96.0, 96.5, 96.33333333333333, 20.0, 279.99999999999997])
def test_tempo_is_written_so_that_it_reads_back_the_same(tempo: float) -> None:
    assert read(f"{{tempo: {format_tempo(tempo)}}}").tempo_bpm == tempo


chart_lines = st.sampled_from(
    [
        "| C | G |",
        "|: Am | F :| x2",
        "[C]Words [G]here",
        "G  D  Em",
        "lyrics only",
        "",
        "{soc}",
        "{eoc}",
        "{sov: Verse 2}",
        "[Bridge]",
        "Outro:",
        "{c: Solo}",
        "{c: a note}",
        "{tempo: 100}",
        "{time: 3/4}",
        "{x_ramp: 90}",
        "{title: Inside}",
        "{key: E}",
        "{x_other: 1}",
        "\t| D |\t",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    chart=st.lists(chart_lines, max_size=25).map("\n".join),
    title=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
    ).filter(lambda t: t.strip().strip("\ufeff") == t),
    tempo=st.floats(20.0, 280.0),
    meter=st.sampled_from([(4, 4), (3, 4), (7, 8), (2, 2), (12, 8)]),
    count_in=st.none() | st.integers(0, 4),
)
def test_import_export_import_is_a_fixed_point(
    chart: str, title: str, tempo: float, meter: tuple[int, int], count_in: int | None
) -> None:
    first = export_chordpro(
        chart,
        title=title,
        tempo_bpm=tempo,
        beats_per_bar=meter[0],
        beat_unit=meter[1],
        count_in_bars=count_in,
    )
    song = read(first)
    assert song.title == title
    assert song.tempo_bpm == tempo and song.meter == meter
    assert song.count_in_bars == (None if count_in in (None, 1) else count_in)
    second = export(song)
    assert second == first  # nothing moves the second time round
    assert read(second) == song
    # the timed lines and their bars are the chart's, whatever was set at the top
    assert song.chart_map.total_bars == map_chart(chart).total_bars
    if song.song_map is not None:
        assert song.song_map.sections[0].tempo_bpm == tempo  # the first bar plays at it
        assert (song.song_map.sections[0].beats_per_bar, song.song_map.sections[0].beat_unit) == (
            meter
        )


def test_section_objects_come_from_the_song_model() -> None:
    song = read("{sov}\n| C |")
    assert song.song_map is not None
    assert song.song_map.sections == (Section("Verse", 1, 120.0, 4, 4, None),)
