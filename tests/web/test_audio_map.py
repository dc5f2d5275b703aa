"""How the follower page maps each engine's audio clock to its own, checked without sound.

The page places a click at ``audioTime = local / 1000 + map``: the map says which context time
is *heard* at a performance.now() instant. What each engine's API means differs
(docs/follower-page.md; bench/heard_bench.py measures what is really heard):

- **Chromium**: ``getOutputTimestamp()`` pairs the context time being heard with the instant
  it is heard; the page uses it.
- **Firefox**: its stamp is ``{currentTime - outputLatency, performance.now() - outputLatency}``,
  which says that what is rendered now is heard now (the two shifts cancel); its
  ``outputLatency`` is the output stream's latency at the moment it is first asked, kept for
  good. The page reads currentTime less that latency, paired with the currentTime of that
  first moment.
- **WebKitGTK**: ``outputLatency`` is 0 (not implemented outside Apple's platforms) and its
  stamp is not in performance.now()'s time base; the page reads currentTime less baseLatency
  less the GStreamer sink's segment, which no API reports.

Every click entry of ``bandsync.clickTimes()`` carries the engine's own reading of its clock
when the click was placed (``audioReading``) beside the map used, so the lag the page believes
between what is rendered and what is heard (``currentTime - perfNow / 1000 - map``) can be
checked against what the engine reports: a page that took Firefox's stamp at its word believed
a lag of 0, and clicked 35-40 ms late.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

import pytest

from tests.helpers.engines import has_audio_output

from .test_engines import command, leader_of, open_page

pytestmark = pytest.mark.asyncio

#: audio.js UNREPORTED_OUTPUT_LATENCY_S
UNREPORTED_OUTPUT_LATENCY_S = 0.010
#: audio.js AUDIO_WARMUP_S: nothing is read from a context before it has rendered this much.
AUDIO_WARMUP_S = 0.5

#: the largest staircase step of currentTime seen (Firefox on PulseAudio: ~20 ms), plus slack
STEP_S = 0.030

#: performance.now() is coarsened to ~1 ms in Firefox and WebKit
COARSE_S = 0.002


#: clicks looked at: at 200 BPM, 2.4 s of them, so a stall of WebKitGTK's clock (AUDIO_STALL_MS;
#: up to ~1 s about a second after the click is turned on) leaves most of them to judge
CLICKS = 8


async def click_on(engine: Any, server: Any, name: str) -> tuple[Any, Any]:
    """A page playing at 200 BPM with its click on, and the leader's connection."""
    leader = await leader_of(server.url)
    page = await open_page(engine, f"{server.url}/s/jam?name={name}")
    await command(leader, "set_tempo", tempo=200)
    await command(leader, "play")
    await page.wait("bandsync.isPlaying && bandsync.lockedIn")
    await page.click("#click-toggle")
    await page.wait("bandsync.audioState === 'running'", timeout=5)
    return page, leader


async def live_clicks(engine: Any, server: Any, name: str) -> list[dict[str, Any]]:
    page, leader = await click_on(engine, server, name)
    try:
        await page.wait(
            f"bandsync.clickTimes().filter(c => !c.cancelled && !c.late).length >= {CLICKS}",
            timeout=12,
        )
        clicks = await page.js("bandsync.clickTimes()")
    finally:
        await leader.close()
    return [c for c in clicks if not c["cancelled"] and not c["late"]]


def believed_lag(click: dict[str, Any]) -> float:
    """What the page believes is between what is rendered and what is heard (s), at the
    instant the click's reading was taken."""
    reading = click["audioReading"]
    return float(reading["currentTime"] - reading["perfNow"] / 1000 - click["audioMap"])


