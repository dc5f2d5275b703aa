"""The page's chartmap.js: which chart line plays at which bar, the same on every phone.

Runs chartmap.js under node (as test_sync_math.py runs sync.js) and checks its answers against
charts whose form a musician would read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.node import needs_node, run_check

CHECK = Path(__file__).with_name("chart_check.js")

pytestmark = needs_node


def node_check(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Ask chart_check.js (chartmap.js under node) and return its answer."""
    result: list[dict[str, Any]] = run_check(CHECK, request)
    return result


def run(charts: list[str], bars: list[list[float]] | None = None) -> list[dict[str, Any]]:
    return node_check({"charts": charts, "bars": bars or [[] for _ in charts]})


SONG = "\n".join(
    [
        "{title: Blue Bossa}",  # 0 header
        "[Intro]",  # 1 header
        "| Cm7 | Fm7 | Dm7b5 G7 | Cm7 |",  # 2: 4 bars, 0-4
        "Verse:",  # 3 header
        "Cm7        Fm7",  # 4: chords, no bar lines: 1 bar, 4-5
        "Blue bossa under the moon",  # 5 lyric: follows line 4
        "",  # 6 blank
        "|: Eb | Ab :| x2",  # 7: 2 bars repeated: 4 bars, 5-9
        "|| Dm7b5 | G7 ||",  # 8: double bar lines: 2 bars, 9-11
        "slow down here",  # 9 note: follows line 8
        "N.C.",  # 10: 1 bar, 11-12
    ]
)


def test_bar_lines_count_bars_and_text_lines_take_no_time() -> None:
    (song,) = run([SONG])
    kinds = [line["kind"] for line in song["lines"]]
    assert kinds == [
        "header",
        "header",
        "bars",
        "header",
        "chords",
        "text",
        "blank",
        "bars",
        "bars",
        "text",
        "chords",
    ]
    assert [line["bars"] for line in song["lines"]] == [0, 0, 4, 0, 1, 0, 0, 4, 2, 0, 1]
    assert song["timed"] == [2, 4, 7, 8, 10]
    assert song["totalBars"] == 12
    starts = {i: song["lines"][i]["startBar"] for i in song["timed"]}
    assert starts == {2: 0, 4: 4, 7: 5, 8: 9, 10: 11}
    # a lyric or note line belongs to the chord line above; headers before the first chord
    # line belong to the first one
    owners = [line["owner"] for line in song["lines"]]
    assert owners == [2, 2, 2, 2, 4, 4, 4, 7, 8, 8, 10]


def test_line_at_bar_follows_the_form_and_clamps_at_both_ends() -> None:
    bars = [-2.0, 0.0, 3.99, 4.0, 4.5, 5.0, 8.99, 9.0, 11.0, 11.5, 12.0, 500.0]
    (song,) = run([SONG], [bars])
    indices = [at["index"] for at in song["at"]]
    assert indices == [2, 2, 2, 4, 4, 7, 7, 8, 10, 10, 10, 10]
    fractions = [at["fraction"] for at in song["at"]]
    assert fractions[0] == 0  # before the start: the top of the first line
    assert fractions[2] == pytest.approx(3.99 / 4)
    assert fractions[4] == pytest.approx(0.5)
    assert all(0 <= f < 1 for f in fractions)


def test_plain_lyric_sheets_move_a_line_a_bar_and_empty_charts_map_to_nothing() -> None:
    lyrics, empty, headers_only = run(
        ["Verse:\nfirst line of words\nsecond line of words", "", "[Intro]\n\nOutro:"],
        [[0.5, 1.5, 9.0], [3.0], [3.0]],
    )
    assert lyrics["timed"] == [1, 2]
    assert [at["index"] for at in lyrics["at"]] == [1, 2, 2]
    assert empty["timed"] == [] and empty["at"] == [None]
    assert headers_only["totalBars"] == 0 and headers_only["at"] == [None]


def test_hostile_repeat_counts_are_capped_and_odd_lines_stay_text() -> None:
    (song,) = run(["\n".join(["| G | x999", "Am I the one?", "{unterminated", "| |", "A  E  |"])])
    bars = [line["bars"] for line in song["lines"]]
    assert bars[0] == 16  # MAX_REPEAT: a typo cannot hold the chart for minutes
    assert song["lines"][1]["kind"] == "text"  # "Am" alone does not make a chord line
    assert song["lines"][2]["kind"] == "text"
    assert bars[3] == 1  # an empty bar is still a bar line's worth of time
    assert bars[4] == 1


