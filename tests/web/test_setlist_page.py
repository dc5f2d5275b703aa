"""The set on the follower page: the line with what comes next and the time left in the set,
and the whole set in a sheet.

The pure part of ``web/setlist.js`` runs under node: it reads only a well-formed set, and the
time left is the song playing's (its form) plus every later song's stated length, songs
without one counted ("41+ min left"). Then a real server on loopback, a real socket.io leader
and Debian's headless Chromium: the line shows next song, place and time left and follows
the song on the stands; a tap opens the set with the current song marked, Escape closes it;
hostile titles are shown as typed; at the four viewports of the layout tests the line is one
line on screen and the page still one screen, with a song, its form, a message and a cue.

``BANDSYNC_SCREENS=docs/screens`` saves ``page-set-<w>x<h>.png`` and ``-sheet`` there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.node import needs_node, run_module
from tests.helpers.viewports import VIEWPORTS, each_viewport

from .test_cue_page import rects_overlap
from .test_follower_page import Page, command, leader_of
from .test_page_layout import (
    LONG_CHART,
    MESSAGE,
    assert_fits_one_screen,
    assert_on_screen,
    geometry,
    open_at,
)

PHONE = (390, 844)

NODE_CHECK = r"""
const set = mod;
const out = { read: [], lines: [] };
for (const raw of request.read) {
  out.read.push(set.readSetlist(raw));
}
for (const [raw, songLeftMs] of request.lines) {
  const read = set.readSetlist(raw);
  const left = set.setLeft(read, songLeftMs);
  out.lines.push({ next: set.nextText(read), count: set.setCount(read), left,
    text: set.leftText(left, set.songsLeft(read)) });
}
process.stdout.write(JSON.stringify(out));
"""


def run_node(request: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = run_module("setlist.js", NODE_CHECK, request)
    return answer


def song(title: str, tempo: float | None = None, length_ms: float | None = None, **more: Any):
    return {"title": title, "tempo": tempo, "lengthMs": length_ms, **more}


SET = {
    "name": "Friday at the Rose",
    "current": 0,
    "songs": [
        song("Autumn Leaves", 240, None, beatsPerBar=4, beatUnit=4),
        song("Ballad", 72, 240_000, beatsPerBar=6, beatUnit=8),
        song("Closer", 140, 180_000),
    ],
}


@needs_node
def test_time_left_in_the_set_adds_the_song_playing_and_the_stated_lengths() -> None:
    timed = {**SET, "songs": [song("A", 100, 200_000), *SET["songs"][1:]]}
    cases = [
        (SET, 95_000),  # the song playing has a form: 95 s left of it
        (SET, None),  # it has none: counted, not guessed
        ({**SET, "current": 2}, 30_000),  # the last song
        ({**SET, "current": None}, None),  # nothing on the stands yet: the whole set
        ({**timed, "current": None}, None),
        ({**SET, "songs": [song("A"), song("B")], "current": 0}, None),  # nothing timed
        ({**SET, "current": 1}, None),  # no form playing: the current song's whole length
    ]
    out = run_node({"read": [], "lines": cases})["lines"]
    assert out[0]["next"] == {"label": "NEXT", "title": "Ballad", "facts": "72 BPM 6/8"}
    assert out[0]["count"] == "1/3"
    assert out[0]["left"] == {"ms": 95_000 + 240_000 + 180_000, "untimed": 0}
    assert out[0]["text"] == "9 min left"  # 515 s, rounded up
    assert out[1]["left"] == {"ms": 420_000, "untimed": 1} and out[1]["text"] == "7+ min left"
    assert out[2]["next"]["label"] == "LAST SONG" and out[2]["count"] == "3/3"
    assert out[2]["left"] == {"ms": 30_000, "untimed": 0} and out[2]["text"] == "1 min left"
    assert out[3]["next"]["title"] == "Autumn Leaves" and out[3]["count"] == "–/3"
    assert out[3]["left"] == {"ms": 420_000, "untimed": 1}
    assert out[4]["left"] == {"ms": 620_000, "untimed": 0} and out[4]["text"] == "11 min left"
    assert out[5]["text"] == "2 songs left"
    assert out[6]["left"] == {"ms": 420_000, "untimed": 0} and out[6]["text"] == "7 min left"


@needs_node
def test_the_page_reads_only_a_well_formed_set() -> None:
    good = song("A", 120, 1000)
    bad = [
        None,
        "set",
        {"songs": []},
        {"songs": [good] * 61},
        {"songs": [good, {"title": ""}]},
        {"songs": [good, {"title": "x" * 121}]},
        {"songs": [good, "B"]},
        {"songs": {"0": good}},
    ]
    read = run_node({"read": [*bad, {"songs": [good], "current": 5, "name": 7}], "lines": []})
    assert read["read"][: len(bad)] == [None] * len(bad)
    # out-of-range fields are dropped, not trusted: no current, no name
    assert read["read"][-1] == {
        "name": "",
        "current": None,
        "songs": [{"title": "A", "tempo": 120, "meter": None, "lengthMs": 1000}],
    }
    odd = {"songs": [{"title": "A", "tempo": -3, "lengthMs": -1}]}
    assert run_node({"read": [odd], "lines": []})["read"][0]["songs"][0] == {
        "title": "A",
        "tempo": None,
        "meter": None,
        "lengthMs": None,
    }


# -- in Chromium ----------------------------------------------------------------------------

LINE = """(() => {
  const r = (e) => { const b = e.getBoundingClientRect();
    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height}; };
  const line = document.getElementById('set-line');
  const parts = ['set-next-label', 'set-next-title', 'set-count', 'set-left']
    .map((id) => document.getElementById(id)).filter((e) => e.getClientRects().length > 0);
  const cue = document.getElementById('cue');
  const form = document.getElementById('song-form');
  return {line: line.hidden ? null : r(line), parts: parts.map(r),
          font: parseFloat(getComputedStyle(line).fontSize),
          whereClipped: (() => { const w = line.querySelector('.set-where');
            return w.scrollWidth > w.clientWidth + 1; })(),
          form: form.hidden ? null : r(form), cue: cue.hidden ? null : r(cue),
          controls: [...document.querySelectorAll('#controls, #controls *, #lead, #lead *')]
            .filter((e) => e.offsetParent !== null).map(r)};
})()"""


async def assert_line_in_its_place(page: Page, label: str, chart: bool = True) -> dict[str, Any]:
    geo = await geometry(page)
    assert_fits_one_screen(geo, label)
    if chart:
        assert_on_screen(geo, "#chart-box")
    found: dict[str, Any] = await page.js(LINE)
    line = found["line"]
    assert line is not None, label
    assert line["top"] >= -1 and line["bottom"] <= geo["innerHeight"] + 1, (label, line)
    assert 30 <= line["height"] <= 48, (label, line)  # one line, a finger's height
    assert found["font"] >= 16, found
    for part in found["parts"]:  # each part on the line (nothing wrapped below it)
        assert line["top"] - 1 <= part["top"] and part["bottom"] <= line["bottom"] + 1, (
            label,
            part,
        )
        assert line["left"] - 1 <= part["left"] and part["right"] <= line["right"] + 1
    assert not found["whereClipped"], label  # place and time left always whole
    for other in (found["form"], found["cue"], *found["controls"]):
        if other is not None:
            assert not rects_overlap(line, other), (label, line, other)
    return found


def save_screen(shot: bytes, size: tuple[int, int], state: str = "") -> None:
    folder = os.environ.get("BANDSYNC_SCREENS")
    if folder:
        suffix = f"-{state}" if state else ""
        path = Path(folder) / f"page-set-{size[0]}x{size[1]}{suffix}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(shot)


SONG_FORM = [
    {"name": "Intro", "bars": 4, "tempoBpm": 240},
    {"name": "Verse", "bars": 16, "tempoBpm": 240},
    {"name": "Chorus", "bars": 8, "tempoBpm": 240},
]


@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_line_follows_the_set_and_opens_the_whole_set(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", PHONE)
        assert await page.js("document.getElementById('set-line').hidden")
        await command(leader, "set_setlist", setlist=SET)
        song_on = {"title": "Autumn Leaves", "chart": LONG_CHART, "sections": SONG_FORM}
        await command(leader, "set_song", song=song_on)
        await page.wait("bandsync.setlist() !== null && bandsync.form().section === 0")
        info = await page.js("bandsync.setlist()")
        assert info["label"] == "NEXT" and info["next"] == "Ballad" and info["count"] == "1/3"
        # 28 bars of 4/4 at 240 BPM (28 s) + 4 min + 3 min
        assert info["leftMs"] == pytest.approx(28_000 + 420_000, abs=1) and info["untimed"] == 0
        assert info["left"] == "8 min left"
        text = " ".join((await page.text("#set-line")).split())
        assert text == "NEXT Ballad 72 BPM 6/8 1/3 · 8 min left", text
        # the next song on the stands: the line moves on
        await command(leader, "set_setlist", setlist={**SET, "current": 2})
        await page.wait("bandsync.setlist().label === 'LAST SONG'")
        assert (await page.js("bandsync.setlist()"))["count"] == "3/3"
        await command(leader, "set_setlist", setlist={**SET, "current": 1})
        await page.wait("bandsync.setlist().next === 'Closer'")
        # (the form playing is another song's: Ballad's whole 4 min + Closer's 3)
        assert (await page.js("bandsync.setlist()"))["leftMs"] == 420_000
        # a tap opens the set, the song on the stands marked, played ones dimmed
        await page.page.click("#set-line")
        await page.wait("!document.getElementById('set-sheet').hidden")
        rows = await page.js(
            "[...document.querySelectorAll('.set-song')].map((li) => ({"
            " text: li.textContent, current: li.getAttribute('aria-current'),"
            " done: li.classList.contains('done')}))"
        )
        assert [r["current"] for r in rows] == [None, "true", None]
        assert [r["done"] for r in rows] == [True, False, False]
        assert rows[1]["text"] == "2Ballad72 BPM 6/8 · 4:00"
        assert await page.js("document.activeElement.id") == "set-close"
        assert await page.text("#set-sheet-title") == "Friday at the Rose"
        save_screen(await page.page.screenshot(), PHONE, "sheet")
        await page.page.keyboard.press("Escape")
        await page.wait("document.getElementById('set-sheet').hidden")
        assert await page.js("document.activeElement.id") == "set-line"
        # the set off: the line goes
        await command(leader, "set_setlist", setlist=None)
        await page.wait("document.getElementById('set-line').hidden")
        assert await page.js("bandsync.setlist()") is None
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


HOSTILE = [
    '<img src=x onerror="window.pwned=1">',
    "</li><li>Fake song",
    "W" * 120,
    "\u202eesrever\u202c",
]


@pytest.mark.browser
@pytest.mark.asyncio
async def test_titles_are_shown_as_typed_never_as_markup(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", (360, 800))
        setlist = {"name": "<b>set</b>", "current": None, "songs": [song(t) for t in HOSTILE]}
        await command(leader, "set_setlist", setlist=setlist)
        await page.wait("bandsync.setlist() !== null")
        assert (await page.js("bandsync.setlist()"))["next"] == HOSTILE[0]
        await page.page.click("#set-line")
        await page.wait("!document.getElementById('set-sheet').hidden")
        titles = await page.js(
            "[...document.querySelectorAll('.set-song-title')].map((e) => e.textContent)"
        )
        assert titles == HOSTILE
        assert await page.js("document.querySelectorAll('#set-songs li').length") == 4
        assert (
            await page.js("document.querySelectorAll('#set-sheet img, #set-sheet b').length") == 0
        )
        assert await page.js("window.pwned === undefined")
        # the 120-character title wraps inside the sheet, never wider than the screen
        width = await page.js("document.scrollingElement.scrollWidth")
        assert width <= 360
        await page.page.click("#set-close")
        await page.wait("document.getElementById('set-sheet').hidden")
        await command(leader, "set_setlist", setlist={**setlist, "current": 1})
        await page.wait("bandsync.setlist().next === 'W'.repeat(120)")
        found = await assert_line_in_its_place(page, "long title", chart=False)
        assert found["line"]["right"] <= 360
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_line_is_on_screen_with_the_form_a_message_and_a_cue(browser, server) -> None:
    """Played once; each state looked at on the four screens (the page resized to each)."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", VIEWPORTS[0])
        await command(leader, "set_setlist", setlist=SET)
        song_on = {"title": "Autumn Leaves", "chart": LONG_CHART, "sections": SONG_FORM}
        await command(leader, "set_song", song=song_on)
        await command(leader, "update_message", message=MESSAGE)
        await page.wait("document.querySelectorAll('.chart-line').length > 10")
        await page.wait(
            "bandsync.setlist() !== null && !document.getElementById('song-form').hidden"
        )
        async for size in each_viewport(page):
            await assert_line_in_its_place(page, f"stopped {size}")
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await command(leader, "cue", text="2× CHORUS", holdBars=16)
        await page.wait("document.getElementById('cue').dataset.phase === 'showing'", timeout=4)
        await page.wait("bandsync.barBeat().fraction > 0.6", timeout=3)  # the flash faded
        async for size in each_viewport(page):
            await assert_line_in_its_place(page, f"playing, cue {size}")
            save_screen(await page.page.screenshot(), size)
        member_id = await page.js("bandsync.memberId")
        await command(leader, "hand_over", to=member_id)
        await page.wait("bandsync.leading && !document.getElementById('lead').hidden")
        async for size in each_viewport(page):
            await assert_line_in_its_place(page, f"leading {size}")
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


