"""The output latency (issue 14 item 4): tap-along calibration, per-output storage, the report.

- ``calibrate.js`` under node (as test_sync_math.py runs sync.js): pairing taps with beats,
  median and interquartile spread, refusals, against hand-worked runs and a Python reference.
- The calibration in real headless Chromium: taps dispatched at known offsets from the
  page's own beat instants (``bandsync.calibration``) are measured and proposed; a sloppy run
  is refused; Accept keeps the latency for the chosen output and the click moves by it.
- The report: a real server keeps what the page's ``sync_report`` says of its output (and
  refuses what is out of range), and the console's member table, offscreen, shows it.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.members_panel import OUTPUT_COLUMN
from tests.gui.conftest import Run, console, qloop, run, server_clock, tap_clock  # noqa: F401
from tests.helpers.browser import CHROMIUM_ARGS
from tests.helpers.clients import Recorder
from tests.helpers.node import needs_node, run_check

from .conftest import chromium_path
from .test_follower_page import SYNCED, Page, command, leader_of
from .test_page_layout import snap

CHECK = Path(__file__).with_name("calibrate_check.js")
BEAT_MS = 600.0  # the page's calibration grid: 100 BPM
BEATS = [1000.0 + i * BEAT_MS for i in range(12)]


def node(request: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = run_check(CHECK, request)
    return answer


def assess(taps: list[float], beats: list[float] = BEATS, **options: Any) -> dict[str, Any]:
    run_: dict[str, Any] = node(
        {"runs": [{"taps": taps, "beats": beats, "beatMs": BEAT_MS, "options": options}]}
    )["runs"][0]
    return run_


# -- the math, under node ---------------------------------------------------------------------


@needs_node
def test_constants_match_the_page_and_the_server() -> None:
    from bandsync_desktop.core.validation import OUTPUT_DELAY_MAX_MS, OUTPUT_DELAY_MIN_MS

    constants = node({})["constants"]
    assert constants == {
        "MIN_TAPS": 8,
        "MAX_SPREAD_MS": 40,
        "EARLIEST_MS": -100,
        "DELAY_MIN_MS": OUTPUT_DELAY_MIN_MS,
        "DELAY_MAX_MS": OUTPUT_DELAY_MAX_MS,
    }
    settings_js = (Path(__file__).parents[2] / "bandsync_desktop/web/settings.js").read_text()
    assert f"NUDGE_MIN = {OUTPUT_DELAY_MIN_MS:g};" in settings_js
    assert f"NUDGE_MAX = {OUTPUT_DELAY_MAX_MS:g};" in settings_js


@needs_node
def test_a_steady_bluetooth_run_is_proposed_at_its_median() -> None:
    jitter = [-5, 3, -2, 5, 0, -4, 2, 4, -3, 1, -1, 0]
    result = assess([b + 230 + j for b, j in zip(BEATS, jitter, strict=True)])
    assert result["ok"] is True and result["reason"] is None
    assert result["offsetMs"] == 230
    assert result["taps"] == 12 and result["extra"] == 0 and result["stray"] == 0
    # the interquartile range of the differences (linear interpolation, as numpy's default)
    q1, _, q3 = statistics.quantiles([230 + j for j in jitter], n=4, method="inclusive")
    assert result["spreadMs"] == pytest.approx(q3 - q1, abs=0.05)
    assert result["spreadMs"] <= 10


@needs_node
def test_a_sloppy_run_too_few_taps_and_out_of_range_runs_are_refused() -> None:
    sloppy = [-80, 60, -40, 80, -70, 20, 75, -60, 40, -20, 70, -75]
    result = assess([b + 230 + j for b, j in zip(BEATS, sloppy, strict=True)])
    assert result["ok"] is False and result["reason"] == "spread"
    assert result["spreadMs"] == 125  # -62.5 .. +62.5
    # seven beats tapped: too few, however steady; eight are enough
    assert assess([b + 100 for b in BEATS[:7]])["reason"] == "few"
    eight = assess([b + 100 for b in BEATS[:8]])
    assert eight["ok"] is True and eight["offsetMs"] == 100 and eight["taps"] == 8
    assert assess([])["reason"] == "few" and assess([])["offsetMs"] is None
    # the limits themselves are in range, a millisecond past them is not
    assert assess([b + 400 for b in BEATS])["ok"] is True
    assert assess([b + 401 for b in BEATS])["reason"] == "range"
    assert assess([b - 50 for b in BEATS])["ok"] is True
    assert assess([b - 51 for b in BEATS])["reason"] == "range"
    # options move the thresholds
    assert assess([b + 100 for b in BEATS[:6]], minTaps=6)["ok"] is True
    assert assess([b + 230 + j for b, j in zip(BEATS, sloppy, strict=True)], maxSpreadMs=130)["ok"]


@needs_node
def test_a_long_lag_is_not_taken_for_an_early_tap_on_the_next_beat() -> None:
    # 350 ms after a beat is nearer the next one (250 ms early) on a 600 ms grid: a lag of
    # Bluetooth size, not an early tap
    assert assess([b + 350 for b in BEATS])["offsetMs"] == 350
    assert assess([b + 480 for b in BEATS])["reason"] == "range"  # the lag the grid can hold
    # a tap up to 100 ms early answers its beat; earlier, the beat before (480 ms late)
    assert assess([b - 100 for b in BEATS])["reason"] == "range"
    early = assess([b - 99 for b in BEATS])
    assert early["offsetMs"] == -99 and early["reason"] == "range"
    assert assess([b - 40 for b in BEATS])["offsetMs"] == -40


@needs_node
def test_double_stray_wild_and_unusable_taps() -> None:
    taps = [b + 200 for b in BEATS]
    doubled = taps + [t + 90 for t in taps[:3]]  # a bounce after three taps
    result = assess(doubled)
    assert result["offsetMs"] == 200 and result["extra"] == 3 and result["taps"] == 12
    # taps before the first beat, long after the last: they answer no beat
    result = assess([BEATS[0] - 500, *taps, BEATS[-1] + 900])
    assert result["stray"] == 2 and result["taps"] == 12
    # one flubbed tap does not move the median or the interquartile spread much
    wild = list(taps)
    wild[5] += 260
    result = assess(wild)
    assert result["ok"] is True and result["offsetMs"] == 200 and result["spreadMs"] == 0
    # in any order; NaN and infinities are not taps
    shuffled = list(taps)
    random.Random(4).shuffle(shuffled)
    result = assess([*shuffled, "NaN", "Infinity", "-Infinity"])
    assert result["offsetMs"] == 200 and result["taps"] == 12
    assert result["differences"] == [200] * 12


@needs_node
def test_quantile_median_and_grid_against_python() -> None:
    rng = random.Random(14)
    samples = [[rng.uniform(-100, 500) for _ in range(rng.randint(1, 30))] for _ in range(40)]
    answer = node(
        {
            "quantiles": [{"values": sorted(s), "q": q} for s in samples for q in (0.25, 0.75)],
            "medians": [*samples, [1, 2, 3, 4], [], ["NaN", 3, 1]],
            "grids": [{"start": 1000, "beatMs": 600, "count": 4}],
        }
    )
    expected = []
    for values in samples:
        if len(values) == 1:
            expected += [values[0], values[0]]
        else:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
            expected += [q1, q3]
    assert answer["quantiles"] == pytest.approx(expected)
    medians = [statistics.median(s) for s in samples] + [2.5, None, 2]
    assert answer["medians"][:-2] == pytest.approx(medians[:-2])
    assert answer["medians"][-2:] == [None, 2]
    assert answer["grids"] == [[1000, 1600, 2200, 2800]]


# -- the calibration in Chromium --------------------------------------------------------------

#: Dispatches a tap at each tap beat plus its offset (null: no tap), as a pointerdown on the
#: big button or a keydown, from a timer set a little early and then a spin, so each event's
#: own timeStamp is the intended instant. Returns the stamps.
TAP_ALONG = """async ([offsets, keys]) => {
  const beats = bandsync.calibration.tapBeats;
  const button = document.getElementById('cal-tap');
  const stamps = [];
  for (let i = 0; i < beats.length; i += 1) {
    if (offsets[i] === null) continue;
    const at = beats[i] + offsets[i];
    const wait = at - performance.now() - 25;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (performance.now() < at) { /* spin to the instant */ }
    const event = keys[i]
      ? new KeyboardEvent('keydown', { key: 'k', bubbles: true, cancelable: true })
      : new PointerEvent('pointerdown', { bubbles: true, cancelable: true });
    (keys[i] ? document : button).dispatchEvent(event);
    stamps.push(event.timeStamp);
  }
  return stamps;
}"""

JITTER = [-5, 3, -2, 5, 0, -4, 2, 4, -3, 1, -1, 0]
SLOPPY = [-80, 60, -40, 80, -70, 20, 75, -60, 40, -20, 70, -75]


async def tap_along(page: Page, lag_ms: float, jitter: list[int]) -> dict[str, Any]:
    """Waits for the run's grid, taps it at ``lag_ms + jitter``; the finished run."""
    await page.wait("bandsync.calibration && bandsync.calibration.phase === 'listening'", 5)
    beats = (await page.js("bandsync.calibration"))["tapBeats"]
    assert len(beats) == 12
    offsets = [lag_ms + j for j in jitter]
    keys = [i % 3 == 2 for i in range(len(beats))]  # every third tap is a key
    stamps = await page.page.evaluate(TAP_ALONG, [offsets, keys])
    # a loaded machine may land a tap a millisecond or two late: the page must measure the
    # tap it got, so what it reports is checked against each event's own stamp
    late = [s - b - o for s, b, o in zip(stamps, beats, offsets, strict=True)]
    assert all(-0.2 < d < 20 for d in late), late
    await page.wait("bandsync.calibration.phase === 'done'", timeout=5)
    run_: dict[str, Any] = await page.js("bandsync.calibration")
    assert run_["taps"] == pytest.approx(stamps, abs=0.01)
    differences = [s - b for s, b in zip(stamps, beats, strict=True)]
    assert run_["result"]["differences"] == pytest.approx(differences, abs=0.01)
    assert run_["result"]["offsetMs"] == math.floor(statistics.median(differences) + 0.5)
    return run_


