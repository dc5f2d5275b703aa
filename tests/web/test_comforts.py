"""Players' comforts on the follower page (issue 12): click sound, volume, accent,
subdivisions, vibration, and the latency's range (issue 14 item 4), in real headless Chromium
against a real server on loopback.

What is asserted is what happens: the clicks the page places on the audio clock
(``bandsync.clickTimes()``, now saying which are accents and subdivisions), the volume's gain
node, the sounds themselves (rendered through the page's own ``playClick`` into an
OfflineAudioContext), the calls the page makes to ``navigator.vibrate`` (stubbed in the page
only because headless Chromium has no vibrator), and the geometry of the settings sheet and the
calibration at the four viewports of test_page_layout.py, with their screenshots.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.helpers.viewports import each_viewport

from .test_calibration import JITTER, tap_along
from .test_follower_page import SYNCED, Page, command, leader_of
from .test_page_layout import assert_fits_one_screen, geometry, snap

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

#: Every control of the settings sheet and the calibration: where it is and whether its text
#: fits (nothing clipped), measured after a frame as test_page_layout.py does.
SHEETS = """new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => resolve((() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width,
            height: r.height}; };
  const shown = (e) => e && (e.offsetParent !== null ||
    getComputedStyle(e).position === 'fixed' && getComputedStyle(e).display !== 'none');
  const part = (id) => { const root = document.getElementById(id);
    if (!shown(root)) return null;
    const controls = [...root.querySelectorAll('button, input, output')]
      .filter((e) => e.offsetParent !== null)
      .map((e) => ({id: e.id || e.dataset.value || e.textContent.trim(), ...box(e),
                    clipped: e.scrollWidth > e.clientWidth + 1 ||
                      e.scrollHeight > e.clientHeight + 1,
                    tag: e.tagName}));
    return {box: box(root), scrollHeight: root.scrollHeight, clientHeight: root.clientHeight,
            scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, controls};
  };
  return {innerWidth, innerHeight, scrollHeight: document.scrollingElement.scrollHeight,
          scrollWidth: document.scrollingElement.scrollWidth,
          settings: part('settings'), calibrate: part('calibrate')};
})()), 0)))"""


def assert_panel_fits(geo: dict[str, Any], name: str) -> None:
    panel = geo[name]
    assert panel is not None, f"#{name} is not shown"
    # open, it makes the page no taller or wider than the screen
    assert geo["scrollHeight"] <= geo["innerHeight"] + 1, geo
    assert geo["scrollWidth"] <= geo["innerWidth"], geo
    # it is on the screen, and all of it shows without scrolling inside it
    box = panel["box"]
    assert box["top"] >= -1 and box["bottom"] <= geo["innerHeight"] + 1, (name, box)
    assert box["left"] >= -1 and box["right"] <= geo["innerWidth"] + 1, (name, box)
    assert panel["scrollHeight"] <= panel["clientHeight"] + 1, (name, panel)
    assert panel["scrollWidth"] <= panel["clientWidth"] + 1, (name, panel)
    for control in panel["controls"]:
        assert box["top"] - 1 <= control["top"] and control["bottom"] <= box["bottom"] + 1, control
        assert control["left"] >= box["left"] - 1 and control["right"] <= box["right"] + 1, control
        if control["tag"] == "BUTTON":
            assert not control["clipped"], control  # its words fit
            assert control["height"] >= 44 and control["width"] >= 44, control  # a finger's size


def assert_no_overlap(controls: list[dict[str, Any]]) -> None:
    """No two controls of a panel share any of the screen (a px of rounding aside)."""
    for a, b in itertools.combinations(controls, 2):
        apart = (
            a["right"] <= b["left"] + 1
            or b["right"] <= a["left"] + 1
            or a["bottom"] <= b["top"] + 1
            or b["bottom"] <= a["top"] + 1
        )
        # (a label's output sits inside its label: those are one control)
        assert apart or a["tag"] == "OUTPUT" or b["tag"] == "OUTPUT", (a, b)


async def sheets(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.page.evaluate(SHEETS)
    return result


async def test_settings_sheet_and_calibration_fit_one_screen(browser, server):
    """Played once; each state looked at on the four screens (the page resized to each)."""
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Keys")
        await command(leader, "set_tempo", tempo=96)
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        async for size in each_viewport(page):
            closed = await geometry(page)
            assert_fits_one_screen(closed, f"playing {size}")
            button = await page.page.locator("#settings-open").bounding_box()
            assert button is not None and button["width"] >= 44 and button["height"] >= 44
            assert button["y"] + button["height"] <= size[1], (size, button)

        # the footer says which output its latency is for
        assert await page.text("#nudge-label") == "Speaker latency"
        await page.page.click("#settings-open")
        assert await page.page.is_visible("#settings")
        assert await page.js("document.activeElement.id") == "settings-close"
        # Bluetooth: the sheet's longest words; the footer follows
        await page.page.click("#set-output button[data-value='bluetooth']")
        assert await page.text("#nudge-label") == "Bluetooth latency"
        async for size in each_viewport(page):
            geo = await sheets(page)
            assert_panel_fits(geo, "settings")
            assert_no_overlap(geo["settings"]["controls"])
            labels = {c["id"] for c in geo["settings"]["controls"]}
            expected = {"beep", "wood", "hat", "set-volume", "off", "eighths", "triplets"}
            expected |= {"sixteenths", "set-accent", "set-vibrate", "speaker", "wired"}
            expected |= {"bluetooth", "set-delay", "calibrate-open", "settings-close"}
            assert expected <= labels, (size, labels)
            # the page under it still fits one screen (the sheet is out of its flow)
            assert_fits_one_screen(await geometry(page), f"settings open {size}")
            await snap(page, size, "settings")
        await page.page.keyboard.press("Escape")
        assert not await page.page.is_visible("#settings")
        assert await page.js("document.activeElement.id") == "settings-open"
        async for size in each_viewport(page):
            # closed again, the footer with the longer label still fits one screen
            assert_fits_one_screen(await geometry(page), f"playing, Bluetooth {size}")
            label = await page.page.locator("#nudge-label").bounding_box()
            assert label is not None and label["x"] >= 0, (size, label)
            assert label["x"] + label["width"] <= size[0], (size, label)

        # the calibration while it plays its bars to listen to, on each screen: a run each
        # (a run listens for 2.4 s only), cancelled
        async for size in each_viewport(page):
            await page.page.click("#settings-open")
            await page.page.click("#calibrate-open")
            await page.wait("bandsync.calibration && bandsync.calibration.phase === 'listening'", 5)
            geo = await sheets(page)
            assert geo["settings"] is None
            assert_panel_fits(geo, "calibrate")
            tap = next(c for c in geo["calibrate"]["controls"] if c["id"] == "cal-tap")
            # the tap target is big: a third of the screen or more
            assert tap["width"] * tap["height"] >= size[0] * size[1] / 3, (size, tap)
            # it says which output it measures
            assert await page.text("#cal-title") == "Tap along: Bluetooth"
            await snap(page, size, "calibrate")
            await page.page.click("#cal-cancel")
            assert not await page.page.is_visible("#calibrate")

        # the result, the panel's fullest state (three lines of words, three buttons): it
        # still fits, the tap target still a finger's size or more
        await page.page.click("#settings-open")
        await page.page.click("#calibrate-open")
        done = await tap_along(page, 180, JITTER)
        assert done["result"]["ok"] is True, done
        assert await page.page.is_visible("#cal-accept")
        async for size in each_viewport(page):
            geo = await sheets(page)
            assert_panel_fits(geo, "calibrate")
            shown = {c["id"] for c in geo["calibrate"]["controls"]}
            assert {"cal-accept", "cal-again", "cal-cancel", "cal-tap"} <= shown, (size, shown)
            assert_no_overlap(geo["calibrate"]["controls"])
            text = await page.page.locator("#cal-result").bounding_box()
            assert text is not None and text["y"] + text["height"] <= size[1], (size, text)
            await snap(page, size, "calibrate-result")
        await page.page.click("#cal-cancel")
        assert not await page.page.is_visible("#calibrate")
        assert await page.js("bandsync.calibration") is None
        assert await page.js("bandsync.nudgeMs") == 0  # cancelled: nothing kept
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


async def open_page(browser: Any, url: str, init_script: str | None = None) -> Page:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    if init_script:
        await context.add_init_script(init_script)
    page = Page(await context.new_page(), context)
    await page.page.goto(url)
    await page.wait(SYNCED)
    return page


async def pick(page: Page, group: str, value: str) -> None:
    if not await page.page.is_visible("#settings"):
        await page.page.click("#settings-open")
    await page.page.click(f"#{group} button[data-value='{value}']")


def live_since(clicks: list[dict[str, Any]], server_time: float) -> list[dict[str, Any]]:
    return [c for c in clicks if not c["cancelled"] and c["playServerTime"] > server_time]


async def clicks_after_change(page: Page, count: int, where: str = "true") -> list[dict[str, Any]]:
    """The clicks placed after now: at least ``count`` of them matching ``where``."""
    now = await page.js("bandsync.serverNow()")
    condition = (
        f"bandsync.clickTimes().filter(c => !c.cancelled && c.playServerTime > {now} + 150"
        f" && ({where})).length >= {count}"
    )
    await page.wait(condition, timeout=6)
    return live_since(await page.js("bandsync.clickTimes()"), now + 150)


@pytest.mark.slow
async def test_sound_subdivisions_accent_and_volume_reach_the_click(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Drums")
        await command(leader, "set_tempo", tempo=240)  # 250 ms a beat
        await command(leader, "play")
        await page.page.click("#click-toggle")
        await page.wait("bandsync.audioState === 'running'")
        beat_ms = 250.0
        # (the first pass may find a beat due within the output's own latency: late, skipped)
        await page.wait("bandsync.clickTimes().filter(c => !c.cancelled).length >= 2", 4)

        # the default: today's beep, accented downbeats, no subdivisions, full volume
        clicks = await clicks_after_change(page, 5)
        assert {c["kind"] for c in clicks} == {"beat"} and {c["sound"] for c in clicks} == {"beep"}
        assert not [c for c in clicks if c["late"]]
        for click in clicks:
            assert click["accent"] is (click["inBar"] == 1)
            assert click["peak"] == (0.9 if click["inBar"] == 1 else 0.6)
        assert (await page.js("bandsync.comforts"))["outputGain"] == 1.0

        await pick(page, "set-sound", "wood")
        await pick(page, "set-subdivision", "triplets")
        clicks = await clicks_after_change(page, 9, "c.kind === 'beat'")
        assert {c["sound"] for c in clicks} == {"wood"}
        beats = {c["beat"]: c for c in clicks if c["kind"] == "beat"}
        subs = [c for c in clicks if c["kind"] == "sub"]
        assert {c["sub"] for c in subs} == {1, 2}
        checked = 0
        for sub in subs:
            beat = beats.get(sub["beat"])
            if beat is None:
                continue
            # a third and two thirds of the way to the next beat, on the server's timeline...
            offset = sub["beatServerTime"] - beat["beatServerTime"]
            # (to a microsecond: server times near 1.7e12 ms carry ~0.2 µs of float precision)
            assert offset == pytest.approx(sub["sub"] * beat_ms / 3, abs=1e-3)
            assert sub["accent"] is False and sub["peak"] == 0.35
            # ...and on the audio clock, when placed with the same map
            if sub["audioMap"] == beat["audioMap"]:
                gap = sub["audioTime"] - beat["audioTime"]
                assert gap == pytest.approx(offset / 1000, abs=0.002)
            checked += 1
        assert checked >= 4
        # every click in order, none twice: beats and their subdivisions interleave
        times = [c["beatServerTime"] for c in clicks]
        assert times == sorted(times) and len(set(times)) == len(times)
        for a, b in itertools.pairwise(clicks):
            assert b["beatServerTime"] - a["beatServerTime"] == pytest.approx(beat_ms / 3, abs=0.01)

        await pick(page, "set-subdivision", "sixteenths")
        clicks = await clicks_after_change(page, 4, "c.kind === 'beat'")
        assert {c["sub"] for c in clicks if c["kind"] == "sub"} == {1, 2, 3}
        await pick(page, "set-subdivision", "eighths")
        clicks = await clicks_after_change(page, 4, "c.kind === 'beat'")
        assert {c["sub"] for c in clicks if c["kind"] == "sub"} == {1}

        # accent off: the downbeat sounds like any other beat
        await page.page.click("#set-accent")
        assert await page.js("document.getElementById('set-accent').ariaPressed") == "false"
        clicks = await clicks_after_change(page, 2, "c.kind === 'beat' && c.inBar === 1")
        downbeats = [c for c in clicks if c["kind"] == "beat" and c["inBar"] == 1]
        assert downbeats and all(c["downbeat"] and not c["accent"] for c in downbeats)
        assert {c["peak"] for c in clicks if c["kind"] == "beat"} == {0.6}

        # volume reaches the gain every click goes through (squared: half way is a quarter)
        await page.page.fill("#set-volume", "50")
        assert (await page.js("bandsync.comforts"))["outputGain"] == pytest.approx(0.25)
        assert await page.text("#set-volume-value") == "50 %"
        await page.page.fill("#set-volume", "0")
        assert (await page.js("bandsync.comforts"))["outputGain"] == 0
        await page.page.fill("#set-volume", "80")
        assert (await page.js("bandsync.comforts"))["outputGain"] == pytest.approx(0.64)

        # kept per device: after a reload the sheet shows the choices and the clicks follow them
        await pick(page, "set-sound", "hat")
        await page.page.reload()
        await page.wait(SYNCED)
        stored = await page.js(
            "['sound', 'volume', 'accent', 'subdivision']"
            ".map(k => localStorage.getItem('bandsync.' + k))"
        )
        assert stored == ["hat", "80", "false", "eighths"]
        pressed = await page.js(
            "[...document.querySelectorAll('#settings button[aria-pressed=\"true\"]')]"
            ".map(b => b.dataset.value || b.id)"
        )
        assert set(pressed) == {"hat", "eighths", "speaker"}
        assert await page.js("document.getElementById('set-volume').value") == "80"
        await page.page.click("#click-toggle")
        await page.wait("bandsync.audioState === 'running'")
        clicks = await clicks_after_change(page, 3, "c.kind === 'beat'")
        assert {c["sound"] for c in clicks} == {"hat"} and {c["volume"] for c in clicks} == {80}
        assert (await page.js("bandsync.comforts"))["outputGain"] == pytest.approx(0.64)
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


#: Renders one click of each voice through the page's own playClick (the module the page
#: runs, imported again: the same instance) into an OfflineAudioContext, through a gain at a
#: volume, and measures it: peak, the share of energy after 25 ms, zero crossings per second.
RENDER = """async (volume) => {
  const audio = await import('/static/audio.js');
  const out = {};
  for (const sound of ['beep', 'wood', 'hat']) {
    for (const voice of ['accent', 'beat', 'sub']) {
      const rate = 48000;
      const ctx = new OfflineAudioContext(1, rate * 0.15, rate);
      const gain = ctx.createGain();
      gain.gain.value = audio.volumeGain(volume);
      gain.connect(ctx.destination);
      audio.playClick(ctx, gain, 0.01, {sound, accent: voice === 'accent', sub: voice === 'sub'});
      const data = (await ctx.startRendering()).getChannelData(0);
      let peak = 0, energy = 0, late = 0, crossings = 0;
      // the pitch: zero crossings while every voice still sounds (its first 15 ms)
      const from = rate * 0.0105, to = rate * 0.0255;
      for (let i = 0; i < data.length; i += 1) {
        peak = Math.max(peak, Math.abs(data[i]));
        energy += data[i] * data[i];
        if (i > rate * 0.035) late += data[i] * data[i];
        const crossed = i > 0 && (data[i - 1] < 0) !== (data[i] < 0);
        if (crossed && i >= from && i < to) crossings += 1;
      }
      out[sound + '.' + voice] = {peak, late: energy ? late / energy : 0,
                                  zcr: crossings / 0.015, energy};
    }
  }
  return out;
}"""


async def test_the_three_sounds_differ_and_follow_the_volume(browser, server):
    page = await open_page(browser, f"{server.url}/s/jam?name=Keys")
    full = await page.page.evaluate(RENDER, 100)
    half = await page.page.evaluate(RENDER, 50)
    for name, measured in full.items():
        assert measured["peak"] > 0.1, (name, measured)  # every voice sounds
        # volume 50 %: a quarter of the amplitude, whatever the sound
        assert half[name]["peak"] == pytest.approx(measured["peak"] * 0.25, rel=0.02), name
    for sound in ("beep", "wood", "hat"):
        accent, beat, sub = (full[f"{sound}.{v}"] for v in ("accent", "beat", "sub"))
        assert accent["energy"] > beat["energy"] > sub["energy"], sound  # accent louder, sub softer
    # a hi-hat is noise above 6 kHz: far more zero crossings than the tones
    assert full["hat.beat"]["zcr"] > 3 * full["beep.beat"]["zcr"]
    assert full["hat.beat"]["zcr"] > 3 * full["wood.beat"]["zcr"]
    # a woodblock dies sooner than the beep: little of it is left after 35 ms
    assert full["wood.beat"]["late"] < 0.2 * full["beep.beat"]["late"]
    # the beep is the page's original click: a downbeat a sixth higher (1760 vs 1175 Hz)
    assert full["beep.accent"]["zcr"] == pytest.approx(
        full["beep.beat"]["zcr"] * 1760 / 1175, rel=0.1
    )
    assert page.errors == []


#: navigator.vibrate for a browser without a vibrator: it records when it was called and with
#: what (in the page only; the vibration motor is outside the product).
VIBRATOR = """
window.__vibrations = [];
Object.defineProperty(Navigator.prototype, 'vibrate', { configurable: true, value:
  function (pattern) { window.__vibrations.push([performance.now(), pattern]); return true; } });
