"""Link health classification, the token bucket and the clocks."""

from __future__ import annotations

import pytest

from bandsync_desktop.core.clock import ManualClock, MonotonicClock
from bandsync_desktop.core.health import RTT_WINDOW, STALE_MS, LinkStats, classify
from bandsync_desktop.core.ratelimit import TokenBucket


@pytest.mark.parametrize(
    ("rtt", "unc", "silent", "status"),
    [
        (None, None, 0, "unknown"),
        (10, 1, 0, "good"),
        (10, None, 0, "good"),
        (60, 1, 0, "fair"),
        (10, 8, 0, "fair"),
        (200, 1, 0, "poor"),
        (10, 40, 0, "poor"),
        (10, 1, STALE_MS, "poor"),
    ],
)
def test_classify(rtt, unc, silent, status):
    assert classify(rtt, unc, silent) == status


def test_link_stats_use_the_median_rtt():
    link = LinkStats(last_seen=0)
    link.add_rtts([5, 6, 500, 7, -1])
    assert link.rtt_ms == 6.5
    wire = link.to_wire(1_000)
    assert wire["status"] == "good" and wire["rttMs"] == 6.5


def test_link_stats_keep_only_the_latest_window_of_rtts():
    link = LinkStats(last_seen=0)
    link.add_rtts(range(1000, 1000 + RTT_WINDOW))  # a bad spell...
    link.add_rtts([10.0] * (RTT_WINDOW // 2 + 1))  # ...then a majority of good round trips
    assert len(link.rtt_samples) == RTT_WINDOW
    assert list(link.rtt_samples)[-1] == 10.0
    assert link.rtt_ms == 10.0
    link.add_rtts([20.0] * RTT_WINDOW)
    assert list(link.rtt_samples) == [20.0] * RTT_WINDOW


def test_token_bucket_allows_bursts_then_refills():
    clock = ManualClock()
    bucket = TokenBucket(rate_per_s=10, burst=5, clock=clock)
    assert [bucket.allow() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(100)  # one token
    assert bucket.allow() and not bucket.allow()
    clock.advance(10_000)
    assert sum(bucket.allow() for _ in range(20)) == 5


def test_manual_clock_never_goes_back():
    clock = ManualClock(100)
    clock.advance(5)
    clock.set(200)
    assert clock.now_ms() == 200
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(199)


def test_monotonic_clock_is_epoch_like_and_monotonic():
    import time

    clock = MonotonicClock()
    readings = [clock.now_ms() for _ in range(1000)]
    assert readings == sorted(readings)
    assert abs(readings[0] - time.time() * 1000) < 1000