def link_of(server: Any, client_id: str) -> Any:
    found = [c for c in server.service.connections.values() if c.client_id == client_id]
    assert len(found) == 1
    return found[0].link


@pytest.mark.asyncio
@pytest.mark.browser
@pytest.mark.slow
async def test_tapping_along_sets_the_bluetooth_latency(browser, server):
    leader = await leader_of(server.url, "jam")
    try:
        context = await browser.new_context(viewport={"width": 390, "height": 844})
        page = Page(await context.new_page(), context)
        await page.page.goto(f"{server.url}/s/jam?name=Bass")
        await page.wait(SYNCED)
        client_id = await page.js("bandsync.clientId")
        await command(leader, "set_tempo", tempo=120)
        await command(leader, "play")
        await page.page.click("#click-toggle")
        await page.wait("bandsync.clickTimes().filter(c => !c.cancelled).length >= 2", 4)

        await page.page.click("#settings-open")
        await page.page.click("#set-output button[data-value='bluetooth']")
        assert (await page.js("bandsync.comforts"))["output"] == "bluetooth"
        await page.page.click("#calibrate-open")
        assert await page.page.is_visible("#calibrate")
        assert not await page.page.is_visible("#settings")
        started = await page.js("bandsync.serverNow()")
        good = await tap_along(page, 230, JITTER)
        ended = await page.js("bandsync.serverNow()")
        result = good["result"]
        assert result["ok"] is True, good
        assert result["offsetMs"] == pytest.approx(230, abs=3)
        assert result["spreadMs"] <= 12 and result["taps"] == 12
        # the grid was played: each beat placed once on the audio clock, a beat apart, with
        # no latency (the taps measure all of it)
        placed = [p for p in good["placed"] if not p["cancelled"]]
        assert sorted(p["local"] for p in placed) == pytest.approx(good["beats"])
        for click in placed:
            assert click["audioTime"] == pytest.approx(click["local"] / 1000 + click["audioMap"])
        # the band's click rested meanwhile
        band = await page.js("bandsync.clickTimes()")
        assert not [
            c for c in band if not c["cancelled"] and started + 500 < c["playServerTime"] < ended
        ]
        message = await page.text("#cal-result")
        assert f"+{result['offsetMs']} ms after the click" in message, message
        assert "Bluetooth latency" in message
        assert await page.page.is_visible("#cal-accept")
        await snap(page, (390, 844), "calibrate-result")

        # Accept: the Bluetooth output keeps it, the speaker keeps its own
        proposal = result["offsetMs"]
        await page.page.click("#cal-accept")
        assert not await page.page.is_visible("#calibrate")
        comforts = await page.js("bandsync.comforts")
        assert comforts["outputDelays"] == {"speaker": 0, "wired": 0, "bluetooth": proposal}
        assert await page.js("bandsync.nudgeMs") == proposal
        assert await page.text("#nudge-value") == f"+{proposal} ms"
        # the band's click is back, sent `proposal` ms early, on time
        await page.wait(f"bandsync.clickTimes().filter(c => c.nudgeMs === {proposal}).length >= 3")
        moved = [c for c in await page.js("bandsync.clickTimes()") if c["nudgeMs"] == proposal]
        for click in moved:
            assert click["playServerTime"] == pytest.approx(click["beatServerTime"] - proposal)
        assert not [c for c in moved if c["late"]]

        # the server holds what the page reported, soon after the change
        link = link_of(server, client_id)
        for _ in range(60):  # 3 s
            if link.output_delay_ms == proposal:
                break
            await asyncio.sleep(0.05)
        assert (link.output_delay_ms, link.output) == (proposal, "bluetooth")

        # per output: the speaker's own latency comes back with it, Bluetooth's with Bluetooth
        await page.page.click("#settings-open")
        await page.page.click("#set-output button[data-value='speaker']")
        assert await page.js("bandsync.nudgeMs") == 0
        await page.page.click("#set-output button[data-value='bluetooth']")
        assert await page.js("bandsync.nudgeMs") == proposal
        assert await page.text("#set-delay") == f"+{proposal} ms"

        # a sloppy run: refused, in words, nothing to accept, the latency as it was
        await page.page.click("#calibrate-open")
        sloppy = await tap_along(page, 120, SLOPPY)
        assert sloppy["result"]["ok"] is False and sloppy["result"]["reason"] == "spread"
        assert sloppy["result"]["spreadMs"] > 40
        assert "spread over" in await page.text("#cal-result")
        assert not await page.page.is_visible("#cal-accept")
        assert await page.page.is_visible("#cal-again")
        await page.page.click("#cal-cancel")
        assert not await page.page.is_visible("#calibrate")
        assert await page.js("bandsync.nudgeMs") == proposal
        assert (await page.js("bandsync.comforts"))["outputDelays"]["bluetooth"] == proposal
        # and per device: a reload keeps it
        await page.page.reload()
        await page.wait(SYNCED)
        assert await page.js("bandsync.nudgeMs") == proposal
        assert (await page.js("bandsync.comforts"))["output"] == "bluetooth"
        assert page.errors == [] and page.console_errors == []
    finally:
        await leader.close()


