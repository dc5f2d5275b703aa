"""The follower page in Chromium, Firefox and WebKit against a real server on loopback.

Every test runs once per engine through one driver layer (tests/helpers/engines.py); each
engine is a marker, so ``-m firefox`` or ``-m webkit`` runs one alone (Chromium is the
``browser`` marker, as for the rest of the page suite). The leader is a real socket.io client.
Firefox and WebKit stay up for the whole module (Firefox takes seconds to start); Chromium
opens a fresh browser per test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from typing import Any

import pytest

from bandsync_desktop.config import Settings
from bandsync_desktop.server.app import ServerRunner, create_app
from tests.helpers.clients import Recorder, assert_tracks_server_clock
from tests.helpers.engines import BrowserWedged, Engine, Page, has_audio_output, missing_reason

pytestmark = pytest.mark.asyncio

SYNCED = (
    "bandsync.connected && bandsync.offsetUncertaintyMs !== null && bandsync.syncSampleCount >= 5"
)
#: Firefox and WebKit load the page more slowly than Chromium, more so on a shared 2-core box.
LOAD_S = 15.0


async def open_page(engine: Engine, url: str, *, wait: str | None = SYNCED) -> Page:
    page = await engine.open(url)
    if wait:
        await page.wait(wait, timeout=LOAD_S)
    return page


async def leader_of(url: str, session_id: str = "jam") -> Recorder:
    leader = Recorder(url, "leader")
    await leader.connect()
    ack = await leader.call(
        "join_session", {"sessionId": session_id, "displayName": "Lead", "role": "leader"}
    )
    assert ack["ok"] is True and ack["role"] == "leader"
    return leader


async def command(leader: Recorder, event: str, **payload: Any) -> None:
    ack = await leader.call(event, {"sessionId": "jam", **payload})
    assert ack["ok"] is True, ack


async def test_joins_and_is_in_sync(engine, server):
    leader = await leader_of(server.url)
    try:
        page = await open_page(engine, f"{server.url}/s/jam?name=Player")
        await page.wait("document.getElementById('conn').textContent === 'In sync'")
        # Loopback: each sample's round trip is well under a millisecond even with the ~1 ms
        # timestamps of Firefox and WebKit (a loaded 2-core machine adds scheduling delay).
        assert await page.js("bandsync.offsetUncertaintyMs") < 5.0
        await assert_tracks_server_clock(page, server, slack_ms=5.0)
        assert await page.js("localStorage.getItem('bandsync.name')") == "Player"
        # the room's snapshot after a join is coalesced (250 ms): wait for the one with Player
        deadline = asyncio.get_running_loop().time() + 3.0
        while {"Player", "Lead"} - {m["displayName"] for m in leader.last("snapshot")["members"]}:
            assert asyncio.get_running_loop().time() < deadline, leader.last("snapshot")["members"]
            await asyncio.sleep(0.05)
    finally:
        await leader.close()


async def test_beat_and_position_agree_with_the_server_timeline(engine, server):
    leader = await leader_of(server.url)
    try:
        page = await open_page(engine, f"{server.url}/s/jam?name=Bass")
        await command(leader, "set_tempo", tempo=150)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn && bandsync.tempoBpm === 150")
        timeline = server.service.sessions["jam"].timeline
        now = server.service.clock.now_ms()
        # The same server instants on both sides: the page holds the server's timeline.
        for t in (now - 500.0, now, now + 1234.5):
            position = await page.js(f"bandsync.positionMs({t})")
            assert position == pytest.approx(timeline.position_at(t), abs=1e-6)
            assert await page.js(f"bandsync.beat({t})") == pytest.approx(
                timeline.beat_at(t), abs=1e-9
            )
        # And "now" on the page is the server's now: its position lies within the call.
        before = timeline.position_at(server.service.clock.now_ms())
        position = await page.js("bandsync.positionMs()")
        after = timeline.position_at(server.service.clock.now_ms())
        assert before - 5.0 <= position <= after + 5.0, (before, position, after)
        bar_beat = await page.text("#barbeat")
        bar, beat = (int(x) for x in bar_beat.split(":"))
        assert bar >= 1 and 1 <= beat <= 4
    finally:
        await leader.close()


async def test_click_is_scheduled_on_the_beats(engine, server):
    if not has_audio_output(engine.name):
        pytest.skip("no audio output for this engine: install pulseaudio (scripts/bootstrap dev)")
    leader = await leader_of(server.url)
    try:
        page = await open_page(engine, f"{server.url}/s/jam?name=Keys")
        await command(leader, "set_tempo", tempo=200)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await page.click("#click-toggle")  # a user gesture: the autoplay policies allow audio
        await page.wait("bandsync.audioState === 'running'", timeout=5)
        assert await page.text("#click-toggle") == "Click on"
        # Firefox and WebKit step the audio clock by buffers and coarsen performance.now():
        # the page's audio-clock map must settle there too, within a fraction of a second.
        await page.wait(
            "bandsync.clickTimes().filter(c => !c.cancelled && !c.late).length >= 4", timeout=6
        )
        clicks = [c for c in await page.js("bandsync.clickTimes()") if not c["cancelled"]]
        live = [c for c in clicks if not c["late"]]
        beat_ms = 60_000 / 200
        for a, b in itertools.pairwise(live):
            beats = b["beat"] - a["beat"]
            assert b["beatServerTime"] - a["beatServerTime"] == pytest.approx(beats * beat_ms)
            if a["audioMap"] == b["audioMap"]:
                # placed with the same audio-clock map: as far apart on the audio clock as on
                # the server's (up to the clock estimate's own small updates)
                gap = b["audioTime"] - a["audioTime"]
                assert gap == pytest.approx(beats * beat_ms / 1000, abs=0.002), (a, b)
        timeline = server.service.sessions["jam"].timeline
        for click in live:
            assert timeline.beat_at(click["beatServerTime"]) == pytest.approx(click["beat"])
            assert click["playServerTime"] == click["beatServerTime"]
            assert click["audioClock"] in {"outputTimestamp", "currentTime"}
        # Chromium's getOutputTimestamp() is good; WebKitGTK's is not in performance.now()'s
        # time base (it runs ahead by the context's age), so the page falls back to currentTime.
        if engine.name == "chromium":
            assert {c["audioClock"] for c in live} == {"outputTimestamp"}
        if engine.name == "webkit":
            assert {c["audioClock"] for c in live} == {"currentTime"}
    finally:
        await leader.close()


async def test_count_in_counts_down_then_plays(engine, server):
    leader = await leader_of(server.url)
    try:
        page = await open_page(engine, f"{server.url}/s/jam?name=Drums")
        await command(leader, "set_tempo", tempo=240)
        await command(leader, "set_count_in", bars=2)  # 8 beats: 2 s
        await command(leader, "play")
        await page.wait("bandsync.countingIn", timeout=2)
        # the label follows at the next frame the page paints
        await page.wait(
            "document.getElementById('play-state').innerText.trim() === 'COUNT-IN'", timeout=1
        )
        assert await page.text("#countin") in {str(n) for n in range(1, 9)}
        await page.wait("bandsync.isPlaying && !bandsync.countingIn", timeout=4)
        await page.wait("document.getElementById('countin').hidden")
        assert await page.text("#play-state") == "PLAYING"
        assert 0 <= await page.js("bandsync.beat()") < 8
    finally:
        await leader.close()


async def test_rejoins_as_itself_after_a_server_restart(engine, start_server):
    first = await start_server()
    port = first.port
    leader = await leader_of(first.url)
    page = await open_page(engine, f"{first.url}/s/jam?name=Bass")
    client_id = await page.js("bandsync.clientId")
    assert await page.js("localStorage.getItem('bandsync.clientId')") == client_id
    await leader.close()
    await first.stop()
    await page.wait("!bandsync.connected", timeout=5)
    await page.wait("!document.getElementById('banner').hidden")
    assert await page.text("#conn") not in {"In sync", "Alone here"}

    second = ServerRunner(create_app(Settings(host="127.0.0.1", port=port)))
    await second.start("127.0.0.1", port)
    try:
        await page.wait(SYNCED, timeout=10)
        members = {
            m.client_id: m.display_name for m in second.service.sessions["jam"].members.values()
        }
        assert members == {client_id: "Bass"}
        assert await page.js("bandsync.clientId") == client_id
        await page.wait("document.getElementById('banner').hidden")
        await assert_tracks_server_clock(page, second, slack_ms=5.0)
    finally:
        await page.close()
        await asyncio.sleep(0)
        await second.stop()


async def test_the_stage_fits_a_phone(engine, server, tmp_path):
    leader = await leader_of(server.url)
    try:
        page = await open_page(engine, f"{server.url}/s/jam?name=Vox")
        width, height = await page.set_viewport(390, 844)
        # Chromium gives a phone's 390 px; Firefox and WebKit windows stop at 500 / 447 px.
        assert 390 <= width <= 500 and 750 <= height <= 844, (width, height)
        # nothing wider than the screen, and the controls a player needs are on it
        assert await page.js("document.documentElement.scrollWidth") <= width
        for selector in ("#barbeat", "#click-toggle", "#conn"):
            box = await page.js(
                f"(() => {{ const r = document.querySelector('{selector}')"
                ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()"
            )
            assert box[0] >= 0 and box[1] >= 0, (selector, box)
            assert box[2] <= width and box[3] <= height, (selector, box)
        shot = tmp_path / f"{engine.name}.png"
        await page.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        await leader.close()


@pytest.mark.firefox
async def test_with_no_audio_output_the_toggle_says_no_sound(server, browser_pool):
    """Firefox with no audio output never starts an AudioContext ("suspended" for good, where
    Chromium and WebKit fall back to a silent output): the page says so instead of "Click on",
    keeps asking the engine to resume, and schedules no click it cannot play."""
    reason = missing_reason("firefox")
    if reason is not None:
        pytest.skip(reason)
    leader = await leader_of(server.url)
    engine = Engine("firefox", browser_pool)
    try:
        page = await engine.open(f"{server.url}/s/jam?name=Mute", audio_output=False)
        await page.wait(SYNCED, timeout=LOAD_S)
        await command(leader, "play")
        await page.click("#click-toggle")
        assert await page.js("bandsync.clickEnabled") is True
        await page.wait("document.getElementById('click-toggle').textContent === 'No sound'", 4)
        assert await page.js("bandsync.audioState") == "suspended"
        assert (
            await page.js("document.getElementById('click-toggle').getAttribute('aria-pressed')")
            == "true"
        )
        assert await page.js("bandsync.clickTimes().length") == 0
        await page.click("#click-toggle")  # off again: the words say off
        assert await page.text("#click-toggle") == "Click off"
    finally:
        await engine.close()
        await leader.close()


@pytest.mark.firefox
async def test_a_browser_that_stops_answering_is_reported_and_replaced(server, browser_pool):
    """The harness itself: a Firefox that answers no driver call (stopped here with SIGSTOP,
    as a wedged one looks from outside) fails the call with BrowserWedged instead of holding
    it for Marionette's 360 s, and the pool gives the next page a new browser that works."""
    reason = missing_reason("firefox")
    if reason is not None:
        pytest.skip(reason)
    engine = Engine("firefox", browser_pool)
    try:
        page = await engine.open(f"{server.url}/s/jam?name=Stuck")
        await page.wait(SYNCED, timeout=LOAD_S)
        stuck = page.browser  # type: ignore[attr-defined]
        assert stuck.process is not None
        stuck.client.client.socket_timeout = 2.0  # (the suite's is DRIVER_CALL_TIMEOUT_S)
        os.kill(stuck.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(BrowserWedged, match="firefox answered no driver call"):
                await page.js("1 + 1")
            assert time.monotonic() - started < 10
            assert stuck.wedged
        finally:
            os.kill(stuck.process.pid, signal.SIGCONT)
        await engine.close()
        page = await engine.open(f"{server.url}/s/jam?name=Fresh")
        assert page.browser is not stuck  # type: ignore[attr-defined]
        assert stuck.process.poll() is not None  # the wedged one was stopped
        await page.wait(SYNCED, timeout=LOAD_S)
    finally:
        await engine.close()