SEGUE_CHECK = r"""
const set = mod;
process.stdout.write(JSON.stringify(request.map(([raw, bar, now]) => {
  const segue = set.readSegue(raw);
  return segue && set.segueText(segue, bar, now);
})));
"""


@needs_node
def test_a_segue_counts_down_its_bars_then_says_now() -> None:
    segue = {"title": "Ballad", "at": "end", "bar": 11, "atServerTime": 5000.0}
    cases = [
        (segue, 9, 1000.0),
        (segue, 10, 2000.0),
        (segue, 11, 5000.0),
        ({**segue, "atServerTime": None}, 12, 6000.0),  # a vamp held it off
        ({**segue, "bar": None, "atServerTime": None}, 3, 1000.0),
        ({"title": "", "bar": 3}, 1, 0.0),
        ("Ballad", 1, 0.0),
    ]
    out = run_module("setlist.js", SEGUE_CHECK, cases)
    assert [o and o["facts"] for o in out] == [
        "in 2 bars",
        "in 1 bar",
        "now",
        "at the end",
        "at the end",
        None,
        None,
    ]
    assert out[0]["label"] == "STRAIGHT ON" and out[0]["title"] == "Ballad"


@pytest.mark.browser
@pytest.mark.asyncio
async def test_a_segue_shows_on_the_line_then_the_next_song_is_on_the_stands(
    browser, server
) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", PHONE)
        await command(leader, "set_song", song={"title": "Jam", "tempo": 120})
        await command(leader, "play", countInBars=0)
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        nxt = {"title": "Ballad", "tempo": 90, "beatsPerBar": 3, "countInBars": 1}
        await command(leader, "segue", song=nxt, at="bar")
        await page.wait("bandsync.setlist() !== null && bandsync.setlist().label === 'STRAIGHT ON'")
        info = await page.js("bandsync.setlist()")
        assert info["next"] == "Ballad" and info["facts"] == "in 1 bar" and info["count"] is None
        assert await page.js("document.getElementById('set-line').classList.contains('segue')")
        assert await page.js("document.querySelector('#set-line .set-where').hidden")
        found = await assert_line_in_its_place(page, "segue", chart=False)
        assert found["line"] is not None
        save_screen(await page.page.screenshot(), PHONE, "segue")
        # the count-in of the next song, then it is on the stands and the line goes
        await page.wait("document.getElementById('song-title').textContent === 'Ballad'", 6)
        await page.wait("document.getElementById('set-line').hidden", 3)
        await page.wait("bandsync.beatsPerBar === 3 && bandsync.isPlaying", 3)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()
