"""NTP-style offset estimation: tightest bound wins, bounds widen with age."""

from __future__ import annotations

import random

import pytest

from bandsync_desktop.core.clocksync import DRIFT_BOUND, OffsetEstimator, SyncSample


def exchange(offset: float, t0: float, up: float, down: float, service: float = 0.1) -> SyncSample:
    """A simulated exchange: server = local + offset; one-way delays up/down."""
    t1 = t0 + up + offset
    t2 = t1 + service
    t3 = t2 - offset + down
    return SyncSample(t0, t1, t2, t3)


def test_symmetric_path_gives_the_exact_offset():
    s = exchange(5_000.0, 100.0, 3.0, 3.0)
    assert s.offset == pytest.approx(5_000.0)
    assert s.rtt == pytest.approx(6.0)


def test_asymmetry_error_is_within_half_the_rtt():
    s = exchange(-42.0, 0.0, 1.0, 9.0)
    assert abs(s.offset - -42.0) <= s.rtt / 2 + 1e-9


def test_estimator_picks_the_tightest_sample_under_heavy_jitter():
    rng = random.Random(7)
    est = OffsetEstimator()
    assert est.offset(0) is None and est.uncertainty(0) is None and est.rtt(0) is None
    true = 1_234_567.0
    t = 0.0
    for _ in range(20):
        up = 2 + rng.expovariate(1 / 20)
        down = 2 + rng.expovariate(1 / 20)
        est.add(exchange(true, t, up, down))
        t += 100
    assert len(est) == 20
    err = abs(est.offset(t) - true)
    assert err <= est.uncertainty(t)
    assert est.uncertainty(t) < 10


def test_old_samples_lose_to_fresher_ones_through_drift_bound():
    est = OffsetEstimator()
    est.add(exchange(0.0, 0.0, 1.0, 1.0))  # rtt 2 ms, but old
    est.add(exchange(0.0, 100_000.0, 2.0, 2.0))  # rtt 4 ms, fresh
    now = 100_010.0
    best = est.best(now)
    assert best is not None and best.t0 == 100_000.0
    assert est.uncertainty(now) == pytest.approx(2.0 + (now - best.t3) * DRIFT_BOUND)


def test_backwards_samples_are_refused():
    with pytest.raises(ValueError):
        OffsetEstimator().add(SyncSample(10, 5, 6, 9))
