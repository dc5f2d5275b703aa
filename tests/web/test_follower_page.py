"""The follower page in a real headless Chromium against a real server on loopback.

The leader is a real socket.io client (``Recorder``); each page gets its own browser context,
so each has its own localStorage (name and clientId), as separate phones would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from bandsync_desktop.config import Settings
from bandsync_desktop.server.app import ServerRunner, create_app
from tests.helpers.clients import Recorder, assert_tracks_server_clock

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

SYNCED = (
    "bandsync.connected && bandsync.offsetUncertaintyMs !== null && bandsync.syncSampleCount >= 5"
)


class Page:
    """A page in its own context that records script errors and every request URL."""

    def __init__(self, page: Any, context: Any) -> None:
        self.page = page
        self.context = context
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )

    async def wait(self, condition: str, timeout: float = 5.0) -> None:
        await self.page.wait_for_function(f"() => {condition}", timeout=timeout * 1000)

    async def js(self, expression: str) -> Any:
        return await self.page.evaluate(f"() => {expression}")

    async def text(self, selector: str) -> str:
        return str(await self.page.inner_text(selector))


async def open_page(browser: Any, url: str, *, wait: str | None = SYNCED) -> Page:
    context = await browser.new_context()
    page = Page(await context.new_page(), context)
    await page.page.goto(url)
    if wait:
        await page.wait(wait)
    return page


async def leader_of(url: str, session_id: str, **join: Any) -> Recorder:
    leader = Recorder(url, "leader")
    await leader.connect()
    ack = await leader.call(
        "join_session",
        {"sessionId": session_id, "displayName": "Lead", "role": "leader", **join},
    )
    assert ack["ok"] is True and ack["role"] == "leader"
    return leader


async def command(leader: Recorder, event: str, **payload: Any) -> None:
    ack = await leader.call(event, {"sessionId": "jam", **payload})
    assert ack["ok"] is True, ack


async def beat_spread_ms(pages: list[Page], tempo: float) -> float:
    """Largest difference between pages' beat at one true instant, in ms.

    ``performance.timeOrigin + performance.now()`` is the browser's shared clock (HR-Time), so
    each page's beat can be carried to the same instant of that clock and compared.
    """
    # One local instant per page, read once: the beat at that instant's server time (a pause
    # of the page's thread between two readings of the clock must not count as spread).
    at_one_instant = (
        "(() => { const n = performance.now();"
        " return [performance.timeOrigin + n, bandsync.beat(n + bandsync.offsetMs)]; })()"
    )
    readings = [await p.js(at_one_instant) for p in pages]
    instant = readings[0][0]
    beats = [beat + (instant - shared) * tempo / 60_000 for shared, beat in readings]
    return (max(beats) - min(beats)) * 60_000 / tempo


async def test_pages_follow_tempo_and_play_and_agree_on_the_beat(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        pages = [await open_page(browser, f"{server.url}/s/jam?name=Player{i}") for i in (1, 2)]
        await command(leader, "set_tempo", tempo=150)
        await command(leader, "play")
        for page in pages:
            await page.wait("bandsync.tempoBpm === 150 && bandsync.isPlaying && bandsync.lockedIn")
            assert await page.text("#tempo") == "150"
            assert await page.text("#play-state") == "PLAYING"  # text-transform: uppercase
            await assert_tracks_server_clock(page, server, slack_ms=3.0)
        spreads = [await beat_spread_ms(pages, 150.0) for _ in range(5)]
        assert max(spreads) < 3.0, spreads
        bar_beat = await pages[0].text("#barbeat")
        bar, beat = (int(x) for x in bar_beat.split(":"))
        assert bar >= 1 and 1 <= beat <= 4
        names = {m["displayName"] for m in leader.last("snapshot")["members"]}
        assert {"Player1", "Player2", "Lead"} <= names
        # a tempo change while playing lands on the same beat for both pages
        await command(leader, "set_tempo", tempo=96)
        for page in pages:
            await page.wait("bandsync.tempoBpm === 96")
        starts = [await p.js("bandsync.segments().map(s => s.start)") for p in pages]
        assert starts[0] == starts[1]
        assert max([await beat_spread_ms(pages, 96.0) for _ in range(3)]) < 3.0
        for page in pages:
            assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


async def test_count_in_counts_down_then_plays_and_late_joiner_enters_on_a_bar(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Drums")
        await command(leader, "set_tempo", tempo=240)
        await command(leader, "set_count_in", bars=2)
        await command(leader, "play")
        await page.wait("bandsync.countingIn", timeout=2)
        assert await page.text("#play-state") == "COUNT-IN"
        assert await page.text("#countin") in {str(n) for n in range(1, 9)}
        await page.wait("bandsync.isPlaying && !bandsync.countingIn", timeout=4)
        await page.wait("document.getElementById('countin').hidden")
        assert await page.text("#play-state") == "PLAYING"
        beat = await page.js("bandsync.beat()")
        assert 0 <= beat < 8

        late = await open_page(browser, f"{server.url}/s/jam?name=Late", wait=None)
        await late.wait("bandsync.lockAt !== null || bandsync.lockedIn", timeout=5)
        lock_at = await late.js("bandsync.lockAt")
        if lock_at is not None:  # the page waits for the next bar line
            where = await late.js(f"bandsync.barBeat({lock_at})")
            assert where["beat"] == 1 and where["fraction"] == pytest.approx(0, abs=1e-6)
        await late.wait("bandsync.lockedIn", timeout=3)
        assert await late.text("#play-state") == "PLAYING"
        assert await beat_spread_ms([page, late], 240.0) < 3.0
        assert page.errors == [] and late.errors == []
    finally:
        await leader.close()


async def test_a_reschedule_leaves_a_click_already_on_its_way_out_alone(browser, server):
    """A click the audio thread has rendered but the speaker has not played yet (its audio
    time is behind currentTime, its instant still ahead) is not placed a second time, nor
    logged late, when the clicks are placed again (here: the page coming back into view)."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Keys")
        await command(leader, "set_tempo", tempo=150)
        await command(leader, "play")
        await page.page.click("#click-toggle")
        await page.wait("bandsync.clickTimes().filter(c => !c.cancelled).length >= 3", timeout=4)
        # In the page, so that no round trip sits between seeing the moment and acting on it:
        # wait for a click in that state, then place again at once.
        caught = await page.page.evaluate(
            """async () => {
              const b = window.bandsync;
              const caught = [];
              const until = performance.now() + 4000;
              while (caught.length < 3 && performance.now() < until) {
                const now = b.serverNow();
                const out = b.clickTimes().find((c) => !c.cancelled && !c.late &&
                  c.audioTime < b.audioTime && c.playServerTime > now + 0.5);
                if (out && !caught.includes(out.beat)) {
                  document.dispatchEvent(new Event('visibilitychange'));
                  caught.push(out.beat);
                }
                await new Promise((resolve) => setTimeout(resolve, 0));
              }
              return caught;
            }"""
        )
        assert len(caught) == 3, caught  # the output latency leaves such a moment every beat
        await asyncio.sleep(0.5)
        clicks = await page.js("bandsync.clickTimes()")
        for beat in caught:
            of_beat = [c for c in clicks if c["beat"] == beat and c["sub"] == 0]
            assert [c["cancelled"] or c["late"] for c in of_beat] == [False], of_beat
        live = sorted(c["beat"] for c in clicks if not c["cancelled"])
        assert live == list(range(live[0], live[0] + len(live))), live  # each beat once
        assert page.errors == []
    finally:
        await leader.close()


