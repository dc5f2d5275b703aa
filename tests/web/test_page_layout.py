"""What a player sees: the follower page's geometry at phone, landscape and tablet sizes.

Each test runs at the four viewports of issue 12 and asserts where things are on the screen
(``getBoundingClientRect``), not only what they say: the current chart line inside the chart's
visible box, the page fitting one screen with its controls reachable, the offline notice in
view, the leader's transport on a phone handed the lead. A real server on loopback, real
socket.io clients and Debian's headless Chromium, as in test_follower_page.py.

``BANDSYNC_SCREENS=docs/screens`` makes ``test_screenshots`` save
``page-<w>x<h>.png`` there (the set linked from the README).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.clients import Recorder

from .test_follower_page import SYNCED, Page, command, leader_of

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

VIEWPORTS = [(390, 844), (360, 800), (844, 390), (820, 1180)]

#: A chart of (line, bars it lasts): headers, lyrics and blank lines take no time.
FORM: list[tuple[str, int]] = [("{title: Autumn Leaves}", 0), ("[Intro]", 0)]
FORM += [("| Cm7 | F7 | Bbmaj7 | Ebmaj7 |", 4), ("", 0)]
for verse in range(1, 5):
    FORM += [
        (f"Verse {verse}:", 0),
        ("| Am7b5 | D7 | Gm | Gm |", 4),
        ("The falling leaves drift by the window", 0),
        ("Cm7   F7", 1),
        ("The autumn leaves of red and gold", 0),
        ("|: Am7b5 | D7 :| x2", 4),
        ("", 0),
    ]
FORM += [("[Coda]", 0), ("| Gm | Gm | Gm | N.C. |", 4), ("hold the last chord", 0)]
LONG_CHART = "\n".join(text for text, _ in FORM)
MESSAGE = "Watch the ending: vamp x4, then the coda on my nod"


def expected_line(bar: float) -> int:
    """The timed line of FORM playing at 0-based fractional ``bar`` (by construction)."""
    start = 0
    last = -1
    for index, (_, bars) in enumerate(FORM):
        if bars == 0:
            continue
        if bar < start + bars:
            return index
        start += bars
        last = index
    return last


def starts() -> dict[int, int]:
    """First bar of each timed line of FORM."""
    out, bar = {}, 0
    for index, (_, bars) in enumerate(FORM):
        if bars:
            out[index] = bar
            bar += bars
    return out


@pytest.fixture(params=VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def viewport(request: pytest.FixtureRequest) -> tuple[int, int]:
    size: tuple[int, int] = request.param
    return size


async def open_at(browser: Any, url: str, size: tuple[int, int], wait: str | None = SYNCED) -> Page:
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = Page(await context.new_page(), context)
    await page.page.goto(url)
    if wait:
        await page.wait(wait)
    return page


# Measured just after an animation frame (a task queued from a rAF callback runs once every
# callback of that frame, the page's render included, is done), so bar:beat and the
# highlighted line are milliseconds apart even on a loaded machine; a plain evaluate can land
# between a seek's snapshot and the next render.
GEOMETRY = """new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => resolve((() => {
  const rect = (sel) => {
    const e = document.querySelector(sel);
    if (!e || e.offsetParent === null && getComputedStyle(e).position !== 'fixed') return null;
    const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height};
  };
  const chart = document.getElementById('chart');
  const cr = chart.getBoundingClientRect();
  const line = chart.querySelector('.chart-line.current');
  const lines = [...chart.querySelectorAll('.chart-line')];
  const lr = line ? line.getBoundingClientRect() : null;
  return {
    bb: bandsync.barBeat(), beatsPerBar: bandsync.beatsPerBar,
    scrollHeight: document.scrollingElement.scrollHeight,
    scrollWidth: document.scrollingElement.scrollWidth,
    innerHeight: innerHeight, innerWidth: innerWidth,
    chart: {top: cr.top + chart.clientTop, bottom: cr.top + chart.clientTop + chart.clientHeight,
            left: cr.left, right: cr.right},
    chartBox: rect('#chart-box'),
    line: lr && {top: lr.top, bottom: lr.bottom, index: lines.indexOf(line)},
    lineCount: lines.length,
    controls: Object.fromEntries(['#click-toggle', '#nudge-down', '#nudge-up', '#leave',
      '#controls', '#chart-box', '#barbeat', '#countin', '#message', '#banner', '#lead',
      '#lead-play', '#lead-stop', '#lead-tempo', '#lead-slower', '#lead-faster']
      .map(s => [s, rect(s)])),
    playState: document.getElementById('play-state').textContent,
  };
})()), 0)))"""


async def geometry(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.page.evaluate(GEOMETRY)
    return result


def bar_position(geo: dict[str, Any]) -> float:
    bb = geo["bb"]
    return float(bb["bar"] - 1 + (bb["beat"] - 1 + bb["fraction"]) / geo["beatsPerBar"])


def assert_on_screen(geo: dict[str, Any], *selectors: str) -> None:
    for selector in selectors:
        r = geo["controls"][selector]
        assert r is not None, f"{selector} is not shown"
        assert r["height"] > 0, (selector, r)
        assert r["top"] >= -1 and r["bottom"] <= geo["innerHeight"] + 1, (selector, r, geo)
        assert r["left"] >= -1 and r["right"] <= geo["innerWidth"] + 1, (selector, r, geo)


def assert_fits_one_screen(geo: dict[str, Any], state: str) -> None:
    assert geo["scrollHeight"] <= geo["innerHeight"] + 1, (state, geo["scrollHeight"], geo)
    assert geo["scrollWidth"] <= geo["innerWidth"], (state, geo["scrollWidth"])
    assert_on_screen(geo, "#click-toggle", "#nudge-down", "#nudge-up", "#leave")


async def snap(page: Page, size: tuple[int, int], state: str = "") -> None:
    """Saves a screenshot as ``page-<w>x<h>[-<state>].png`` when BANDSYNC_SCREENS names a folder."""
    folder = os.environ.get("BANDSYNC_SCREENS")
    if folder:
        suffix = f"-{state}" if state else ""
        path = Path(folder) / f"page-{size[0]}x{size[1]}{suffix}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.page.screenshot(path=str(path))


async def load_song(leader: Recorder, tempo: float = 240, count_in: int = 0) -> None:
    song = {"title": "Autumn Leaves", "chart": LONG_CHART, "tempo": tempo, "countInBars": count_in}
    await command(leader, "set_song", song=song)
    await command(leader, "update_message", message=MESSAGE)


# -- item 1: the current line is always on screen, the same line on every phone -----------


async def test_current_chart_line_stays_inside_the_chart_box(browser, server, viewport):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Guitar", viewport)
        await load_song(leader)
        await page.wait(f"document.querySelectorAll('.chart-line').length === {len(FORM)}")
        # no per-phone "bars per line" choice: the chart's own bar lines say how long a line is
        assert await page.js("document.getElementById('chart-speed')") is None
        first = await geometry(page)
        assert first["line"] is not None and first["line"]["index"] == 2  # at 1:1, the intro
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        bar_starts = starts()
        total = sum(bars for _, bars in FORM)
        checked = 0
        # the start, the middle (a seek), the end (a seek, then past the last bar)
        for seek_bar in (None, 23, total - 2):
            if seek_bar is not None:
                await command(leader, "seek", position=seek_bar * 1000)  # 240 BPM 4/4: 1 s/bar
                await page.wait(f"bandsync.barBeat().bar >= {seek_bar + 1}")
            deadline = time.monotonic() + 3.2
            while time.monotonic() < deadline:
                geo = await geometry(page)
                line, chart = geo["line"], geo["chart"]
                assert line is not None, geo
                assert line["top"] >= chart["top"] - 1, (geo["bb"], line, chart)
                assert line["bottom"] <= chart["bottom"] + 1, (geo["bb"], line, chart)
                assert chart["bottom"] <= geo["innerHeight"] + 1, chart
                assert chart["top"] >= 0, chart
                bar = bar_position(geo)
                expected = expected_line(bar)
                start = bar_starts[expected]
                near_change = min(abs(bar - start), abs(bar - start - FORM[expected][1])) < 0.06
                if not near_change:
                    assert line["index"] == expected, (bar, line["index"], expected)
                    checked += 1
                await asyncio.sleep(0.12)
        assert checked >= 30
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


# -- item 2: one screen, controls reachable, in every state --------------------------------


async def test_page_fits_one_screen_in_every_state(browser, server, viewport):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Bass", viewport)
        await load_song(leader, tempo=120, count_in=2)
        await page.wait("document.querySelectorAll('.chart-line').length > 10")
        await page.wait("!document.getElementById('message').hidden")

        waiting = await geometry(page)
        assert waiting["playState"] == "Stopped"
        assert_fits_one_screen(waiting, "waiting")
        assert_on_screen(waiting, "#message", "#chart-box", "#barbeat")
        # the chart box takes the height that is left: at least three lines of it
        assert waiting["chartBox"]["height"] >= 3 * 1.5 * 16, waiting["chartBox"]

        await command(leader, "play")  # 2 bars of count-in at 120 BPM: 4 s
        await page.wait("bandsync.countingIn", timeout=3)
        count_in = await geometry(page)
        assert count_in["playState"] == "Count-in"
        assert_fits_one_screen(count_in, "count-in")
        assert_on_screen(count_in, "#countin", "#chart-box")
        await snap(page, viewport, "countin")
        # the count-in takes bar:beat's place: no "–:–" above or below it
        assert count_in["controls"]["#barbeat"] is None, count_in["controls"]["#barbeat"]

        await page.wait("bandsync.isPlaying && !bandsync.countingIn", timeout=6)
        await page.page.wait_for_timeout(300)
        playing = await geometry(page)
        assert playing["playState"] == "Playing"
        assert_fits_one_screen(playing, "playing")
        assert_on_screen(playing, "#barbeat", "#message", "#chart-box")

        await command(leader, "pause")
        await page.wait("!bandsync.isPlaying")
        await page.page.wait_for_timeout(100)
        paused = await geometry(page)
        assert paused["playState"] == "Paused"  # not "Stopped": the song holds its place
        assert_fits_one_screen(paused, "paused")

        # a late joiner waits for the next bar behind a "–:–" no larger than the count-in
        await command(leader, "set_tempo", tempo=30)  # a bar lasts 8 s
        await command(leader, "play", countInBars=0)
        late = await open_at(browser, f"{server.url}/s/jam?name=Late", viewport, wait=None)
        await late.wait("bandsync.lockAt !== null", timeout=5)
        locking = await geometry(late)
        assert locking["playState"].startswith("Joining")
        assert_fits_one_screen(locking, "joining at the next bar")
        placeholder = locking["controls"]["#barbeat"]
        count_in_size = await late.js(
            "parseFloat(getComputedStyle(document.getElementById('countin')).fontSize)"
        )
        assert placeholder is not None and placeholder["height"] <= count_in_size + 1
        assert page.errors == [] and late.errors == []
    finally:
        await leader.close()


# -- screenshots ----------------------------------------------------------------------------


async def test_screenshots(browser, server, viewport):
    """The playing page with a long chart and a message; saved when BANDSYNC_SCREENS is set."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_at(browser, f"{server.url}/s/jam?name=Keys", viewport)
        await load_song(leader, tempo=96)
        await page.wait(f"document.querySelectorAll('.chart-line').length === {len(FORM)}")
        await command(leader, "play")
        await command(leader, "seek", position=9 * 2500)  # 96 BPM 4/4: 2.5 s a bar; verse 2
        await page.wait("bandsync.isPlaying && bandsync.lockedIn && bandsync.barBeat().bar >= 10")
        # a beat's flash is fading, not at full strength, when the picture is taken
        await page.wait("bandsync.barBeat().fraction > 0.6", timeout=3)
        geo = await geometry(page)
        assert_fits_one_screen(geo, "playing")
        line, chart = geo["line"], geo["chart"]
        assert chart["top"] - 1 <= line["top"] and line["bottom"] <= chart["bottom"] + 1
        await snap(page, viewport)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


