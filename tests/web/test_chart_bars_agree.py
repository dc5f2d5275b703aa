"""Every phone shows the same line at the same bar: the page and the core read charts alike.

The page maps chart lines to bars with ``web/chartmap.js``; the console and the song model
with ``core/chordpro.py``. Both run here over the same charts (hand-written tricky ones and
Hypothesis-made lines): every line's kind, bars, first bar and owner, the timed lines, the
total, and every directive as read must be the same, or a section would start on one bar
in the console and on another on the phones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.chordpro import map_chart, parse_chordpro, parse_directive
from tests.helpers.node import needs_node, run_check

CHECK = Path(__file__).with_name("chart_check.js")

pytestmark = needs_node

TRICKY_LINES = [
    # bar lines, repeats and their caps
    "| Cm7 | Fm7 | Dm7b5 G7 | Cm7 |",
    "|: Eb | Ab :| x2",
    "|| Dm7b5 | G7 ||",
    "| G | x999",
    "| C | x0",
    "| C | X4",
    "| C | (x3)",
    "| C | × 4",
    "| C | x2 | F |",  # a repeat mark not last is a bar
    "| |",
    "|   |   |",
    "|: :|",
    ":|",
    "| C |:",
    "A  E  |",
    "Verse | 1:",
    "C . . . | G . . . |",
    # chord lines and what is not one
    "Cm7        Fm7",
    "C/G  D/F#  Em7(b5)",
    "Cmaj7 Dm9 G13 Csus4 Cadd9 C° Cø CΔ7 C+ C- C#m7b5 Dbmaj9#11",
    "Bb Eb Ab Db Gb Cb",
    "C♯m7 D♭ E♭maj7",
    "N.C.",
    "NC",
    "N.C",
    "%",
    ". . . .",
    "/ / / /",
    "C x2",
    "C (x2)",
    "H7",  # German H is no chord here
    "Am I the one?",
    "Am",
    "A",
    "E  B  C#m  A    (x2)",
    "C(add9) G(no3) Am(maj7)",
    "C(abcdefghijkl)",  # 12 in the parentheses: a chord
    "C(abcdefghijklm)",  # 13: not
    # ChordPro inline chords
    "[C]Some [G]words",
    "| [C]Some | [G]words |",
    "[Am7b5]The falling [D7]leaves drift [Gm]by",
    "[C] [G]",
    "[C]",
    "[ C ]text",
    "[C]]",
    "[[C]]",
    "[H7]Text",
    "[C]Hello:",
    "[Chorus]:",
    "a[F]way",
    "no chords [Chorus] here",
    "[N.C.] stop",
    "[" + "C" * 24 + "]",
    "[" + "C" * 25 + "]",
    "[C(🎸🎸🎸🎸🎸🎸)]word",  # 6 emoji: 12 UTF-16 code units, a chord in JS
    "[C(🎸🎸🎸🎸🎸🎸🎸)]word",  # 7 emoji: 14 code units, not
    "🎸 [C🎸]",
    "[" + "🎸" * 12 + "]",
    "[" + "🎸" * 13 + "]",
    # headers and directives
    "{title: Blue Bossa}",
    "{t:Blue Bossa}",
    "{ key : Gm }",
    "{soc}",
    "{ soc }",
    "{start_of_chorus: Refrain}",
    '{start_of_verse label="Verse 1"}',
    "{c:}",
    "{c: hold: the last chord}",
    "{}",
    "{ }",
    "{1bad}",
    "{unterminated",
    "not {a directive}",
    "{x_ramp: 80}",
    "{tempo 96}",
    "{Start-Of-Chorus}",
    "{" + "a" * 40 + ": x}",
    "{" + "a" * 41 + ": x}",
    "{x\u2028y}",  # JS `.` stops at a line separator
    "[Intro]",
    "[]",
    "Verse:",
    "Verse 1:",
    "Outro:",
    # white space as JS sees it (trim, \\s) and Python does not
    "\u00a0| C |\u00a0",
    "\ufeff| C |",
    "\ufeffC G",
    "\u2028| C |",
    "\u3000C\u3000G\u3000",
    "\u1680[C]\u1680",
    "\x1c| C |\x1c",  # Python white space, not JS's
    "C\x85G",
    "C\x1fG",
    "\t| D |\t",
    "G\tC\tD",
    "| C |\r",
    "",
    "  ",
    "\t",
    # words
    "Blue bossa under the moon",
    "slow down here",
    "words with no chords",
]

CHARTS = [
    "\n".join(TRICKY_LINES),
    "\n".join(line for line in TRICKY_LINES if "|" not in line),
    "Verse:\nfirst line of words\nsecond line of words",  # a lyric sheet: a line a bar
    "[Intro]\n\nOutro:",
    "",
    "{title: X}\r\n| C | G |\r\n[C]words\r\n",
    "Am I the one?\nAm\n{soc}\n\ufeff\nwords",
    "\n".join(
        [
            "{title: Harbour Lights}",
            "{tempo: 96}",
            "| D | G |",
            "{start_of_verse: Verse 1}",
            "[D]Lights on the [G]water",
            "| D | A | x2",
            "{time: 2/4}",
            "| A |",
            "{end_of_verse}",
            "{soc}",
            "G  D  A  D",
            "Sing it out",
            "{eoc}",
            "{c: Solo}",
            "|: Bm | G :| x2",
            "[Bridge]",
            "{x_ramp: 80}",
            "| Em | A | D | D |",
        ]
    ),
]


def page_maps(charts: list[str]) -> list[dict[str, Any]]:
    """chartmap.js ``mapChart`` of each chart, under node."""
    result: list[dict[str, Any]] = run_check(CHECK, {"charts": charts, "bars": [[]] * len(charts)})
    return result


def page_directives(lines: list[str]) -> list[dict[str, Any] | None]:
    return [r["directive"] for r in run_check(CHECK, {"lines": lines})]


def core_map(chart: str) -> dict[str, Any]:
    chart_map = map_chart(chart)
    return {
        "lines": [
            {"kind": ln.kind, "bars": ln.bars, "startBar": ln.start_bar, "owner": ln.owner}
            for ln in chart_map.lines
        ],
        "timed": list(chart_map.timed),
        "totalBars": chart_map.total_bars,
    }


def assert_same_maps(charts: list[str]) -> None:
    for chart, page in zip(charts, page_maps(charts), strict=True):
        core = core_map(chart)
        lines = chart.split("\n")
        for index, (mine, theirs) in enumerate(zip(core["lines"], page["lines"], strict=True)):
            assert mine == theirs, f"line {index}: {lines[index]!r}"
        assert core["timed"] == page["timed"]
        assert core["totalBars"] == page["totalBars"]


def assert_same_directives(lines: list[str]) -> None:
    for line, theirs in zip(lines, page_directives(lines), strict=True):
        mine = parse_directive(line)
        assert (None if mine is None else {"name": mine.name, "value": mine.value}) == theirs, repr(
            line
        )


def test_tricky_charts_map_to_the_same_bars() -> None:
    assert_same_maps(CHARTS)
    # each tricky line alone too: a chart with no timed line moves a text line a bar
    assert_same_maps(TRICKY_LINES)


def test_tricky_lines_read_as_the_same_directives() -> None:
    assert_same_directives(TRICKY_LINES)


def test_section_starts_fall_on_the_bars_the_page_gives_their_lines() -> None:
    song = parse_chordpro(CHARTS[-1])
    (page,) = page_maps([song.chart])
    assert song.song_map is not None
    assert song.song_map.total_bars == page["totalBars"]
    for index, line in enumerate(song.section_lines):
        assert song.song_map.section_start_bar(index) == page["lines"][line]["startBar"] + 1


TOKENS = [
    "C",
    "Am7",
    "F#m7b5/C#",
    "Bb",
    "G/B",
    "Dsus4",
    "E7(#9)",
    "N.C.",
    "%",
    "x2",
    "(x3)",
    "×4",
    "X2",
    "|",
    "||",
    "|:",
    ":|",
    "[C]",
    "[Am]",
    "[Chorus]",
    "[",
    "]",
    "{",
    "}",
    "{soc}",
    "{c: Solo}",
    "{t:",
    ":",
    "Verse",
    "words",
    "I",
    "the",
    "H",
    "🎸",
    "-",
    "/",
    ".",
]
SEPARATORS = [" ", "  ", "\t", "", "\u00a0", "\ufeff", "\u3000", "\x1c"]
RAW = "ABCDEFGHNmajsuditoxX×#b♯♭°øΔ+-0123456789/()[]{}|:.%  \t\u00a0\ufeff\u2028🎸é"

token_lines = st.lists(
    st.tuples(st.sampled_from(SEPARATORS), st.sampled_from(TOKENS)), max_size=12
).map(lambda parts: "".join(sep + token for sep, token in parts))
raw_lines = st.text(alphabet=RAW, max_size=40)
any_lines = st.text(st.characters(blacklist_characters="\n"), max_size=30)
lines = st.one_of(token_lines, token_lines, raw_lines, any_lines)
charts = st.lists(lines, min_size=1, max_size=12).map("\n".join)


# One node run per example: a few examples of many charts each keep the test quick.
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(charts, min_size=8, max_size=16))
def test_generated_charts_map_to_the_same_bars(batch: list[str]) -> None:
    assert_same_maps(batch)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.one_of(lines, lines.map(lambda t: "{" + t + "}")), min_size=20, max_size=60))
def test_generated_lines_read_as_the_same_directives(batch: list[str]) -> None:
    assert_same_directives(batch)