async def test_each_engine_is_read_as_its_api_means(engine, server):
    if not has_audio_output(engine.name):
        pytest.skip("no audio output for this engine: install pulseaudio (scripts/bootstrap dev)")
    clicks = await live_clicks(engine, server, "Keys")
    assert len(clicks) >= CLICKS, clicks
    for click in clicks:
        reading = click["audioReading"]
        reported = reading["outputLatency"] or 0.0
        assert reading["currentTime"] >= AUDIO_WARMUP_S, reading  # past the start-up
        if engine.name == "chromium":
            assert click["audioClock"] == "outputTimestamp", click
        elif engine.name == "firefox":
            # its stamp counts no latency: never used
            stamp_lag = (reading["currentTime"] - reading["stampContextTime"]) - (
                reading["perfNow"] - reading["stampPerformanceTime"]
            ) / 1000
            assert abs(stamp_lag) < COARSE_S, reading
            assert click["audioClock"] == "currentTime", click
            assert click["audioLatencyKind"] == "outputLatency", click
            assert click["audioLatency"] == pytest.approx(reported), click
            # paired with the currentTime of the instant that latency was taken
            assert click["audioAnchored"] is True, click
            assert reading["firstPair"]["valid"] is True, reading
            # not asked before the output's start-up is over (Firefox keeps the first answer)
            assert reading["firstPair"]["currentTime"] >= AUDIO_WARMUP_S, reading
        else:
            assert reported == 0, reading
            assert click["audioClock"] == "currentTime", click
            assert click["audioLatencyKind"] == "unreported", click
            assert click["audioLatency"] == pytest.approx(
                reading["baseLatency"] + UNREPORTED_OUTPUT_LATENCY_S
            ), click
    # The lag the page believes is the one the engine reports (what it accounts for), give or
    # take where the reading fell on currentTime's staircase: never ~0, as taking Firefox's
    # stamp at its word made it, nor a render quantum only, as WebKit's baseLatency alone did.
    # Judged on the median click: each click's reading is the one engine reading taken when it
    # was placed, and one can be a leap of WebKitGTK's clock (+45 ms, ~1 in 10) or fall in
    # the first AUDIO_STALL_MS of a stall, before the page can tell one.
    last = clicks[-1]
    lag = statistics.median(believed_lag(c) for c in clicks)
    reported = last["audioReading"]["outputLatency"] or 0.0
    if last["audioClock"] == "currentTime":
        latency = statistics.median(c["audioLatency"] for c in clicks)
        assert latency - STEP_S - COARSE_S <= lag <= latency + STEP_S + COARSE_S, clicks
        assert lag >= 0.5 * latency, clicks
    elif reported > 0:
        assert lag >= 0.5 * reported - COARSE_S, clicks


async def test_clicks_placed_with_one_map_keep_the_beat_on_the_audio_clock(engine, server):
    """However the map is worked out, the clicks placed with one map are as far apart on the
    audio clock as their beats are on the server's (none is moved by the staircase)."""
    if not has_audio_output(engine.name):
        pytest.skip("no audio output for this engine: install pulseaudio (scripts/bootstrap dev)")
    clicks = await live_clicks(engine, server, "Bass")
    same = [(a, b) for a, b in itertools.pairwise(clicks) if a["audioMap"] == b["audioMap"]]
    assert same, clicks
    for a, b in same:
        gap = b["audioTime"] - a["audioTime"]
        assert gap == pytest.approx((b["playServerTime"] - a["playServerTime"]) / 1000, abs=2e-3)


#: Freeze the page's audio clock for ``ms``: currentTime and getOutputTimestamp() hold what they
#: said at the first read, as an output that stopped taking samples does; then the real ones.
FREEZE = """(() => {
  // Only with a click placed and not yet heard (20 ms ahead of the audio clock), checked in
  // the same evaluation as the freeze: else null, and the test asks again.
  const ahead = bandsync.audioTime + 0.02;
  if (!bandsync.clickTimes().some(c => !c.cancelled && !c.late && c.audioTime > ahead)) {
    return null;
  }
  const time = Object.getOwnPropertyDescriptor(BaseAudioContext.prototype, 'currentTime').get;
  const stamp = AudioContext.prototype.getOutputTimestamp;
  const now = performance.now();
  const stall = { start: now, until: now + %d, time: null, seen: null, stamp: null };
  window.__stall = stall;
  Object.defineProperty(BaseAudioContext.prototype, 'currentTime', {
    configurable: true,
    get() {
      if (performance.now() >= stall.until) return time.call(this);
      if (stall.time === null) {
        stall.time = time.call(this);
        stall.seen = performance.now();
      }
      return stall.time;
    },
  });
  AudioContext.prototype.getOutputTimestamp = function () {
    if (performance.now() >= stall.until) return stamp.call(this);
    if (stall.stamp === null) stall.stamp = stamp.call(this);
    return stall.stamp;
  };
  return stall.start;
})()"""

