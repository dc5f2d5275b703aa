"""The page's sync.js computes what core/timeline.py and core/clocksync.py compute.

Timelines are built with the server's own rules (tempo changes, count-in plays, pauses,
seeks, meter changes), sent to sync.js under node, and every answer is compared.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from bandsync_desktop.core.clocksync import OffsetEstimator, SyncSample
from bandsync_desktop.core.timeline import Timeline
from tests.helpers.node import needs_node, run_check

CHECK = Path(__file__).with_name("sync_check.js")

pytestmark = needs_node


def random_timeline(rng: random.Random) -> Timeline:
    t = 1_700_000_000_000.0 + rng.uniform(0, 1e6)
    timeline = Timeline.stopped(t, rng.choice([60.0, 97.5, 120.0, 173.0]), rng.choice([3, 4, 7]))
    for _ in range(rng.randint(1, 6)):
        t += rng.uniform(50, 3000)
        action = rng.choice(["tempo", "play", "pause", "seek", "meter", "ramp", "ramp"])
        boundary = rng.choice(["now", "beat", "bar"])
        at = timeline.effective_time(t, boundary)  # type: ignore[arg-type]
        if action == "tempo":
            timeline = timeline.with_tempo(at, rng.uniform(20, 280))
        elif action == "play":
            timeline = timeline.played(at, rng.choice([0, 3, 4, 8]))
        elif action == "pause":
            timeline = timeline.paused(at)
        elif action == "ramp":
            timeline = timeline.with_ramp(at, rng.uniform(20, 280), rng.choice([1.5, 4, 16, 64]))
        elif action == "seek":
            timeline = timeline.sought(at, rng.uniform(0, 200_000))
        else:
            timeline = timeline.with_meter(at, rng.randint(1, 16), rng.choice([2, 4, 8]))
    return timeline


def python_beats(timeline: Timeline, lo: float, hi: float) -> list[tuple[float, float]]:
    """Every (time, beat) at which a click sounds, from the Python rules, by brute force."""
    out = []
    segments = timeline.segments
    for i, seg in enumerate(segments):
        end = segments[i + 1].start_ms if i + 1 < len(segments) else math.inf
        a, b = max(lo, seg.start_ms), min(hi, end)
        if not seg.playing or a >= b:
            continue
        # (count-in clicks counted from the anchor's exact instant, low part included)
        n = math.ceil((a - seg.anchor_ms - seg.anchor_lo_ms) / seg.beat_ms - 1e-6)
        while n < 0 and seg.anchor_ms + (seg.anchor_lo_ms + n * seg.beat_ms) < min(
            b, seg.anchor_ms
        ):
            out.append((seg.anchor_ms + (seg.anchor_lo_ms + n * seg.beat_ms), seg.beat + n))
            n += 1
        k = math.ceil(seg.beat_at(max(a, seg.anchor_ms)) - 1e-6)
        while max(a, seg.anchor_ms) < b and seg.time_of_beat(k) < b:
            out.append((seg.time_of_beat(k), float(k)))
            k += 1
    return out


def run_node(payload: dict[str, object]) -> dict[str, object]:
    result: dict[str, object] = run_check(CHECK, payload)
    return result


def test_js_timeline_and_estimator_match_the_python_core():
    rng = random.Random(20261122)
    cases = []
    for _ in range(60):
        timeline = random_timeline(rng)
        first, last = timeline.segments[0].start_ms, timeline.latest.start_ms
        times = [rng.uniform(first - 2000, last + 20_000) for _ in range(40)]
        times += [s.start_ms for s in timeline.segments] + [s.anchor_ms for s in timeline.segments]
        window = (first - 1000, last + 8000)
        cases.append((timeline, times, window))
    # Anchors with a low part (changes on a beat) are among them: sync.js must add it as
    # Python does, or beats differ by up to an ulp's worth (~1e-7 beats, over the 1e-9 asked).
    lows = [s.anchor_lo_ms for tl, _, _ in cases for s in tl.segments if s.anchor_lo_ms]
    assert len(lows) >= 20

    samples = []
    local = 5_000.0
    true_offset = 1_700_000_000_123.456
    for _ in range(80):
        local += rng.uniform(5, 400)
        up, down, serve = rng.uniform(1, 60), rng.uniform(1, 60), rng.uniform(0, 2)
        t1 = local + up + true_offset
        samples.append((local, t1, t1 + serve, local + up + serve + down))
    queries = [
        {"after": n, "now": samples[n - 1][3] + rng.uniform(0, 30_000)} for n in range(1, 81)
    ]

    result = run_node(
        {
            "timelines": [
                {"segments": tl.to_wire(), "times": times, "window": window}
                for tl, times, window in cases
            ],
            "estimator": {"window": 32, "samples": samples, "queries": queries},
        }
    )

    for (timeline, times, window), js in zip(cases, result["timelines"], strict=True):  # type: ignore[call-overload]
        for t, point in zip(times, js["points"], strict=True):
            bb = timeline.bar_beat_at(t)
            assert point["position"] == pytest.approx(timeline.position_at(t), abs=1e-6)
            assert point["beat"] == pytest.approx(timeline.beat_at(t), abs=1e-9)
            assert (point["bar"], point["inBar"]) == (bb.bar, bb.beat)
            assert point["playing"] == timeline.is_playing_at(t)
            assert point["countingIn"] == timeline.counting_in_at(t)
            assert point["tempo"] == pytest.approx(timeline.tempo_at(t), rel=1e-12)
        expected = python_beats(timeline, *window)
        got = [(b["time"], b["beat"]) for b in js["beats"]]
        assert len(got) == len(expected)
        for (gt, gb), (et, eb) in zip(got, expected, strict=True):
            assert gt == pytest.approx(et, abs=1e-6)
            assert gb == pytest.approx(eb, abs=1e-9)
            # a click lands exactly where the timeline says that beat is
            assert timeline.beat_at(gt) == pytest.approx(gb, abs=1e-5)

    estimator = OffsetEstimator(32)
    added = 0
    for query, js in zip(queries, result["estimates"], strict=True):  # type: ignore[call-overload]
        while added < query["after"]:
            estimator.add(SyncSample(*samples[added]))
            added += 1
        assert js["offset"] == pytest.approx(estimator.offset(query["now"]), abs=1e-6)
        assert js["uncertainty"] == pytest.approx(estimator.uncertainty(query["now"]), abs=1e-6)
        assert js["rtt"] == pytest.approx(estimator.rtt(query["now"]), abs=1e-6)
        # the truth lies within the reported bound (no drift in this simulation)
        assert abs(js["offset"] - true_offset) <= js["uncertainty"] + 1e-6
    assert result["rejected"] is True


def test_count_in_beats_come_before_the_downbeat_and_count_down():
    timeline = Timeline.stopped(1_000_000.0, 120.0, 4).played(1_000_000.0, 4)
    result = run_node(
        {
            "timelines": [
                {
                    "segments": timeline.to_wire(),
                    "times": [1_000_000.0, 1_000_600.0, 1_001_999.0, 1_002_000.0],
                    "window": [999_000.0, 1_003_000.0],
                }
            ],
            "estimator": {"window": 32, "samples": [], "queries": []},
        }
    )
    js = result["timelines"][0]  # type: ignore[index]
    assert [p["countInLeft"] for p in js["points"]] == [4, 3, 1, 0]
    beats = js["beats"]
    assert [b["countIn"] for b in beats] == [True] * 4 + [False] * 2
    assert [b["time"] for b in beats] == [1_000_000 + 500 * i for i in range(6)]
    assert [b["downbeat"] for b in beats] == [True, False, False, False, True, False]
