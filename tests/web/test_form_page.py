"""The song's form on the follower page: the section strip, the call coming, the time left.

The pure part of ``web/form.js`` runs under node and must agree with the core's song model
(``core/song.SongMap``: the section of a bar, the song's time at a bar, ramps included).
Then a real server on loopback (its own conductor placing the sections), a real socket.io
leader and Debian's headless Chromium: the strip lights each section in the first frame of
its bar (read from the page's own timeline clock, ``data-since`` / ``data-before``), a jump
counts down "→ NAME · in N bars" and lights its section on the bar it lands on, a vamp shows
its badge, an end counts down and stops; a hostile section name is shown as typed; at the
four viewports of the layout tests the strip is one line on screen and the page one screen.

``BANDSYNC_SCREENS=docs/screens`` saves ``page-form-<w>x<h>.png`` there.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from bandsync_desktop.core.song import SongMap
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

#: The phone the timing tests run on (the layout test covers every viewport).
PHONE = (390, 844)

# -- the pure part, under node -------------------------------------------------------------

NODE_CHECK = r"""
const form = mod;
const out = {};
if (request.sections !== undefined) {
  const read = form.readForm(request.sections);
  out.read = read && { totalBars: read.totalBars, totalMs: read.totalMs,
    starts: read.sections.map((s) => [s.startBar, s.startMs]) };
  if (read) {
    out.sectionOf = request.bars.map((bar) => form.sectionOfBar(read, bar));
    out.msAt = request.at.map(([bar, beats]) => form.formMsAt(read, bar, beats));
    out.left = request.left.map(([bar, beats, call]) => {
      const show = form.readShow({ vamp: null, call }, read);
      return form.timeLeftMs(read, bar, beats, show.call);
    });
    out.calls = request.calls.map(([call, bar, now]) => {
      const show = form.readShow({ vamp: 1, call }, read);
      const phase = form.comingPhase(show.call, bar, now);
      const texts = phase.phase === 'pending' ? form.comingTexts(show.call, phase.bars) : null;
      return { vamp: show.vamp, shownVamp: form.vampShown(show, now), call: show.call, phase,
        line: texts && texts.text + texts.count };
    });
  }
}
if (request.many !== undefined) {
  out.many = request.many.map((raw) => form.readForm(raw) !== null);
}
if (request.shows !== undefined) {
  const read = form.readForm(request.showForm);
  out.shows = request.shows.map((raw) => form.readShow(raw, read));
}
if (request.times !== undefined) {
  out.times = request.times.map((ms) => form.formatLeft(ms));
}
process.stdout.write(JSON.stringify(out));
"""


def run_node(request: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = run_module("form.js", NODE_CHECK, request)
    return answer


#: A form with every kind of section: meter changes, tempo changes, a ritardando, an accel.
RICH = [
    {"name": "Intro", "bars": 4, "tempoBpm": 120},
    {"name": "Verse", "bars": 8, "tempoBpm": 120},
    {"name": "Pre", "bars": 2, "tempoBpm": 120, "beatsPerBar": 2},
    {"name": "Chorus", "bars": 8, "tempoBpm": 132, "rampToBpm": 100},
    {"name": "Bridge", "bars": 3, "tempoBpm": 180, "beatsPerBar": 7, "beatUnit": 8},
    {"name": "Build", "bars": 4, "tempoBpm": 90, "rampToBpm": 140, "beatsPerBar": 3},
    {"name": "Outro", "bars": 1, "tempoBpm": 60},
]


@needs_node
def test_the_pages_form_arithmetic_is_the_song_models() -> None:
    song = SongMap.from_dict({"sections": RICH})
    total = song.total_bars
    bars = list(range(-2, total + 4))
    at = [[bar, beats] for bar in range(1, total + 1) for beats in (0, 0.5, 1.75)]
    at = [[b, x] for b, x in at if x < song.sections[song.section_of_bar(b)].beats_per_bar]
    result = run_node({"sections": RICH, "bars": bars, "at": at, "left": [], "calls": []})
    read = result["read"]
    assert read["totalBars"] == total
    assert read["totalMs"] == pytest.approx(song.length_ms, abs=1e-6)
    for index, (start_bar, start_ms) in enumerate(read["starts"]):
        assert start_bar == song.section_start_bar(index)
        assert start_ms == pytest.approx(song.section_start_ms(index), abs=1e-6)
    # the section of every bar; before the first bar the first, past the last the last
    for bar, index in zip(bars, result["sectionOf"], strict=True):
        assert index == song.section_of_bar(max(bar, 1)), bar
    assert result["sectionOf"][0] == 0 and result["sectionOf"][-1] == len(RICH) - 1
    # the song's time at a bar and beat, inside ramps too
    for (bar, beats), ms in zip(at, result["msAt"], strict=True):
        assert ms == pytest.approx(song.ms_at_beat(song.beat_of_bar(bar) + beats), abs=1e-6)


@needs_node
def test_time_left_follows_the_form_and_the_call_waiting() -> None:
    song = SongMap.from_dict({"sections": RICH})
    end = {"kind": "end", "bar": 10, "atServerTime": None}
    jump = {"kind": "jump", "bar": 6, "section": 4, "sectionName": "Bridge", "atServerTime": 5.0}
    cases = [
        [1, 0, None],  # the top: the whole song
        [0, 0, None],  # counting in: the whole song too
        [5, 2, None],
        [song.total_bars, 3.5, None],
        [song.total_bars + 1, 0, None],  # over
        [3, 1, end],  # an end waiting: to its downbeat
        [10, 0, end],  # its downbeat came: as written
        [4, 0, jump],  # a jump waiting: to its downbeat, then from the bridge on
    ]
    result = run_node({"sections": RICH, "bars": [], "at": [], "left": cases, "calls": []})
    left = result["left"]
    here = [
        song.ms_at_beat(song.beat_of_bar(max(b, 1)) + x) if b >= 1 else 0.0 for b, x, _ in cases
    ]
    assert left[0] == pytest.approx(song.length_ms) and left[1] == pytest.approx(song.length_ms)
    assert left[2] == pytest.approx(song.length_ms - here[2])
    assert left[3] == pytest.approx(song.length_ms - here[3])
    assert left[3] < 1000.0  # half a bar of 4/4 at 60 BPM
    assert left[4] == 0
    assert left[5] == pytest.approx(song.ms_of_bar(10) - here[5])
    assert left[6] == pytest.approx(song.length_ms - here[6])
    bridge = song.section_start_ms(4)
    assert left[7] == pytest.approx(song.ms_of_bar(6) - here[7] + song.length_ms - bridge)
    times = [0, 1, 999, 1000, 1001, 59_000, 59_001, 61_000, 3_599_000, 3_600_000, 3_661_500]
    formatted = run_node({"times": [*times, -5, None]})["times"]
    expected = ["0:00", "0:01", "0:01", "0:01", "0:02", "0:59", "1:00", "1:01", "59:59"]
    assert formatted == [*expected, "1:00:00", "1:01:02", "0:00", "0:00"]


@needs_node
def test_a_call_counts_down_in_bars_and_is_gone_from_its_downbeat() -> None:
    jump = {"kind": "jump", "bar": 8, "section": 4, "sectionName": "Bridge", "atServerTime": 900.0}
    end = {"kind": "end", "bar": 6, "atServerTime": None}
    far = {**jump, "section": 6, "atServerTime": None}
    calls = [[jump, bar, 100.0] for bar in (5, 6, 7, 8, 9)]
    calls += [[end, bar, 100.0] for bar in (4, 5, 6)]
    calls += [[jump, 2, 900.0], [jump, 2, 899.0]]  # after a jump back the bar is below again
    calls += [[far, 3, 1e12]]  # not on the timeline yet: by the bar alone
    result = run_node({"sections": RICH, "bars": [], "at": [], "left": [], "calls": calls})
    lines = [answer["line"] for answer in result["calls"]]
    assert lines[:5] == [
        "→ BRIDGE · in 3 bars",
        "→ BRIDGE · in 2 bars",
        "→ BRIDGE · in 1 bar",
        None,
        None,
    ]
    assert lines[5:8] == ["END · in 2 bars", "END · in 1 bar", None]
    assert lines[8] is None and lines[9] == "→ BRIDGE · in 6 bars"
    assert lines[10] == "→ OUTRO · in 5 bars"  # the name is the form's, by the section's index
    assert result["calls"][0]["vamp"] == 1
    assert result["calls"][0]["phase"] == {"phase": "pending", "bars": 3}
    # the VAMP badge goes at a jump's instant on the page's own clock, not a snapshot later
    shown = [answer["shownVamp"] for answer in result["calls"]]
    assert shown[:8] == [1] * 8  # a jump before its instant, an end: still vamping
    assert shown[8] is None and shown[9] == 1  # at / just before the jump's instant
    assert shown[10] == 1  # a jump not on the timeline yet: by the server's word


@needs_node
def test_the_page_reads_only_a_well_formed_form_and_show() -> None:
    good = {"name": "Verse", "bars": 2, "tempoBpm": 120}
    bad: list[Any] = [
        None,
        [],
        "Verse",
        [good, None],
        [{**good, "name": ""}],
        [{**good, "name": "   "}],
        [{**good, "name": 7}],
        [{**good, "name": "x" * 41}],
        [{**good, "bars": 0}],
        [{**good, "bars": 2.5}],
        [{**good, "bars": "2"}],
        [{**good, "bars": 1000}],
        [{**good, "tempoBpm": 0}],
        [{**good, "tempoBpm": None}],
        [{**good, "tempoBpm": "fast"}],
        [{**good, "beatsPerBar": 0}],
        [{**good, "rampToBpm": -1}],
        [good] * 201,
    ]
    fine = [[good], [{**good, "name": "x" * 40, "rampToBpm": None}], [good] * 200]
    assert run_node({"many": fine + bad})["many"] == [True] * len(fine) + [False] * len(bad)
    form = [good, {**good, "name": "Chorus"}]
    shows: list[Any] = [
        None,
        "vamp",
        {"vamp": 1, "call": None},
        {"vamp": 2, "call": None},  # no such section
        {"vamp": True, "call": None},
        {"vamp": None, "call": {"kind": "jump", "bar": 3, "section": 5}},
        {"vamp": None, "call": {"kind": "jump", "bar": 3}},
        {"vamp": None, "call": {"kind": "jump", "bar": "3", "section": 1}},
        {"vamp": None, "call": {"kind": "land", "bar": 3}},
        {"vamp": None, "call": {"kind": "end", "bar": 3, "atServerTime": "soon"}},
        {"vamp": None, "call": {"kind": "jump", "bar": 3, "section": 1, "sectionName": "<b>"}},
    ]
    read = run_node({"shows": shows, "showForm": form})["shows"]
    none = {"vamp": None, "call": None}
    assert read[:2] == [none, none]
    assert read[2] == {"vamp": 1, "call": None}
    assert read[3] == none and read[4] == none
    assert read[5:9] == [none] * 4
    assert read[9]["call"] == {
        "kind": "end",
        "bar": 3,
        "section": None,
        "name": None,
        "atServerTime": None,
    }
    # the name shown is the form's own, whatever the call says
    assert read[10]["call"]["name"] == "Chorus"


# -- in Chromium -----------------------------------------------------------------------------

#: Records every change the page makes to the strip, as it makes it (a MutationObserver runs
#: right after the frame that drew it): the section lit, the frame it was lit in and the one
#: before, with the page's own bar at both, and what the hook says.
# ``beforeBar`` is the bar of the frame before, as the page drew it then (its bar:beat, drawn
# from the same instant as the strip): read afterwards from the timeline at ``before``, it
# failed when the snapshot of a jump's landing had already come (the server prunes what is
# past: the timeline then starts at the jump and gave bar 0); computed by the sampler at its
# own instant, it failed on a loaded machine whose frame ran past the jump before the sampler
# did (CI, 3 Dec: bar 7 for 3).
RECORD = """(() => {
  const box = document.getElementById('song-form');
  window.formLog = [];
  const num = (v) => (v === undefined || v === '' ? null : Number(v));
  // each frame, after the page's own (its callback was asked for first): the bar it drew
  const barbeat = document.getElementById('barbeat');
  let lastBar = null;
  const sample = () => {
    const drawn = /^(\\d+):\\d+$/.exec(barbeat.textContent);
    lastBar = barbeat.hidden || !drawn ? null : Number(drawn[1]);
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
  const note = () => {
    const since = num(box.dataset.since), before = num(box.dataset.before);
    const last = window.formLog[window.formLog.length - 1];
    const info = bandsync.form();
    const entry = {section: num(box.dataset.section), since, before,
      sinceBar: since === null ? null : bandsync.barBeat(since).bar,
      beforeBar: before === null ? null : lastBar,
      coming: info.coming, vamp: info.vamp, left: info.timeLeftS, hidden: box.hidden,
      comingHidden: document.getElementById('form-coming').hidden,
      now: bandsync.serverNow(), playing: bandsync.isPlaying};
    if (!last || last.section !== entry.section || last.coming !== entry.coming
        || last.vamp !== entry.vamp || last.left !== entry.left) {
      window.formLog.push(entry);
    }
  };
  new MutationObserver(note).observe(box, {attributes: true, childList: true, subtree: true,
    characterData: true});
  note();
  return 1;
})()"""


async def form_log(page: Page) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = await page.js("window.formLog")
    return log


def switches(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries in which another section was lit."""
    return [e for i, e in enumerate(log) if i == 0 or e["section"] != log[i - 1]["section"]]


def assert_lit_on_its_bar(entry: dict[str, Any], bar: int, bar_before: int) -> None:
    """The section was lit in the first frame of ``bar``; the frame before was in
    ``bar_before`` (the bar before, or before a jump the bar the jump left)."""
    assert entry["sinceBar"] == bar, entry
    assert entry["beforeBar"] == bar_before, entry
    assert entry["since"] - entry["before"] < 250.0, entry  # one frame (a loaded machine's is late)


def start_bars(sections: list[dict[str, Any]]) -> list[int]:
    song = SongMap.from_dict({"sections": sections})
    return [song.section_start_bar(i) for i in range(len(sections))]


async def play_form(leader: Any, page: Page, sections: list[dict[str, Any]], **song: Any) -> None:
    await command(leader, "set_song", song={"title": "Form", "sections": sections, **song})
    await page.wait(
        f"document.querySelectorAll('#form-strip .form-chip').length === {len(sections)}"
    )


WALK = [
    {"name": "Intro", "bars": 1, "tempoBpm": 240},
    {"name": "Verse", "bars": 2, "tempoBpm": 240},
    {"name": "Chorus", "bars": 1, "tempoBpm": 240, "beatsPerBar": 3},
    {"name": "Bridge", "bars": 1, "tempoBpm": 180},
    {"name": "Outro", "bars": 1, "tempoBpm": 240},
]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_strip_lights_each_section_on_its_bar_and_the_time_left_runs_down(
    browser, server
) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Guitar", PHONE)
        assert await page.js("document.getElementById('song-form').hidden") is True
        assert (await page.js("bandsync.form()"))["section"] is None
        await play_form(leader, page, WALK)
        names = await page.js(
            "[...document.querySelectorAll('#form-strip .form-chip')].map(c => c.textContent)"
        )
        assert names == [s["name"] for s in WALK]
        song = SongMap.from_dict({"sections": WALK})
        info = await page.js("bandsync.form()")
        assert info == {
            "section": 0,
            "sectionName": "Intro",
            "coming": None,
            "vamp": None,
            "timeLeftS": math.ceil(song.length_ms / 1000),
        }
        assert await page.text("#form-left-time") == f"0:{math.ceil(song.length_ms / 1000):02d}"
        await page.js(RECORD)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await page.wait("!bandsync.isPlaying", timeout=12)  # the form ends the song
        await page.page.wait_for_timeout(100)
        log = await form_log(page)
        lit = switches(log)
        assert [e["section"] for e in lit] == [0, 1, 2, 3, 4], lit
        for entry, bar in zip(lit[1:], start_bars(WALK)[1:], strict=True):
            assert_lit_on_its_bar(entry, bar, bar - 1)
        # the current chip is the one lit, and only it
        current = await page.js(
            "[...document.querySelectorAll('#form-strip .form-chip')]"
            ".map(c => c.classList.contains('current'))"
        )
        assert current == [False, False, False, False, True]  # past the end: the last
        # time left: down second by second while playing, 0:00 at the end
        playing = [e["left"] for e in log if e["playing"]]
        assert playing == sorted(playing, reverse=True), playing
        assert len(set(playing)) >= 5
        assert await page.text("#form-left-time") == "0:00"
        assert (await page.js("bandsync.form()"))["timeLeftS"] == 0
        assert all(e["coming"] is None for e in log)
        # a song without a form has no strip
        await command(leader, "set_song", song={"title": "Plain", "chart": "| C | G |"})
        await page.wait("document.getElementById('song-form').hidden")
        assert (await page.js("bandsync.form()"))["section"] is None
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


JUMPS = [
    {"name": "Intro", "bars": 2, "tempoBpm": 240},
    {"name": "Verse", "bars": 4, "tempoBpm": 240},
    {"name": "Bridge", "bars": 2, "tempoBpm": 240, "beatsPerBar": 3},
    {"name": "Outro", "bars": 2, "tempoBpm": 240},
]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_a_jump_counts_down_then_lights_its_section_on_the_bar(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Bass", PHONE)
        await play_form(leader, page, JUMPS)
        await page.js(RECORD)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await page.wait("bandsync.form().section === 1", timeout=4)  # the verse, bar 3
        # forward, at the next bar: from the verse's first bar to the bridge
        await command(leader, "jump", section="Bridge", at="bar")
        call = server.service.sessions["jam"].show.coming
        assert call is not None and call.kind == "jump" and call.section == 2
        await page.wait("bandsync.form().section === 2", timeout=4)
        await page.page.wait_for_timeout(50)
        log = await form_log(page)
        counted = [e["coming"] for e in log if e["coming"] is not None]
        assert counted and counted[-1] == "→ BRIDGE · in 1 bar", counted
        assert set(counted) <= {"→ BRIDGE · in 1 bar", "→ BRIDGE · in 2 bars"}, counted
        into_bridge = switches(log)[-1]
        assert into_bridge["section"] == 2
        bridge_bar = start_bars(JUMPS)[2]
        assert_lit_on_its_bar(into_bridge, bridge_bar, call.bar - 1)
        assert into_bridge["coming"] is None and into_bridge["comingHidden"] is True
        # backward, at the end of the section: from the bridge back to the intro
        await command(leader, "jump", section=0, at="section")
        await page.wait("bandsync.form().coming !== null", timeout=3)
        shown = await page.js("document.getElementById('form-coming').textContent")
        assert shown in {"→ INTRO · in 1 bar", "→ INTRO · in 2 bars"}, shown
        assert await page.js(
            "document.querySelectorAll('#form-strip .form-chip.target').length === 1 &&"
            " document.querySelectorAll('#form-strip .form-chip')[0].classList.contains('target')"
        )
        await page.wait("bandsync.form().section === 0", timeout=4)
        await page.page.wait_for_timeout(300)  # past the jump's instant: no countdown again
        log = await form_log(page)
        back = switches(log)[-1]
        assert back["section"] == 0 and back["sinceBar"] == 1, back
        assert back["beforeBar"] == bridge_bar + 1  # the bridge's last bar
        assert back["coming"] is None
        after = log[log.index(back) :]
        assert all(e["coming"] is None for e in after), after  # bar 1 < the call's bar: gone
        assert await page.js("document.getElementById('form-coming').hidden") is True
        assert await page.js("document.querySelectorAll('.form-chip.target').length") == 0
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


VAMP = [
    {"name": "Intro", "bars": 1, "tempoBpm": 240},
    {"name": "Groove", "bars": 2, "tempoBpm": 240},
    {"name": "Outro", "bars": 4, "tempoBpm": 240},
]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_a_vamp_shows_its_badge_and_an_end_counts_down_and_stops(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", PHONE)
        await play_form(leader, page, VAMP)
        await page.js(RECORD)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await page.wait("bandsync.form().section === 1", timeout=4)
        await command(leader, "vamp", on=True)
        await page.wait("bandsync.form().vamp === 1")
        badges = await page.js(
            "[...document.querySelectorAll('#form-strip .form-chip')]"
            ".map(c => c.querySelector('.form-vamp')?.textContent ?? null)"
        )
        assert badges == [None, "VAMP", None]
        # the groove comes round again: its first bar after its last, and still lit
        bars_seen: list[int] = []
        for _ in range(60):  # up to 3 s: the groove's 2 bars, then back to its first
            bar = (await page.js("bandsync.barBeat()"))["bar"]
            if not bars_seen or bars_seen[-1] != bar:
                bars_seen.append(bar)
            if bars_seen[-2:] == [3, 2]:
                break
            await page.page.wait_for_timeout(50)
        assert bars_seen[-2:] == [3, 2], bars_seen
        assert (await page.js("bandsync.form()"))["section"] == 1
        await command(leader, "vamp", on=False)
        await page.wait("bandsync.form().vamp === null")
        assert await page.js("document.querySelectorAll('.form-vamp').length") == 0
        # the end, at the next bar: a countdown, then the song stops on that downbeat
        await page.wait("bandsync.form().section === 2", timeout=4)
        await command(leader, "end", at="bar")
        call = server.service.sessions["jam"].show.coming
        assert call is not None and call.kind == "end"
        await page.wait("bandsync.form().coming !== null", timeout=2)
        assert (await page.js("bandsync.form()"))["coming"] in {"END · in 1 bar", "END · in 2 bars"}
        assert await page.js("document.getElementById('form-coming').dataset.kind") == "end"
        await page.wait("!bandsync.isPlaying", timeout=4)
        await page.page.wait_for_timeout(100)
        log = await form_log(page)
        counted = [e["coming"] for e in log if e["coming"] is not None]
        assert counted[-1] == "END · in 1 bar", counted
        assert (await page.js("bandsync.barBeat()"))["bar"] == call.bar
        info = await page.js("bandsync.form()")
        assert info["coming"] is None and info["section"] == 2
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.browser
@pytest.mark.asyncio
async def test_section_names_are_shown_as_typed_never_as_markup(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Drums", PHONE)
        sections = [
            {"name": "Intro", "bars": 2, "tempoBpm": 240},
            {"name": HOSTILE, "bars": 2, "tempoBpm": 240},
            {"name": "</span><b>bold</b>&amp;", "bars": 2, "tempoBpm": 240},
        ]
        await play_form(leader, page, sections)
        names = await page.js(
            "[...document.querySelectorAll('#form-strip .form-chip')].map(c => c.textContent)"
        )
        assert names == [s["name"] for s in sections]
        # each chip is a chip and its name: nothing the names brought
        assert await page.js("document.querySelectorAll('#form-strip *').length") == 6
        markup = "document.querySelectorAll('#song-form img, #song-form b').length"
        assert await page.js(markup) == 0
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await command(leader, "jump", section=HOSTILE, at="section")
        await page.wait("bandsync.form().coming !== null", timeout=3)
        text = await page.js("document.getElementById('form-coming-text').textContent")
        assert text == "→ " + HOSTILE.upper()
        assert await page.js("document.querySelectorAll('#form-coming *').length") == 2
        await page.wait(f"bandsync.form().sectionName === {json.dumps(HOSTILE)}", timeout=4)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


# -- on screen at the four viewports ---------------------------------------------------------

#: A real song's form: many sections, so the strip is wider than a phone.
SONG = [
    {"name": "Intro", "bars": 4, "tempoBpm": 160},
    {"name": "Verse 1", "bars": 8, "tempoBpm": 160},
    {"name": "Pre-Chorus", "bars": 4, "tempoBpm": 160},
    {"name": "Chorus", "bars": 8, "tempoBpm": 160},
    {"name": "Verse 2", "bars": 8, "tempoBpm": 160},
    {"name": "Chorus", "bars": 8, "tempoBpm": 160},
    {"name": "Bridge", "bars": 4, "tempoBpm": 160, "beatsPerBar": 3},
    {"name": "Last Chorus", "bars": 8, "tempoBpm": 150, "rampToBpm": 120},
    {"name": "Outro", "bars": 4, "tempoBpm": 120},
]

STRIP = """(() => {
  const r = (e) => { const b = e.getBoundingClientRect();
    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height,
            width: b.width}; };
  const box = document.getElementById('song-form');
  const strip = document.getElementById('form-strip');
  const current = strip.querySelector('.form-chip.current');
  const coming = document.getElementById('form-coming');
  const left = document.querySelector('.form-left');
  const size = (e) => parseFloat(getComputedStyle(e).fontSize);
  return {box: r(box), strip: r(strip), current: r(current), left: r(left),
          coming: coming.hidden ? null : r(coming),
          comingClipped: coming.hidden ? false : [...coming.children].some(
            (c) => c.scrollWidth > c.clientWidth + 1),
          currentClipped: current.firstChild.scrollWidth > current.firstChild.clientWidth + 1,
          chipFont: size(current), comingFont: size(coming), leftFont: size(left.firstChild),
          panel: r(box.parentElement), cue: document.getElementById('cue').hidden ? null :
            r(document.getElementById('cue')),
          controls: [...document.querySelectorAll('#controls, #controls *, #lead, #lead *')]
            .filter((e) => e.offsetParent !== null).map(r)};
})()"""


async def assert_strip_in_its_place(page: Page, label: str) -> dict[str, Any]:
    geo = await geometry(page)
    assert_fits_one_screen(geo, label)
    assert_on_screen(geo, "#chart-box")
    strip: dict[str, Any] = await page.js(STRIP)
    box, panel, row = strip["box"], strip["panel"], strip["strip"]
    # one line of chips about a finger's height, across the song panel, on screen; a call
    # waiting takes a second line only where it does not fit beside them (a phone)
    assert 20 <= row["height"] <= 48, (label, row)
    lines = 1 if strip["coming"] is None or strip["coming"]["top"] < row["bottom"] else 2
    assert box["height"] <= lines * 48 + 6, (label, box, lines)
    assert box["top"] >= -1 and box["bottom"] <= geo["innerHeight"] + 1, (label, box)
    assert panel["left"] - 1 <= box["left"] and box["right"] <= panel["right"] + 1, (label, box)
    # the lit chip inside the strip's visible part, whole
    current = strip["current"]
    assert row["left"] - 1 <= current["left"] and current["right"] <= row["right"] + 1, (
        label,
        current,
        row,
    )
    assert not strip["currentClipped"], label
    # the call and the time left whole, inside the line, big enough to read from 2 m
    for part in (strip["coming"], strip["left"]):
        if part is not None:
            inside = box["left"] - 1 <= part["left"] and part["right"] <= box["right"] + 1
            assert inside and box["top"] - 1 <= part["top"] <= part["bottom"] <= box["bottom"] + 1
    assert not strip["comingClipped"], (label, strip)
    assert strip["chipFont"] >= 17 and strip["comingFont"] >= 18 and strip["leftFont"] >= 17, strip
    for control in strip["controls"]:
        assert not rects_overlap(box, control), (label, box, control)
    if strip["cue"] is not None:
        assert not rects_overlap(box, strip["cue"]), (label, strip["cue"])
    return strip


def save_screen(shot: bytes, size: tuple[int, int]) -> None:
    folder = os.environ.get("BANDSYNC_SCREENS")
    if folder:
        path = Path(folder) / f"page-form-{size[0]}x{size[1]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(shot)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_strip_is_one_line_on_screen_with_its_call_and_time_left(browser, server) -> None:
    """Played once; each state looked at on the four screens (the page resized to each)."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", VIEWPORTS[0])
        song = {"title": "Autumn Leaves", "chart": LONG_CHART, "sections": SONG}
        await command(leader, "set_song", song=song)
        await command(leader, "update_message", message=MESSAGE)
        await page.wait("document.querySelectorAll('.chart-line').length > 10")
        await page.wait("!document.getElementById('song-form').hidden")
        async for size in each_viewport(page):
            await assert_strip_in_its_place(page, f"stopped {size}")
        # into the second chorus (bar 33), playing; a vamp on it and a jump to the bridge
        await command(leader, "seek", position=SongMap.from_dict({"sections": SONG}).ms_of_bar(33))
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn && bandsync.form().section === 5")
        async for size in each_viewport(page):
            await assert_strip_in_its_place(page, f"playing {size}")
        await command(leader, "vamp", on=True)
        await command(leader, "jump", section="Last Chorus", at="section")
        await page.wait("bandsync.form().coming !== null && bandsync.form().vamp === 5")
        coming = (await page.js("bandsync.form()"))["coming"]
        assert coming.startswith("→ LAST CHORUS · in ") and coming.endswith(" bars"), coming
        await page.wait("bandsync.barBeat().fraction > 0.6", timeout=3)  # the flash faded
        async for size in each_viewport(page):
            strip = await assert_strip_in_its_place(page, f"call and vamp {size}")
            assert strip["coming"] is not None, size
            save_screen(await page.page.screenshot(), size)
        # with a stage cue up, and on a phone that leads
        await command(leader, "cue", text="2× CHORUS", holdBars=16)
        await page.wait("document.getElementById('cue').dataset.phase === 'showing'", timeout=4)
        async for size in each_viewport(page):
            await assert_strip_in_its_place(page, f"cue {size}")
        member_id = await page.js("bandsync.memberId")
        await command(leader, "hand_over", to=member_id)
        await page.wait("bandsync.leading && !document.getElementById('lead').hidden")
        async for size in each_viewport(page):
            await assert_strip_in_its_place(page, f"leading {size}")
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()