STALL_MS = 1000

#: audio.js AUDIO_STALL_MS
AUDIO_STALL_MS = 100


async def test_a_stalled_audio_clock_takes_its_clicks_back_and_places_none(engine, server):
    """An output that stops taking samples holds the audio clock still (WebKitGTK on
    PulseAudio does, for up to a second, in about half of the tries): what is placed on it
    would sound late, all at once, when it runs again. The page takes back the clicks not yet
    heard, places none while it holds, and comes back on the same map once it runs."""
    if not has_audio_output(engine.name):
        pytest.skip("no audio output for this engine: install pulseaudio (scripts/bootstrap dev)")
    if engine.name == "firefox":
        pytest.skip("Marionette's scripts run in a sandbox: a getter set there is not the page's")
    page, leader = await click_on(engine, server, "Keys")
    try:
        # past the first seconds, where WebKitGTK's own stall comes
        await page.wait(
            "bandsync.clickTimes().filter(c => !c.cancelled && !c.late).length >= 10", timeout=12
        )
        before = await page.js("bandsync.audioClock.stalls")
        # Frozen while a click is on its way: one is placed only LOOKAHEAD_MS ahead, and frozen
        # between two, none would be pending and nothing taken back would show.
        deadline = time.monotonic() + 5
        while (start := await page.js(FREEZE % STALL_MS)) is None:
            assert time.monotonic() < deadline, "no click pending to freeze on in 5 s"
            await asyncio.sleep(0.01)
        until = start + STALL_MS
        await page.wait(f"performance.now() > {until}", timeout=5)
        await page.wait(
            "bandsync.clickTimes().some(c => !c.cancelled && !c.late && "
            f"c.audioReading.perfNow > {until})",
            timeout=5,
        )
        stall = await page.js("window.__stall")
        clicks = await page.js("bandsync.clickTimes()")
        after = await page.js("bandsync.audioClock")
    finally:
        await leader.close()
    assert after["stalls"] >= before + 1, after
    assert after["stalled"] is False, after
    frozen = stall["time"]
    assert frozen is not None, stall
    placed_before = [c for c in clicks if c["audioReading"]["perfNow"] < start]
    during = [c for c in clicks if start <= c["audioReading"]["perfNow"] < until]
    resumed = [c for c in clicks if c["audioReading"]["perfNow"] >= until and not c["late"]]
    # the ones not yet heard when it stalled were taken back, whenever they were placed
    pending = [c for c in placed_before + during if c["audioTime"] > frozen + 0.001]
    assert pending, clicks
    assert all(c["cancelled"] for c in pending), pending
    # none is placed once the page can tell the clock holds still: AUDIO_STALL_MS after it
    # first read the frozen time (a click's reading is taken in the call that places it, so
    # a late timer cannot place one past this), give or take ~1 ms of coarsened timestamps
    told = stall["seen"] + AUDIO_STALL_MS + COARSE_S * 1000
    assert [c for c in during if c["audioReading"]["perfNow"] > told] == [], during
    # back on the map it had: the clock did not move, it only held still
    last_map = placed_before[-1]["audioMap"]
    assert resumed, clicks
    assert resumed[0]["audioMap"] == pytest.approx(last_map, abs=0.003), (last_map, resumed[0])
