"""Asleep and awake: the follower page is back on the beat within a second.

The probe and the two emulations are bench/resume_bench.py's (its docstring says how the
sleep and the cut are made and what "locked on the beat within 2 ms" means): a page asleep
(hidden, its main thread frozen, its clock stepped back as deep sleep does, the tempo changed
meanwhile) and a network cut (every connection dropped and refused, the tempo changed
meanwhile), each measured from the instant the page is visible or the network is back. Runs
in every engine of tests/helpers/engines.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "resume_bench.py"
_SPEC = importlib.util.spec_from_file_location("resume_bench", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
resume = importlib.util.module_from_spec(_SPEC)
sys.modules["resume_bench"] = resume
_SPEC.loader.exec_module(resume)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

TRIALS = 2
#: How well the page's clock is mapped to the server's (bracketing performance.now() between
#: two host clock readings): Firefox and WebKit round performance.now() to ~1 ms and answer a
#: script in milliseconds, so their truth is known less closely.
CALIBRATION_MS = {"chromium": 1.0, "firefox": 1.5, "webkit": 1.5}
#: Firefox and WebKit load the page more slowly than Chromium, more so on a shared 2-core box.
LOAD_S = 15.0


async def joined_and_calibrated(engine: Any, url: str, server: Any) -> tuple[Any, Any]:
    """A page joined through ``url`` and its clock mapped to the server's well enough to
    judge 2 ms."""
    page = await resume.join_page(engine, url, timeout=LOAD_S)
    calibration = await resume.calibrate(page, server)
    assert calibration.half_width_ms < CALIBRATION_MS[engine.name], calibration
    return page, calibration


def assert_back_on_the_beat(records: list[dict[str, object]]) -> None:
    for record in records:
        lock = record["lockMs"]
        assert lock is not None, record  # not locked within the watch window
        assert isinstance(lock, int | float) and lock <= resume.TARGET_MS, record


async def test_back_on_the_beat_after_sleeping(engine, server):
    leader = await resume.leader_of(server.url)
    try:
        page, calibration = await joined_and_calibrated(engine, server.url, server)
        records = []
        for i in range(TRIALS):
            tempo = resume.TEMPOS[(i + 1) % len(resume.TEMPOS)]
            records.append(
                await resume.trial_visibility(
                    page, server, leader, calibration, tempo, freeze_s=1.5, watch_s=1.5
                )
            )
        assert_back_on_the_beat(records)
        # the page really slept: it woke on its stopped clock, 1.35 s behind
        for record in records:
            assert record["firstClockErrMs"] == pytest.approx(-1350.0, abs=50.0), record
        assert await page.js("window.__resume.checks.length") > 50
    finally:
        await leader.close()


async def test_back_on_the_beat_after_a_network_cut(engine, server, request):
    if engine.name == "firefox":
        # Known, not fixed: Firefox spaces out WebSocket reconnects to a host that just
        # failed, so it is back 0.2-1.3 s after the network returns (bench/resume_bench.py).
        request.node.add_marker(
            pytest.mark.xfail(reason="Firefox delays failed WebSocket reconnects", strict=False)
        )
    leader = await resume.leader_of(server.url)
    proxy = resume.CutProxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        page, calibration = await joined_and_calibrated(engine, proxy.url, server)
        records = []
        for i in range(TRIALS):
            tempo = resume.TEMPOS[(i + 1) % len(resume.TEMPOS)]
            records.append(
                await resume.trial_cut(
                    page, server, proxy, leader, calibration, tempo, cut_s=1.5, watch_s=2.0
                )
            )
        assert_back_on_the_beat(records)
        # it was cut off: it went offline and came back through a new connection
        assert all(r["connectedMs"] is not None and r["connectedMs"] > 0 for r in records)
    finally:
        await leader.close()
        await proxy.stop()