# -- item 3: offline does not look like playing ---------------------------------------------


async def test_offline_notice_is_in_view_and_the_page_keeps_time(browser, start_server, viewport):
    server = await start_server()
    # the leader's client must not retry (and leak its HTTP session) once the server is gone
    leader = Recorder(server.url, "leader", reconnection=False)
    await leader.connect()
    ack = await leader.call("join_session", {"sessionId": "jam", "role": "leader"})
    assert ack["ok"] is True
    page = await open_at(browser, f"{server.url}/s/jam?name=Drums", viewport)
    try:
        await load_song(leader, tempo=120)
        await page.wait(f"document.querySelectorAll('.chart-line').length === {len(FORM)}")
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        # a player who scrolled the chart and the page
        await page.js("(document.getElementById('chart').scrollTop = 1e6, scrollTo(0, 1e6), 1)")
        assert await page.text("#play-state") == "PLAYING"
        await server.stop()  # the server dies; the leader's lead (and the song) never ended
        started = time.monotonic()
        await page.wait("!document.getElementById('banner').hidden", timeout=3)
        banner_after = time.monotonic() - started
        await page.page.wait_for_timeout(200)
        geo = await geometry(page)
        assert_on_screen(geo, "#banner")
        assert "Offline" in await page.text("#banner")
        assert "can't reach you" in await page.text("#banner")
        # nothing covers the notice: the element at its centre is the notice
        covered = await page.js(
            "(() => { const b = document.getElementById('banner').getBoundingClientRect();"
            " const e = document.elementFromPoint((b.left + b.right) / 2, (b.top + b.bottom) / 2);"
            " return e && e.closest('#banner') !== null; })()"
        )
        assert covered is True
        assert geo["playState"] == "Offline", geo["playState"]
        assert await page.text("#play-state") != "PLAYING"
        # the band plays on: the page keeps the last tempo's time
        first = await page.js("bandsync.beat()")
        await page.page.wait_for_timeout(600)
        later = await page.js("bandsync.beat()")
        assert later - first == pytest.approx(1.2, abs=0.3)  # 120 BPM: 2 beats a second
        assert await page.js("bandsync.offline") is True
        assert banner_after < 3
        assert_fits_one_screen(geo, "offline")
        await snap(page, viewport, "offline")
        assert page.errors == []
    finally:
        await leader.close()
        await page.context.close()