"""


@pytest.mark.slow
async def test_vibration_pulses_on_the_beat_not_moved_by_the_latency(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Bass", VIBRATOR)
        await command(leader, "set_tempo", tempo=240)  # 250 ms a beat
        await command(leader, "play")
        await page.wait("bandsync.isPlaying && bandsync.lockedIn")
        await page.page.click("#settings-open")
        assert await page.js("document.getElementById('set-vibrate').disabled") is False
        await page.page.click("#set-vibrate")
        assert (await page.js("bandsync.comforts"))["vibrate"] is True
        assert await page.js("localStorage.getItem('bandsync.vibrate')") == "true"
        await page.page.click("#settings-close")
        # a latency for the headphones must not move the pulse: the motor is on the phone
        for _ in range(4):
            await page.page.click("#nudge-up")
        assert await page.js("bandsync.nudgeMs") == 20
        await page.wait("window.__vibrations.length >= 6", timeout=5)
        # read in one go (the page runs one task at a time): the calls and the log agree
        calls, log, offset = await page.js(
            "[window.__vibrations, bandsync.vibrations(), bandsync.offsetMs]"
        )
        fired = sorted((e for e in log if e["calledAt"] is not None), key=lambda e: e["calledAt"])
        assert len(fired) >= 6
        # each call is one of the page's scheduled beats, in order, none made twice or by
        # anything else (the page stamps calledAt just before it calls)
        assert len(calls) == len(fired), (calls, fired)
        for (at, pulse), entry in zip(calls, fired, strict=True):
            assert 0 <= at - entry["calledAt"] < 25.0, (at, entry)
            assert pulse == entry["pulseMs"] == (60 if entry["accent"] else 30)
            # on the beat's own instant (the timeline's, in local time), never early, and
            # within a timer's lateness of it
            due = entry["beatServerTime"] - offset
            assert -1.0 <= at - due <= 25.0, (at, due, entry)
        beats = [e["beat"] for e in fired]
        assert beats == sorted(beats) and len(set(beats)) == len(beats)
        assert {e["accent"] for e in fired} == {True, False}  # downbeats are longer
        # off again: no more calls
        await page.page.click("#settings-open")
        await page.page.click("#set-vibrate")
        count = len(await page.js("window.__vibrations"))
        await page.page.wait_for_timeout(900)
        assert len(await page.js("window.__vibrations")) == count
        assert page.errors == []
    finally:
        await leader.close()


async def test_without_vibration_the_toggle_is_off_and_says_why(browser, server):
    page = await open_page(
        browser, f"{server.url}/s/jam?name=Vox", "delete Navigator.prototype.vibrate"
    )
    assert await page.js("'vibrate' in navigator") is False
    await page.page.click("#settings-open")
    assert await page.js("document.getElementById('set-vibrate').disabled") is True
    assert (await page.js("bandsync.comforts"))["vibrationSupported"] is False
    note = await page.text("#set-note")
    assert "cannot vibrate" in note and "iPhone" in note
    assert await page.page.is_visible("#set-note")
    geo = await sheets(page)
    assert_panel_fits(geo, "settings")
    assert page.errors == []


@pytest.mark.slow
async def test_latency_spans_minus_50_to_plus_400_and_a_long_one_is_on_time(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Sax")
        for _ in range(10):
            await page.page.click("#nudge-down")
        assert await page.js("bandsync.nudgeMs") == -50
        assert await page.text("#nudge-value") == "\u221250 ms"
        assert await page.js("document.getElementById('nudge-down').disabled") is True
        # a phone that kept 395 ms for its speaker: + reaches the top and stops there
        await page.js(
            "localStorage.setItem('bandsync.outputDelays',"
            " JSON.stringify({speaker: 395, wired: 0, bluetooth: 0}))"
        )
        await page.page.reload()
        await page.wait(SYNCED)
        assert await page.js("bandsync.nudgeMs") == 395
        await page.page.click("#nudge-up")
        assert await page.js("bandsync.nudgeMs") == 400
        assert await page.js("document.getElementById('nudge-up').disabled") is True
        await page.page.click("#nudge-up", force=True)
        assert await page.js("bandsync.nudgeMs") == 400

        # 400 ms early is more than the scheduler's look-ahead: every beat still sounds, on
        # time, each sent 400 ms before its beat
        await command(leader, "set_tempo", tempo=200)
        await command(leader, "play")
        await page.page.click("#click-toggle")
        # (the first pass may find a beat due within the output's own latency: late, skipped)
        await page.wait("bandsync.clickTimes().filter(c => !c.cancelled).length >= 2", 4)
        clicks = await clicks_after_change(page, 8)
        assert not [c for c in clicks if c["late"]]
        beats = [c["beat"] for c in clicks]
        assert beats == list(range(beats[0], beats[0] + len(beats)))  # none missing
        for click in clicks:
            assert click["playServerTime"] == pytest.approx(click["beatServerTime"] - 400)
            assert click["nudgeMs"] == 400
        for a, b in itertools.pairwise(clicks):
            if a["audioMap"] == b["audioMap"]:
                assert b["audioTime"] - a["audioTime"] == pytest.approx(0.3, abs=0.002)
        assert page.errors == []
    finally:
        await leader.close()


async def test_the_old_click_timing_carries_over_turned_round(browser, server):
    """The old nudge was "positive = later" (±100 ms); the latency is "positive = earlier"."""
    page = await open_page(
        browser,
        f"{server.url}/s/jam?name=Tuba",
        "if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1');"
        " localStorage.setItem('bandsync.nudgeMs', '-30'); }",
    )
    assert await page.js("bandsync.nudgeMs") == 30
    assert await page.js("localStorage.getItem('bandsync.nudgeMs')") is None
    assert (await page.js("bandsync.comforts"))["outputDelays"]["speaker"] == 30
    await page.page.reload()
    await page.wait(SYNCED)
    assert await page.js("bandsync.nudgeMs") == 30


async def test_an_output_that_comes_or_goes_flags_the_settings(browser, server):
    """``devicechange`` (secure contexts: localhost here) rings the settings button and says
    so in the sheet; picking the output clears it."""
    page = await open_page(browser, f"{server.url}/s/jam?name=Cello")
    assert await page.js("!!navigator.mediaDevices") is True
    await page.js("(navigator.mediaDevices.dispatchEvent(new Event('devicechange')), 1)")
    assert "attention" in await page.js("document.getElementById('settings-open').className")
    await page.page.click("#settings-open")
    assert "output came or went" in await page.text("#set-note")
    assert "attention" not in await page.js("document.getElementById('settings-open').className")
    await pick(page, "set-output", "wired")
    assert await page.page.is_hidden("#set-note")
    assert page.errors == []
