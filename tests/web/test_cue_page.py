"""The stage cue on the follower page: on its bar, with a countdown, and never in the way.

The pure part of ``web/cue.js`` runs under node and must agree with the core's rule
(``core.session.cue_phase``). Then a real server on loopback, a real socket.io leader and
Debian's headless Chromium: the frame in which the banner appears (read from the page's own
timeline clock, ``data-since``) is the first of the intended bar, and the frame before it
(``data-before``) the last of the bar before, also after a tempo change; it goes on the bar
its hold ends; at the four viewports of the layout tests it is fully on screen, covers none
of the controls (the player's and a leading phone's) and keeps the page one screen.

``BANDSYNC_SCREENS=docs/screens`` saves ``page-cue-<w>x<h>.png`` there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bandsync_desktop.core.session import Cue, cue_phase
from bandsync_desktop.core.timeline import Segment, Timeline
from tests.helpers.node import needs_node, run_module
from tests.helpers.viewports import VIEWPORTS, each_viewport

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
const cue = mod;
const answers = request.cases.map(([raw, bar]) => {
  const read = cue.readCue(raw);
  const state = cue.cuePhase(read, bar);
  return { read, state, texts: read ? cue.cueTexts(read, state) : null };
});
const lengths = request.texts.map((text) => cue.cueLength(text));
process.stdout.write(JSON.stringify({ answers, lengths, max: cue.CUE_TEXT_MAX }));
"""


def run_node(cases: list[list[Any]], texts: list[str]) -> dict[str, Any]:
    answer: dict[str, Any] = run_module("cue.js", NODE_CHECK, {"cases": cases, "texts": texts})
    return answer


def at_bar(bar: int, beats_per_bar: int = 4) -> Timeline:
    """A paused timeline standing on the downbeat of ``bar``."""
    beat = float((bar - 1) * beats_per_bar)
    return Timeline([Segment(0.0, 0.0, 0.0, beat, 120.0, False, beats_per_bar, 4)])


@needs_node
def test_the_pages_cue_rule_is_the_cores() -> None:
    cues = [Cue(1, "2× CHORUS", 5, 16.0, 0.0, 2), Cue(2, "BREAK", 1, 0.0, 0.0, 1)]
    cues.append(Cue(3, "x" * 40, 12, 33.0, 0.0, 16))
    cases = [[cue.to_wire(), bar] for cue in cues for bar in range(-1, 32)]
    answers = run_node(cases, [])["answers"]
    for (wire, bar), answer in zip(cases, answers, strict=True):
        core = cue_phase(Cue.from_wire(wire), at_bar(bar), 0.0)
        assert (answer["state"]["phase"], answer["state"]["bars"]) == core, (wire, bar)
        text, count = answer["texts"]["text"], answer["texts"]["count"]
        assert text == wire["text"]
        if core[0] == "pending":
            assert count == f" · in {core[1]} bar{'s' if core[1] > 1 else ''}", (bar, count)
        else:
            assert count == ""
    # the countdown as a player reads it, the bar before and the bar of a cue at bar 5
    by_bar = {bar: a for (w, bar), a in zip(cases, answers, strict=True) if w["id"] == 1}
    assert by_bar[3]["texts"]["text"] + by_bar[3]["texts"]["count"] == "2× CHORUS · in 2 bars"
    assert by_bar[4]["texts"]["text"] + by_bar[4]["texts"]["count"] == "2× CHORUS · in 1 bar"
    assert by_bar[5]["state"] == {"phase": "showing", "bars": 2}
    assert by_bar[7]["state"] == {"phase": "over", "bars": 0}


@needs_node
def test_the_page_reads_only_a_well_formed_cue() -> None:
    good = Cue(7, "OUTRO", 3, 8.0, 0.0, 2).to_wire()
    malformed: list[Any] = [
        None,
        "OUTRO",
        [good],
        {**good, "text": ""},
        {**good, "text": "   "},
        {**good, "text": 5},
        {**good, "text": "x" * 41},
        {**good, "atBar": "3"},
        {**good, "atBar": 2.5},
        {**good, "atBar": None},
        {**good, "holdBars": 0},
        {**good, "holdBars": True},
    ]
    result = run_node([[raw, 3] for raw in [good, *malformed]], [])
    assert result["max"] == 40
    first, *rest = result["answers"]
    assert first["read"] == {"id": 7, "text": "OUTRO", "atBar": 3, "holdBars": 2}
    assert first["state"] == {"phase": "showing", "bars": 2}
    for raw, answer in zip(malformed, rest, strict=True):
        assert answer["read"] is None and answer["state"]["phase"] == "none", raw


@needs_node
def test_long_cues_get_a_smaller_size_step() -> None:
    texts = ["BREAK", "x" * 12, "x" * 13, "GO TO THE BRIDGE NOW", "x" * 24, "x" * 25, "y" * 40]
    texts.append("🎸" * 12)  # counted by characters, not UTF-16 units
    lengths = run_node([], texts)["lengths"]
    assert lengths == ["short", "short", "medium", "medium", "medium", "long", "long", "short"]


