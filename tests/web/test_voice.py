"""The spoken count-in (issue 15 item 5): the numbers ``scripts/make_voice`` makes, served with
the page, and spoken on the count-in's beats in real headless Chromium against a real server.

What is asserted is what the page places on the audio clock: ``bandsync.voiceTimes()`` (each
word, its number and instant) against ``bandsync.clickTimes()`` (the click entry of every
beat, spoken or clicked), and one word rendered through the page's own ``playVoice`` into an
OfflineAudioContext (its onset on the instant asked for).
"""

from __future__ import annotations

import itertools
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import bandsync_desktop

from ..helpers.engines import Engine
from .test_comforts import assert_no_overlap, assert_panel_fits, open_page, sheets
from .test_follower_page import SYNCED, Page, command, leader_of
from .test_page_layout import open_at, snap

VOICE_DIR = Path(bandsync_desktop.__file__).parent / "web" / "voice"

NUMBERS = range(1, 13)


def in_chromium(test: Any) -> Any:
    """A page test: headless Chromium, on the asyncio loop."""
    return pytest.mark.browser(pytest.mark.asyncio(test))


def test_the_samples_are_small_mono_and_start_on_their_word() -> None:
    total = 0
    for number in NUMBERS:
        path = VOICE_DIR / f"{number}.wav"
        total += path.stat().st_size
        with wave.open(str(path)) as reader:
            assert reader.getnchannels() == 1 and reader.getsampwidth() == 2, path
            rate = reader.getframerate()
            assert 8000 <= rate <= 22050, (path, rate)
            frames = reader.readframes(reader.getnframes())
        samples = [int.from_bytes(frames[i : i + 2], "little", signed=True)
                   for i in range(0, len(frames), 2)]  # fmt: skip
        duration = len(samples) / rate
        assert 0.1 <= duration <= 0.45, (path, duration)  # a word, trimmed at both ends
        peak = max(abs(s) for s in samples)
        assert peak >= 0.85 * 32767, (path, peak)  # normalised
        # the word starts at once (make_voice cuts at the first sample 30 dB under the
        # loudest and fades in over half a millisecond): its first 2 ms are not silence
        head = max(abs(s) for s in samples[: rate // 500])
        assert head >= peak * 10 ** (-36 / 20), (path, head, peak)
    assert total < 150_000, total


@pytest.mark.asyncio
async def test_the_samples_are_served_with_the_page(server) -> None:
    async with aiohttp.ClientSession() as http:
        for number in (1, 12):
            async with http.get(f"{server.url}/static/voice/{number}.wav") as response:
                assert response.status == 200
                assert response.content_type == "audio/wav"
                body = await response.read()
                assert body == (VOICE_DIR / f"{number}.wav").read_bytes()
        async with http.get(f"{server.url}/static/voice/13.wav") as response:
            assert response.status == 404


# -- in the page ------------------------------------------------------------------------------


async def voice_page(browser: Any, url: str, *, voice: bool, nudge_ms: int = 0) -> Page:
    """A page with its click on (the audio clock running), the spoken count-in as asked, and
    a latency of ``nudge_ms`` for its output."""
    page = await open_page(browser, url)
    if voice:
        await page.page.click("#settings-open")
        await page.page.click("#set-voice")
        assert await page.js("document.getElementById('set-voice').ariaPressed") == "true"
        assert await page.js("localStorage.getItem('bandsync.voice')") == "true"
        await page.page.click("#settings-close")
    for _ in range(nudge_ms // 5):
        await page.page.click("#nudge-up")
    assert await page.js("bandsync.nudgeMs") == nudge_ms
    await page.page.click("#click-toggle")
    await page.wait("bandsync.audioState === 'running'")
    # clicks are placed once the output's start-up is over (AUDIO_WARMUP_S, 0.5 s) and the
    # map has settled (AUDIO_MAP_SETTLE_MS): a count-in started sooner would find its first
    # beat already due (not placed)
    await page.wait("bandsync.audioClock.mapped", timeout=5)
    return page


async def count_in(
    page: Page, leader: Any, tempo: float, beats_per_bar: int, bars: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Plays from the top with a count-in; returns the count-in's clicks, the song's first
    clicks and the words spoken, once a bar of the song has been placed."""
    await command(leader, "set_tempo", tempo=tempo)
    await command(leader, "set_meter", beatsPerBar=beats_per_bar, beatUnit=4)
    # the page has them (and any stop before): a click that played before a stop reached it
    # (a loaded machine's page, CI 3 Dec) is not taken for this song's
    await page.wait(
        f"!bandsync.isPlaying && bandsync.tempoBpm === {tempo}"
        f" && bandsync.beatsPerBar === {beats_per_bar}"
    )
    started = await page.js("bandsync.serverNow()")
    await command(leader, "play", countInBars=bars)
    await page.wait("bandsync.countingIn", timeout=3)
    beat_s = 60 / tempo
    await page.wait(
        f"bandsync.clickTimes().filter(c => !c.cancelled && !c.countIn"
        f" && c.beatServerTime > {started}).length >= {beats_per_bar}",
        timeout=bars * beats_per_bar * beat_s + 4,
    )
    clicks = [
        c
        for c in await page.js("bandsync.clickTimes()")
        if not c["cancelled"] and c["beatServerTime"] > started and c["kind"] == "beat"
    ]
    words = [
        w
        for w in await page.js("bandsync.voiceTimes()")
        if not w["cancelled"] and w["beatServerTime"] > started
    ]
    counted = [c for c in clicks if c["countIn"]]
    # the song's clicks come after the count-in's first: a click of the song before, already
    # sounding when the stop reached the page, is no click of this one
    first = min((c["beatServerTime"] for c in counted), default=started)
    song = [c for c in clicks if not c["countIn"] and c["beatServerTime"] > first]
    return counted, song, words


def assert_spoken_on_the_clicks(
    counted: list[dict[str, Any]], words: list[dict[str, Any]], nudge_ms: int
) -> None:
    """Each word is its beat's click entry's instant, on the audio clock too, and takes the
    click's place; the beats without a word click."""
    assert not [c for c in counted if c["late"]], counted
    by_beat = {c["beatServerTime"]: c for c in counted}
    assert len(by_beat) == len(counted)
    for word in words:
        click = by_beat[word["beatServerTime"]]
        assert word["audioTime"] == pytest.approx(click["audioTime"], abs=0.001), (word, click)
        assert word["playServerTime"] == pytest.approx(click["playServerTime"], abs=1.0)
        assert word["playServerTime"] == pytest.approx(word["beatServerTime"] - nudge_ms)
        assert word["nudgeMs"] == nudge_ms and not word["late"]
        assert click["spoken"] == word["number"] and click["peak"] is None  # no click under it
    spoken = {w["beatServerTime"] for w in words}
    for click in counted:
        if click["beatServerTime"] not in spoken:
            assert click["spoken"] is None and click["peak"] is not None, click


@in_chromium
async def test_a_count_in_is_spoken_in_the_meter_and_the_song_is_not(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await voice_page(browser, f"{server.url}/s/jam?name=Drums", voice=True, nudge_ms=40)
        await page.wait("bandsync.voice.loaded.length === 12", timeout=5)
        assert (await page.js("bandsync.voice"))["failed"] == {}

        # 3/4, two bars: a bar with no middle counts every beat, in both bars
        counted, song, words = await count_in(page, leader, 180, 3, 2)
        assert len(counted) == 6, counted
        assert [w["number"] for w in words] == [1, 2, 3, 1, 2, 3]
        assert [w["inBar"] for w in words] == [c["inBar"] for c in counted]
        assert [w["beatsLeft"] for w in words] == [6, 5, 4, 3, 2, 1]
        assert_spoken_on_the_clicks(counted, words, 40)
        # one beat apart on the audio clock (333 ms), each word cut at the next beat at most
        for a, b in itertools.pairwise(words):
            if a["audioMap"] == b["audioMap"]:
                assert b["audioTime"] - a["audioTime"] == pytest.approx(1 / 3, abs=0.002)
        assert all(w["lengthS"] <= 1 / 3 + 1e-9 for w in words)
        # the song itself clicks, unspoken, from its downbeat on
        assert song and all(c["spoken"] is None and c["peak"] is not None for c in song)
        assert max(w["beatServerTime"] for w in words) < min(c["beatServerTime"] for c in song)

        # 4/4, two bars: the drummer's call, "one … two … | one two three four"
        await command(leader, "stop")
        counted, song, words = await count_in(page, leader, 200, 4, 2)
        assert len(counted) == 8, counted
        called = {w["beatServerTime"]: w["number"] for w in words}
        assert [called.get(c["beatServerTime"]) for c in counted] == [1, None, 2, None, 1, 2, 3, 4]
        assert_spoken_on_the_clicks(counted, words, 40)
        assert all(c["spoken"] is None for c in song)
        later = await page.js("bandsync.voiceTimes()")
        assert {w["beatServerTime"] for w in later if not w["cancelled"]} >= set(called)
        assert not [w for w in later if w["beatServerTime"] >= song[0]["beatServerTime"]]
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


@in_chromium
async def test_with_the_option_off_nothing_is_spoken_or_fetched(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await voice_page(browser, f"{server.url}/s/jam?name=Bass", voice=False)
        fetched: list[str] = []
        page.page.on("request", lambda request: fetched.append(request.url))
        assert (await page.js("bandsync.comforts"))["voice"] is False
        counted, _song, words = await count_in(page, leader, 200, 4, 1)
        assert len(counted) == 4 and not [c for c in counted if c["late"]]
        assert words == [] and await page.js("bandsync.voiceTimes()") == []
        assert all(c["spoken"] is None and c["peak"] is not None for c in counted)
        assert not [url for url in fetched if "/voice/" in url]  # lazy: never loaded
        assert (await page.js("bandsync.voice"))["loaded"] == []
        assert page.errors == []
    finally:
        await leader.close()


@in_chromium
async def test_a_sample_that_fails_to_load_leaves_its_beat_to_the_click(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        page = await open_page(browser, f"{server.url}/s/jam?name=Keys")
        # "two" cannot be fetched; "three" arrives but is no audio
        await page.context.route("**/static/voice/2.wav", lambda route: route.abort())
        await page.context.route(
            "**/static/voice/3.wav",
            lambda route: route.fulfill(status=200, body=b"not a wav", content_type="audio/wav"),
        )
        await page.page.click("#settings-open")
        await page.page.click("#set-voice")
        await page.page.click("#settings-close")
        await page.page.click("#click-toggle")
        await page.wait("bandsync.audioState === 'running'")
        await page.wait("bandsync.voice.loading.length === 0", timeout=5)
        await page.wait("bandsync.audioClock.mapped", timeout=5)  # (see voice_page)
        info = await page.js("bandsync.voice")
        assert set(info["failed"]) == {"2", "3"}, info
        assert info["loaded"] == [1, *range(4, 13)]

        counted, _song, words = await count_in(page, leader, 180, 3, 1)
        assert [w["number"] for w in words] == [1]
        assert_spoken_on_the_clicks(counted, words, 0)
        # beats 2 and 3 click as they always did, and say which word they missed
        assert [c["unspoken"] for c in counted[1:]] == [2, 3]
        assert all(c["peak"] is not None for c in counted[1:])
        assert page.errors == []
    finally:
        await leader.close()


#: One word rendered through the page's own playVoice at 50 ms: where it starts (its first
#: sample 40 dB under its peak), and whether a cut at 100 ms leaves anything after it.
RENDER = """async () => {
  const audio = await import('/static/audio.js');
  const rate = 48000;
  const out = {};
  for (const number of [1, 6, 8]) {
    const bytes = await (await fetch('/static/voice/' + number + '.wav')).arrayBuffer();
    for (const cut of [10, 0.1]) {
      const ctx = new OfflineAudioContext(1, rate * 0.6, rate);
      const buffer = await ctx.decodeAudioData(bytes.slice(0));
      audio.playVoice(ctx, ctx.destination, 0.05, buffer, cut);
      const data = (await ctx.startRendering()).getChannelData(0);
      let peak = 0;
      for (const x of data) peak = Math.max(peak, Math.abs(x));
      const onset = data.findIndex((x) => Math.abs(x) >= peak * 0.01) / rate;
      let last = 0;
      data.forEach((x, i) => { if (Math.abs(x) > 1e-4) last = i; });
      out[number + '@' + cut] = {peak, onset, end: last / rate, duration: buffer.duration};
    }
  }
  return out;
}"""


@in_chromium
async def test_a_word_starts_on_its_instant_and_stops_at_the_next_beat(browser, server):
    page = await open_page(browser, f"{server.url}/s/jam?name=Vox")
    rendered = await page.page.evaluate(RENDER)
    for name, measured in rendered.items():
        assert measured["peak"] > 0.5, (name, measured)
        # the word (its first sound 40 dB under its peak, above any silence) starts on the
        # 50 ms asked for: not before, and not after (no silence left ahead of it)
        assert 0.0495 <= measured["onset"] <= 0.051, (name, measured)
        if name.endswith("@0.1"):
            assert measured["end"] <= 0.15 + 0.0005, (name, measured)  # cut, faded by then
        else:
            assert measured["end"] == pytest.approx(0.05 + measured["duration"], abs=0.003)
    assert page.errors == []


SIZES = [(390, 844), (844, 390), (360, 800)]


@in_chromium
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_the_option_sits_in_the_sheet_and_the_sheet_still_fits(browser, server, size):
    page = await open_at(browser, f"{server.url}/s/jam?name=Keys", size)
    await page.page.click("#settings-open")
    assert await page.js("document.getElementById('set-voice').ariaPressed") == "false"  # off
    await page.page.click("#set-voice")
    assert (await page.js("bandsync.comforts"))["voice"] is True
    geo = await sheets(page)
    assert_panel_fits(geo, "settings")  # on the screen, no scrolling, words fit, finger-sized
    assert_no_overlap(geo["settings"]["controls"])
    voice = next(c for c in geo["settings"]["controls"] if c["id"] == "set-voice")
    accent = next(c for c in geo["settings"]["controls"] if c["id"] == "set-accent")
    assert voice["top"] >= accent["bottom"]  # its own line, under Accent and Vibrate
    await snap(page, size, "settings-voice")
    # kept per device
    await page.page.reload()
    await page.wait("bandsync.connected")
    assert (await page.js("bandsync.comforts"))["voice"] is True
    assert await page.js("document.getElementById('set-voice').ariaPressed") == "true"
    assert page.errors == []


@pytest.mark.asyncio
async def test_every_engine_decodes_the_samples(engine: Engine, server) -> None:
    """Firefox and WebKit too: the page's own loader decodes all twelve into its context."""
    page = await engine.open(f"{server.url}/s/jam?name=Sax")
    await page.wait(SYNCED, timeout=10)
    await page.click("#settings-open")
    await page.click("#set-voice")
    await page.click("#settings-close")
    await page.click("#click-toggle")
    await page.wait("bandsync.voice.loaded.length + Object.keys(bandsync.voice.failed).length"
                    " === 12", timeout=10)  # fmt: skip
    info = await page.js("bandsync.voice")
    assert info["failed"] == {} and info["loaded"] == list(NUMBERS), info