@pytest.mark.asyncio
async def test_the_server_keeps_the_reported_output_and_refuses_what_is_out_of_range(
    server,
):
    phone = Recorder(server.url, "phone")
    await phone.connect()
    try:
        ack = await phone.call("join_session", {"sessionId": "jam", "displayName": "Ana"})
        assert ack["ok"] is True
        link = next(iter(server.service.connections.values())).link
        report = {"rttMs": 12.0, "uncertaintyMs": 0.5, "outputDelayMs": 220, "output": "bluetooth"}
        await phone.call("sync_report", report)
        assert (link.output_delay_ms, link.output) == (220, "bluetooth")
        for bad in (
            {"outputDelayMs": 401},
            {"outputDelayMs": -51},
            {"outputDelayMs": True},
            {"outputDelayMs": "220"},
            {"outputDelayMs": 100, "output": "hdmi"},
            {"outputDelayMs": 100, "output": 3},
        ):
            answer = await phone.call("sync_report", {"rttMs": 99.0, **bad})
            assert answer["ok"] is False and answer["error"]["code"] == "INVALID_PAYLOAD", bad
        # a refused report changes nothing, its other fields included
        assert (link.output_delay_ms, link.output) == (220, "bluetooth")
        assert 99.0 not in list(link.rtt_samples)
        # the limits themselves are accepted; a report without the fields keeps what was said
        await phone.call("sync_report", {"outputDelayMs": -50, "output": "wired"})
        assert (link.output_delay_ms, link.output) == (-50, "wired")
        await phone.call("sync_report", {"outputDelayMs": 400})
        assert (link.output_delay_ms, link.output) == (400, None)
        await phone.call("sync_report", {"rttMs": 10.0})
        assert link.output_delay_ms == 400
    finally:
        await phone.close()