# -- item 7: a phone handed the lead can lead -----------------------------------------------


async def test_a_phone_handed_the_lead_gets_the_transport(browser, server, viewport):
    leader = await leader_of(server.url, "jam")
    follower = Recorder(server.url, "follower")
    await follower.connect()
    try:
        ack = await follower.call("join_session", {"sessionId": "jam", "displayName": "Sax"})
        assert ack["ok"] is True
        page = await open_at(browser, f"{server.url}/s/jam?name=Alice", viewport)
        await load_song(leader, tempo=100)
        await page.wait("!document.getElementById('message').hidden")
        assert not await page.page.is_visible("#lead")  # a follower has no transport
        member_id = await page.js("bandsync.memberId")
        assert isinstance(member_id, str) and member_id

        await command(leader, "hand_over", to=member_id)
        await page.wait("bandsync.leading && !document.getElementById('lead').hidden")
        geo = await geometry(page)
        assert_fits_one_screen(geo, "leading")
        assert_on_screen(geo, "#lead", "#lead-play", "#lead-stop", "#lead-tempo", "#lead-slower")
        assert_on_screen(geo, "#lead-faster", "#chart-box")
        await snap(page, viewport, "leading")
        assert "You lead the band" in await page.text("#lead")
        assert await page.text("#leader-label") == "Leader: Alice"
        sizes = await page.js(
            "[...document.querySelectorAll('#lead button, #lead input')]"
            ".map(b => { const r = b.getBoundingClientRect(); return [r.width, r.height]; })"
        )
        assert all(w >= 44 and h >= 44 for w, h in sizes), sizes

        # the page's Play reaches the band as the protocol's play
        playing = follower.next("play")
        await page.page.click("#lead-play")
        await asyncio.wait_for(playing, 3)
        await page.wait(
            "bandsync.isPlaying && document.getElementById('lead-play').textContent === 'Pause'"
        )
        # a typed tempo: Enter sends it and gives the keyboard back
        tempo = follower.next("tempo_changed")
        await page.page.fill("#lead-tempo", "133")
        await page.page.press("#lead-tempo", "Enter")
        changed = await asyncio.wait_for(tempo, 3)
        assert changed["tempoBpm"] == 133, changed
        assert await page.js("document.activeElement && document.activeElement.id") != "lead-tempo"
        tempo = follower.next("tempo_changed")
        await page.page.click("#lead-faster")
        assert (await asyncio.wait_for(tempo, 3))["tempoBpm"] == 134
        paused = follower.next("pause")
        await page.page.click("#lead-play")
        await asyncio.wait_for(paused, 3)
        await page.wait("!bandsync.isPlaying")
        stopped = follower.next("snapshot")
        await page.page.click("#lead-stop")
        await asyncio.wait_for(stopped, 3)
        await page.wait("bandsync.positionMs() === 0")

        # the lead moves away again: the transport goes
        await command(leader, "set_role", role="leader")
        await page.wait("!bandsync.leading && document.getElementById('lead').hidden")
        assert await page.text("#leader-label") == "Leader: Lead"
        assert page.errors == [] and page.console_errors == []
    finally:
        await follower.close()
        await leader.close()