# -- in Chromium -----------------------------------------------------------------------------

CUE_STATE = """(() => {
  const box = document.getElementById('cue');
  const num = (v) => (v === undefined || v === '' ? null : Number(v));
  return {phase: box.dataset.phase || 'none', id: num(box.dataset.cueId),
          since: num(box.dataset.since), before: num(box.dataset.before),
          hidden: box.hidden, text: box.textContent};
})()"""


async def cue_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.js(CUE_STATE)
    return state


def bar_start_ms(timeline: Timeline, bar: int, near_ms: float) -> float:
    """Server time of ``bar``'s downbeat in the segment in force around ``near_ms``."""
    segment = timeline.segment_at(near_ms)
    return segment.time_of_beat(float((bar - 1) * segment.beats_per_bar))


async def assert_switched_on_the_bar(page: Page, state: dict[str, Any], bar: int, at: float):
    """The phase changed in the first frame of ``bar``: the frame before was in the bar
    before, and the bar line ``at`` (server time) lies between the two frames."""
    before, since = state["before"], state["since"]
    assert before is not None and since is not None, state
    slack = 3.0  # the page's clock estimate against the server's, on loopback
    assert before - slack <= at <= since + slack, (before, at, since)
    assert since - before < 250.0, state  # one frame (a loaded machine's frame is late)
    assert (await page.js(f"bandsync.barBeat({since})"))["bar"] == bar
    assert (await page.js(f"bandsync.barBeat({before})"))["bar"] == bar - 1


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_banner_appears_on_its_bar_after_a_countdown_and_goes_after_its_hold(
    browser, server
) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Guitar", PHONE)
        await command(leader, "set_tempo", tempo=240)  # a bar a second
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        assert (await cue_state(page))["hidden"] is True
        await command(leader, "cue", text="2× CHORUS", inBars=1, holdBars=2)
        cue = server.service.sessions["jam"].cue
        assert cue is not None
        await page.wait("document.getElementById('cue').dataset.phase === 'pending'")
        seen: list[str] = []
        while (state := await cue_state(page))["phase"] == "pending":
            assert state["hidden"] is False
            if not seen or seen[-1] != state["text"]:
                seen.append(state["text"])
            await page.page.wait_for_timeout(40)
        assert seen[-1] == "2× CHORUS · in 1 bar", seen
        assert set(seen) <= {"2× CHORUS · in 2 bars", "2× CHORUS · in 1 bar"}, seen
        assert state["phase"] == "showing" and state["id"] == cue.id
        assert state["text"] == "2× CHORUS" and state["hidden"] is False
        await assert_switched_on_the_bar(page, state, cue.bar, cue.at_ms)
        # it holds two bars and goes by itself on the downbeat after them
        await page.wait("document.getElementById('cue').dataset.phase === 'over'", timeout=4)
        over = await cue_state(page)
        assert over["hidden"] is True
        timeline = server.service.sessions["jam"].timeline
        end = bar_start_ms(timeline, cue.until_bar, cue.at_ms)
        await assert_switched_on_the_bar(page, over, cue.until_bar, end)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_after_a_tempo_change_the_cue_still_lands_on_its_bar(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Bass", PHONE)
        await command(leader, "set_tempo", tempo=240)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await command(leader, "cue", text="BRIDGE", inBars=2)
        first = server.service.sessions["jam"].cue
        assert first is not None
        await command(leader, "set_tempo", tempo=180)  # on the next beat, before the cue's bar
        moved = server.service.sessions["jam"].cue
        assert moved is not None and moved.bar == first.bar
        assert moved.at_ms > first.at_ms + 100.0  # slower: its bar comes later
        await page.wait("bandsync.tempoBpm === 180", timeout=3)
        await page.wait("document.getElementById('cue').dataset.phase === 'showing'", timeout=6)
        state = await cue_state(page)
        await assert_switched_on_the_bar(page, state, moved.bar, moved.at_ms)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


def rects_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


CUE_BOX = """(() => {
  const r = (e) => { const b = e.getBoundingClientRect();
    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height}; };
  const box = document.getElementById('cue');
  const text = document.getElementById('cue-text');
  const s = getComputedStyle(box);
  return {box: r(box), text: r(text), panel: r(box.parentElement),
          fontSize: parseFloat(getComputedStyle(text).fontSize),
          color: s.color, background: s.backgroundColor,
          scrollWidth: box.scrollWidth, clientWidth: box.clientWidth,
          scrollHeight: box.scrollHeight, clientHeight: box.clientHeight,
          controls: [...document.querySelectorAll('#controls, #controls *, #lead, #lead *')]
            .filter((e) => e.offsetParent !== null).map(r)};
})()"""


def luminance(css: str) -> float:
    channels = [float(c) / 255 for c in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def assert_cue_in_its_place(page: Page, label: str, *, min_font: float) -> dict[str, Any]:
    geo = await geometry(page)
    assert_fits_one_screen(geo, label)  # the cue pushed nothing out of the one screen
    assert_on_screen(geo, "#chart-box")
    box: dict[str, Any] = await page.js(CUE_BOX)
    cue = box["box"]
    assert cue["height"] > 0, (label, box)
    assert cue["top"] >= -1 and cue["bottom"] <= geo["innerHeight"] + 1, (label, cue)
    assert cue["left"] >= -1 and cue["right"] <= geo["innerWidth"] + 1, (label, cue)
    # over the chart area, inside it, and wide: the chart area's whole width
    panel = box["panel"]
    assert panel["top"] - 1 <= cue["top"] and cue["bottom"] <= panel["bottom"] + 1, (label, box)
    assert cue["right"] - cue["left"] >= panel["right"] - panel["left"] - 1, (label, box)
    for control in box["controls"]:
        assert not rects_overlap(cue, control), (label, cue, control)
    # nothing of the text cut off, large, high contrast
    assert box["scrollWidth"] <= box["clientWidth"] + 1, (label, box)
    assert box["scrollHeight"] <= box["clientHeight"] + 1, (label, box)
    assert box["fontSize"] >= min_font, (label, box["fontSize"])
    assert contrast(box["color"], box["background"]) >= 7.0, (label, box)
    return box


def save_screen(page_shot: bytes, size: tuple[int, int]) -> None:
    folder = os.environ.get("BANDSYNC_SCREENS")
    if folder:
        path = Path(folder) / f"page-cue-{size[0]}x{size[1]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(page_shot)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.asyncio
async def test_the_banner_is_on_screen_and_covers_no_control(browser, server) -> None:
    """Played once; each state looked at on the four screens (the page resized to each)."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", VIEWPORTS[0])
        song = {"title": "Autumn Leaves", "chart": LONG_CHART, "tempo": 160}
        await command(leader, "set_song", song=song)
        await command(leader, "update_message", message=MESSAGE)
        await page.wait("document.querySelectorAll('.chart-line').length > 10")
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        # the countdown: two bars of 1.5 s at 160 BPM, pending long enough for four screens
        await command(leader, "cue", text="2× CHORUS", inBars=2, holdBars=16)
        await page.wait("document.getElementById('cue').dataset.phase === 'pending'")
        async for size in each_viewport(page):
            await assert_cue_in_its_place(page, f"countdown {size}", min_font=22)
            state = await cue_state(page)
            assert state["text"].startswith("2× CHORUS · in "), (size, state)
        assert (await cue_state(page))["phase"] == "pending"  # all four saw the countdown
        await page.wait("document.getElementById('cue').dataset.phase === 'showing'", timeout=7)
        await page.wait("bandsync.barBeat().fraction > 0.6", timeout=3)  # the flash faded
        async for size in each_viewport(page):
            shown = await assert_cue_in_its_place(page, f"shown {size}", min_font=30)
            # read from 2 m: a line of text at least 34 px tall (about 6 mm on a phone)
            assert shown["text"]["height"] >= 34, (size, shown)
            save_screen(await page.page.screenshot(), size)
        # the longest cue there may be still fits, whole
        longest = "Watch me: two more, then the coda softly"
        assert len(longest) == 40
        await command(leader, "cue", text=longest, holdBars=16)
        cue = server.service.sessions["jam"].cue
        assert cue is not None and cue.text == longest
        await page.wait(
            f"document.getElementById('cue').dataset.cueId === '{cue.id}'"
            " && document.getElementById('cue').dataset.phase === 'showing'",
            timeout=6,
        )
        assert await page.text("#cue-text") == longest
        async for size in each_viewport(page):
            await assert_cue_in_its_place(page, f"40 characters {size}", min_font=18)
        # a phone that leads: its transport is not covered either
        member_id = await page.js("bandsync.memberId")
        await command(leader, "hand_over", to=member_id)
        await page.wait("bandsync.leading && !document.getElementById('lead').hidden")
        async for size in each_viewport(page):
            box = await assert_cue_in_its_place(page, f"leading {size}", min_font=18)
            # the lead's buttons were checked
            assert any(c["height"] > 40 for c in box["controls"]), (size, box)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


@pytest.mark.browser
@pytest.mark.asyncio
async def test_cue_text_is_shown_as_typed_never_as_markup(browser, server) -> None:
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Drums", PHONE)
        await command(leader, "cue", text="<img src=x onerror=alert(1)>")
        await page.wait("document.getElementById('cue').dataset.phase === 'showing'")
        assert await page.text("#cue-text") == "<img src=x onerror=alert(1)>"
        assert await page.js("document.querySelectorAll('#cue *').length") == 2  # its two spans
        # stopped, it showed at once; a stop takes it off every phone
        await command(leader, "stop")
        await page.wait("document.getElementById('cue').hidden")
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()