# -- the console's member table, offscreen ----------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_the_console_members_table_shows_the_phones_latency(
    console: MainWindow,  # noqa: F811
    run: Run,  # noqa: F811
    qtbot: QtBot,
) -> None:
    """A real page (Chromium, driven on the console's qasync loop) on the console's server:
    its Bluetooth latency reaches the Output column as "BT +220"."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian chromium is not installed")
    from playwright.async_api import async_playwright

    runner = console.bridge.runner
    assert runner is not None
    url = f"http://127.0.0.1:{runner.port}/s/band?name=Ana"
    playwright = run(async_playwright().start())
    try:
        chromium = run(playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS))
        context = run(chromium.new_context())
        # this phone set 215 ms for its Bluetooth headphones on an earlier visit
        run(
            context.add_init_script(
                "if (!localStorage.getItem('bandsync.output')) {"
                " localStorage.setItem('bandsync.output', 'bluetooth');"
                " localStorage.setItem('bandsync.outputDelays',"
                " JSON.stringify({speaker: 10, wired: 0, bluetooth: 215})); }"
            )
        )
        page = run(context.new_page())
        run(page.goto(url))
        run(page.wait_for_function(f"() => {SYNCED}", timeout=10_000))
        assert run(page.evaluate("() => bandsync.nudgeMs")) == 215
        model = console.members_panel.model
        assert model.headerData(OUTPUT_COLUMN, Qt.Orientation.Horizontal) == "Output"

        def shown() -> str | None:
            rows = [r for r in model.rows if r.name == "Ana"]
            if not rows:
                return None
            index = model.index(model.rows.index(rows[0]), OUTPUT_COLUMN)
            return str(model.data(index))

        qtbot.waitUntil(lambda: shown() == "BT +215", timeout=5000)
        run(page.click("#nudge-up"))  # five more: the report follows within a second
        qtbot.waitUntil(lambda: shown() == "BT +220", timeout=3000)
        tip = model.headerData(
            OUTPUT_COLUMN, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole
        )
        assert "latency" in tip
        run(page.click("#settings-open"))
        run(page.click("#set-output button[data-value='speaker']"))
        qtbot.waitUntil(lambda: shown() == "Spkr +10", timeout=3000)
        run(chromium.close())
    finally:
        run(playwright.stop())