async def test_nudge_shifts_the_click_schedule(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Keys")
        await command(leader, "set_tempo", tempo=200)
        await command(leader, "play")
        await page.page.click("#click-toggle")  # a user gesture starts the audio clock
        await page.wait("bandsync.clickEnabled && bandsync.clickTimes().length >= 3", timeout=3)
        assert await page.js("bandsync.audioState") == "running"
        before = await page.js("bandsync.clickTimes()")
        # clicks fall on the beats, one beat apart, on the audio clock too
        live = [c for c in before if not c["cancelled"]]
        gaps = [b["audioTime"] - a["audioTime"] for a, b in itertools.pairwise(live)]
        assert all(abs(gap - 0.3) < 0.002 for gap in gaps), gaps
        for click in live:
            assert click["playServerTime"] == click["beatServerTime"]

        for _ in range(4):
            await page.page.click("#nudge-up")
        assert await page.js("bandsync.nudgeMs") == 20
        assert await page.text("#nudge-value") == "+20 ms"
        # the latency of the output in use (the speaker), kept per device; positive = earlier
        stored = await page.js("JSON.parse(localStorage.getItem('bandsync.outputDelays'))")
        assert stored == {"speaker": 20, "wired": 0, "bluetooth": 0}
        await page.wait("bandsync.clickTimes().filter(c => c.nudgeMs === 20).length >= 3")
        after = [c for c in await page.js("bandsync.clickTimes()") if c["nudgeMs"] == 20]
        for click in after:
            assert click["playServerTime"] - click["beatServerTime"] == pytest.approx(-20)
        # same beat before and after the nudge: its audio time moved 20 ms earlier
        by_beat = {c["beat"]: c for c in before if c["nudgeMs"] == 0}
        both = [(by_beat[c["beat"]], c) for c in after if c["beat"] in by_beat]
        if both:
            old, new = both[0]
            assert new["audioTime"] - old["audioTime"] == pytest.approx(-0.020, abs=0.002)
        # and relative to the beat grid every nudged click sits 20 ms earlier than an unnudged one
        first_old, first_new = live[0], after[0]
        expected_gap = (first_new["beatServerTime"] - first_old["beatServerTime"] - 20) / 1000
        assert first_new["audioTime"] - first_old["audioTime"] == pytest.approx(
            expected_gap, abs=0.002
        )
        for _ in range(80):
            await page.page.click("#nudge-up", force=True)  # (disabled at the top)
        assert await page.js("bandsync.nudgeMs") == 400  # clamped at +400 ms
        assert page.errors == []
    finally:
        await leader.close()


async def test_page_survives_a_server_restart_and_rejoins_as_itself(browser, start_server):
    first = await start_server()
    port = first.port
    page = await open_page(browser, f"{first.url}/s/jam?name=Bass")
    client_id = await page.js("bandsync.clientId")
    assert await page.js("localStorage.getItem('bandsync.clientId')") == client_id
    assert await page.js("localStorage.getItem('bandsync.name')") == "Bass"
    await first.stop()
    await page.wait("!bandsync.connected", timeout=5)
    await page.wait("!document.getElementById('banner').hidden")
    assert (
        "server" in (await page.text("#banner")).lower()
        or "connection" in (await page.text("#banner")).lower()
    )
    assert await page.text("#conn") != "In sync"

    second = ServerRunner(create_app(Settings(host="127.0.0.1", port=port)))
    await second.start("127.0.0.1", port)
    try:
        await page.wait(SYNCED, timeout=10)
        session = second.service.sessions["jam"]
        members = {m.client_id: m.display_name for m in session.members.values()}
        assert members == {client_id: "Bass"}
        assert await page.js("bandsync.clientId") == client_id
        await page.wait("document.getElementById('banner').hidden")
        # in sync, and alone in the session (no leader, nobody else): the pill says so, amber,
        # with the "check the code" notice (issue 12 item 9), not a green "In sync"
        assert await page.text("#conn") == "Alone here"
        assert await page.page.is_visible("#alone")
        await assert_tracks_server_clock(page, second, slack_ms=3.0)
        assert page.errors == []
    finally:
        await page.context.close()
        await second.stop()


async def test_page_loads_with_no_request_leaving_loopback(browser, server):
    context = await browser.new_context()
    urls: list[str] = []

    async def record(route: Any) -> None:
        urls.append(route.request.url)
        await route.continue_()

    await context.route("**/*", record)
    page = Page(await context.new_page(), context)
    sockets: list[str] = []
    page.page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.page.goto(f"{server.url}/s/jam?name=Vox")
    await page.wait(SYNCED)
    paths = {urlsplit(u).path for u in urls}
    assert {"/s/jam", "/static/app.js", "/static/sync.js", "/static/vendor/socket.io.min.js"} <= (
        paths
    )
    hosts = {urlsplit(u).hostname for u in urls + sockets}
    assert hosts == {"127.0.0.1"}, urls + sockets
    assert sockets, "the page talks over a websocket"
    assert page.errors == [] and page.console_errors == []


async def test_bad_session_link_is_404(browser, server):
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(f"{server.url}/s/{quote('no spaces allowed')}")
    assert response is not None and response.status == 404
    response = await page.goto(f"{server.url}/s/{'x' * 65}")
    assert response is not None and response.status == 404


async def test_join_errors_are_shown(browser, start_server):
    server = await start_server(max_members=1)
    leader = await leader_of(server.url, "jam")
    try:
        full = await open_page(browser, f"{server.url}/s/jam?name=Extra", wait=None)
        await full.wait("!document.getElementById('join-error').hidden")
        assert "full" in (await full.text("#join-error")).lower()
        assert await full.js("bandsync.lastError.code") == "SESSION_FULL"
        assert await full.js("bandsync.joined") is False
        assert not await full.page.is_visible("#stage")
    finally:
        await leader.close()

    # the form: a blank name is caught before anything is sent
    page = await open_page(browser, f"{server.url}/", wait=None)
    await page.page.fill("#session-input", "open-jam")
    await page.page.fill("#name-input", "   ")
    await page.page.click("#join-button")
    assert "name" in (await page.text("#join-error")).lower()
    # a bad session id too
    await page.page.fill("#session-input", "no spaces")
    await page.page.fill("#name-input", "Sax")
    await page.page.click("#join-button")
    assert "session id" in (await page.text("#join-error")).lower()
    # a name the server refuses (a C1 control character the form lets through)
    await page.page.fill("#session-input", "open-jam")
    await page.page.fill("#name-input", "Sa\u0085x")
    await page.page.click("#join-button")
    await page.wait("bandsync.lastError && bandsync.lastError.code === 'INVALID_NAME'")
    assert "cannot be used" in (await page.text("#join-error")).lower()
    # and then a good one joins, and the address becomes the session's link
    await page.page.fill("#name-input", "Sax")
    await page.page.click("#join-button")
    await page.wait(SYNCED)
    assert urlsplit(page.page.url).path == "/s/open-jam"
    assert await page.js("localStorage.getItem('bandsync.name')") == "Sax"
    assert json.loads(await page.js("JSON.stringify(bandsync.lastError)")) is None


async def test_chart_scrolls_in_time_and_the_stage_fits_a_phone(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        context = await browser.new_context(viewport={"width": 360, "height": 640})
        page = Page(await context.new_page(), context)
        await page.page.goto(f"{server.url}/s/jam?name=Guitar")
        await page.wait(SYNCED)
        # one bar per line (one cell between bar lines), with words too long for the screen
        chart = "\n".join(
            f"| line {i} G . . . C . . . D . . . {'a-very-long-chord-name-' * 2} |"
            for i in range(24)
        )
        await command(
            leader,
            "set_song",
            song={"title": "Blue Bossa", "chart": chart, "tempo": 240, "countInBars": 0},
        )
        await command(leader, "update_message", message="Watch the ending: vamp x4")
        await page.wait("document.querySelectorAll('.chart-line').length === 24")
        assert await page.text("#song-title") == "Blue Bossa"
        assert "vamp" in await page.text("#message")
        # one chart line per bar: at 240 BPM in 4/4 that is a new line every second
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        current = (
            "[...document.querySelectorAll('.chart-line')]"
            ".findIndex(l => l.classList.contains('current'))"
        )
        await page.wait(f"{current} >= 2", timeout=5)
        bar = (await page.js("bandsync.barBeat()"))["bar"]
        assert abs(await page.js(current) - (bar - 1)) <= 1
        assert await page.js("document.getElementById('chart').scrollTop") > 0
        # portrait and landscape: nothing wider than the screen, controls big enough to hit
        for width, height in ((360, 640), (640, 360)):
            await page.page.set_viewport_size({"width": width, "height": height})
            await page.page.wait_for_timeout(100)
            assert await page.js("document.documentElement.scrollWidth") <= width
            sizes = await page.js(
                "[...document.querySelectorAll('#controls button')]"
                ".map(b => { const r = b.getBoundingClientRect(); return [r.width, r.height]; })"
            )
            assert sizes and all(w >= 44 and h >= 44 for w, h in sizes), sizes
        # every control has an accessible name; state changes are announced
        unnamed = await page.js(
            "[...document.querySelectorAll('button, input')].filter(e => !(e.labels && "
            "e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length"
        )
        assert unnamed == 0
        assert await page.js("document.getElementById('play-state').getAttribute('aria-live')")
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


async def test_console_sees_the_pages_link_health(browser, start_server):
    server = await start_server(heartbeat_interval_s=0.3)
    page = await open_page(browser, f"{server.url}/s/jam?name=Horns")
    client_id = await page.js("bandsync.clientId")
    service = server.service

    def link() -> Any:
        for connection in service.connections.values():
            if connection.client_id == client_id:
                return connection.link
        return None

    for _ in range(100):  # the page reports once its join burst is in (~1 s)
        current = link()
        if (
            current is not None
            and current.uncertainty_ms is not None
            and len(current.rtt_samples) >= 4
        ):
            break
        await asyncio.sleep(0.05)
    current = link()
    assert current is not None
    assert current.uncertainty_ms == pytest.approx(
        await page.js("bandsync.offsetUncertaintyMs"), abs=1.0
    )
    assert current.uncertainty_ms >= 0
    assert current.offset_ms is not None
    # The answers to heartbeats (every 0.3 s here; sync reports come every 5 s) give the RTT.
    # Each must be a round trip in milliseconds on the server's clock: never negative, never
    # seconds long (a timestamp echoed on another clock or in other units would be). How
    # small it is on a loaded machine is a benchmark's business, not this test's.
    assert len(current.rtt_samples) >= 4
    assert all(0 <= rtt < 5_000 for rtt in current.rtt_samples), list(current.rtt_samples)
    assert page.errors == []