def read(lines: list[str]) -> list[dict[str, Any]]:
    """Each line's ChordPro reading by chartmap.js: ``{directive, inline}``."""
    return node_check({"lines": lines})


CHORDPRO = "\n".join(
    [
        "{t: Autumn Leaves}",  # 0 directive
        "{key: Gm}",  # 1 directive
        "{c: Swing, brushes}",  # 2 directive
        "{soc}",  # 3 directive
        "[Am7b5]The falling [D7]leaves drift [Gm]by",  # 4: inline chords, no bar lines: 1 bar
        "| [Cm7]The autumn | [F7]leaves of | [Bb]red |",  # 5: inline with bar lines: 3 bars
        "{eoc}",  # 6 directive
        "words with no chords",  # 7: follows line 5
        "[Chorus]",  # 8 a header, not a chord
        "[G] [D/F#]",  # 9: bracketed chords only: a chord line, 1 bar
        "{x_made_up: anything}",  # 10 unknown directive: no time
        "[C]",  # 11: one bracketed chord: 1 bar
        "|: [Em]Hey | [A]ho :| x2",  # 12: 2 bars, repeated: 4
    ]
)


def test_chordpro_lines_take_their_bars_and_directives_take_none() -> None:
    (song,) = run([CHORDPRO], [[0.0, 1.0, 3.9, 4.0, 5.0, 6.0, 9.9]])
    kinds = [line["kind"] for line in song["lines"]]
    assert kinds == [
        "header",
        "header",
        "header",
        "header",
        "inline",
        "inline",
        "header",
        "text",
        "header",
        "chords",
        "header",
        "chords",
        "inline",
    ]
    assert [line["bars"] for line in song["lines"]] == [0, 0, 0, 0, 1, 3, 0, 0, 0, 1, 0, 1, 4]
    assert song["timed"] == [4, 5, 9, 11, 12]
    assert song["totalBars"] == 10
    owners = [line["owner"] for line in song["lines"]]
    assert owners == [4, 4, 4, 4, 4, 5, 5, 5, 5, 9, 9, 11, 12]
    assert [at["index"] for at in song["at"]] == [4, 5, 5, 9, 11, 12, 12]


def test_chordpro_directives_are_read_with_their_short_names() -> None:
    lines = [
        "{title: Autumn Leaves}",
        "{t:Blue Bossa}",
        "{st: Kosma}",
        "{ key : Gm }",
        "{capo: 2}",
        "{tempo: 120}",
        "{time: 3/4}",
        "{c: hold it}",
        "{comment: hold: the last chord}",
        "{soc}",
        "{start_of_chorus: Refrain}",
        "{eoc}",
        "{new_page}",
        "{capo 3}",
        "{unterminated",
        "not {a directive}",
    ]
    got = [r["directive"] for r in read(lines)]
    assert got[:13] == [
        {"name": "title", "value": "Autumn Leaves"},
        {"name": "title", "value": "Blue Bossa"},
        {"name": "subtitle", "value": "Kosma"},
        {"name": "key", "value": "Gm"},
        {"name": "capo", "value": "2"},
        {"name": "tempo", "value": "120"},
        {"name": "time", "value": "3/4"},
        {"name": "comment", "value": "hold it"},
        {"name": "comment", "value": "hold: the last chord"},
        {"name": "start_of_chorus", "value": ""},
        {"name": "start_of_chorus", "value": "Refrain"},
        {"name": "end_of_chorus", "value": ""},
        {"name": "new_page", "value": ""},
    ]
    assert got[13] == {"name": "capo", "value": "3"}
    assert got[14] is None and got[15] is None


def test_inline_chords_split_lyrics_at_the_syllable_they_sit_on() -> None:
    got = [
        r["inline"]
        for r in read(
            ["[G]Au[Em]tumn leaves", "a[F]way", "no chords [Chorus] here", "[N.C.] stop", "[C]"]
        )
    ]
    assert got[0] == [{"chord": "G", "text": "Au"}, {"chord": "Em", "text": "tumn leaves"}]
    assert got[1] == [{"chord": "", "text": "a"}, {"chord": "F", "text": "way"}]
    assert got[2] is None  # [Chorus] is no chord: the line stays text
    assert got[3] == [{"chord": "N.C.", "text": " stop"}]
    assert got[4] == [{"chord": "C", "text": ""}]
