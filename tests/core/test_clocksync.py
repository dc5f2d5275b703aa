"""NTP-style offset estimation: tightest bound wins, bounds widen with age."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core.clocksync import (
    DRIFT_BOUND,
    RATE_WANDER,
    SKEW_BUCKET_MS,
    OffsetEstimator,
    RateAnchors,
    SyncSample,
    rate_interval,
)


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


def test_one_sample_gives_its_own_interval():
    est = OffsetEstimator()
    sample = exchange(10.0, 0.0, 1.0, 3.0)
    est.add(sample)
    now = sample.t3
    assert est.offset(now) == pytest.approx(sample.offset)
    assert est.uncertainty(now) == pytest.approx(sample.rtt / 2)
    assert est.rtt(now) == pytest.approx(sample.rtt)


def test_the_intersection_is_tighter_than_any_one_sample():
    est = OffsetEstimator()
    # one path slow upstream, one slow downstream: the errors point opposite ways
    a = exchange(0.0, 0.0, 1.0, 9.0)  # offset estimate -4, bound 5: [-9, 1]
    b = exchange(0.0, 100.0, 9.0, 1.0)  # offset estimate +4, bound 5: [-1, 9]
    est.add(a)
    est.add(b)
    now = b.t3
    assert est.offset(now) == pytest.approx(0.0, abs=0.01)
    assert est.uncertainty(now) < min(a.bound_at(now), b.bound_at(now)) / 4
    assert est.estimate(now).samples == 2


def test_bounds_widen_with_age():
    est = OffsetEstimator()
    s = exchange(0.0, 0.0, 1.0, 1.0)
    est.add(s)
    assert est.uncertainty(s.t3 + 100_000) == pytest.approx(1.0 + 100_000 * DRIFT_BOUND)


def test_an_old_sample_that_disagrees_is_dropped():
    est = OffsetEstimator()
    est.add(exchange(50.0, 0.0, 1.0, 1.0))  # the clock stepped since: this one is wrong now
    fresh = exchange(0.0, 1_000.0, 1.0, 1.0)
    est.add(fresh)
    now = fresh.t3
    assert est.offset(now) == pytest.approx(0.0, abs=1e-9)
    assert est.estimate(now).samples == 1


@settings(max_examples=200, deadline=None)
@given(
    true=st.floats(min_value=-1e9, max_value=1e9),
    delays=st.lists(
        st.tuples(st.floats(0.05, 300.0), st.floats(0.05, 300.0), st.floats(0.0, 2_000.0)),
        min_size=1,
        max_size=40,
    ),
)
def test_the_truth_is_always_within_the_reported_uncertainty(true, delays):
    est = OffsetEstimator()
    t = 0.0
    for up, down, gap in delays:
        t += gap
        sample = exchange(true, t, up, down)
        est.add(sample)
        t = sample.t3
    assert abs(est.offset(t) - true) <= est.uncertainty(t) + 1e-6 * max(1.0, abs(true))


def pinned(seconds: float = 180.0, rate: float = 0.0) -> tuple[OffsetEstimator, float]:
    """An estimator after ``seconds`` of exchanges every 500 ms (1-2 ms each way) with the
    offset moving at ``rate``; and the local time of the last arrival."""
    rng = random.Random(3)
    est = OffsetEstimator()
    t = 0.0
    while t < seconds * 1000.0:
        sample = exchange(1_000.0 + rate * t, t, rng.uniform(1.0, 2.0), rng.uniform(1.0, 2.0))
        est.add(sample)
        t += 500.0
    return est, sample.t3


def test_once_the_anchors_pin_the_rate_the_drift_bound_is_theirs():
    est, _ = pinned()
    assert est.drift < DRIFT_BOUND / 4
    assert est.drift >= RATE_WANDER
    # a lone sample's bound then widens at that rate, not DRIFT_BOUND
    s = exchange(0.0, 0.0, 1.0, 1.0)
    assert s.bound_at(s.t3 + 10_000, est.drift) == pytest.approx(1.0 + 10_000 * est.drift)
    # before, it is DRIFT_BOUND
    assert OffsetEstimator().drift == DRIFT_BOUND


def test_a_step_the_anchors_miss_drops_the_history_and_the_tight_bound():
    est, t = pinned()
    before = est.estimate(t)
    assert before is not None and before.samples > 10
    # 6 ms lost between two exchanges: too little for the anchors' pairs to rule out as a
    # rate, far more than the estimate and the new sample's interval allow together
    est.add(exchange(1_006.0, t + 500.0, 1.5, 1.5))
    after = est.estimate(t + 1_000.0)
    assert after is not None and after.samples == 1
    assert est.drift == DRIFT_BOUND
    assert after.offset == pytest.approx(1_006.0, abs=1.5)


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(-DRIFT_BOUND, DRIFT_BOUND),
    seed=st.integers(0, 2**32),
    slow=st.floats(0.0, 0.3),
)
def test_skewed_truth_stays_within_the_uncertainty_as_the_rate_is_pinned(rate, seed, slow):
    """A clock within DRIFT_BOUND, 100 s of exchanges (a share of them slow): the
    uncertainty holds the truth at every arrival, before and after the anchors pin the rate."""
    rng = random.Random(seed)
    est = OffsetEstimator()
    t = rng.uniform(0.0, SKEW_BUCKET_MS)
    while t < 100_000.0:
        up, down = rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)
        if rng.random() < slow:
            up += rng.expovariate(1 / 30)
        sample = exchange(-5_000.0 + rate * t, t, up, down)
        est.add(sample)
        now = sample.t3 + rng.uniform(0.0, 500.0)
        true = -5_000.0 + rate * now  # (as exchange() has it, the offset at local time)
        assert abs(est.offset(now) - true) <= est.uncertainty(now) + 1e-6
        t = sample.t3 + rng.uniform(300.0, 700.0)
    assert est.drift < DRIFT_BOUND


def test_backwards_samples_are_refused():
    with pytest.raises(ValueError):
        OffsetEstimator().add(SyncSample(10, 5, 6, 9))


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["append", "replace", "clear"]),
            st.floats(0.0, 3_000.0),  # how long after the last anchor (0: same instant)
            st.floats(-3.0, 3.0),  # the offset's wander
            st.floats(0.2, 40.0),  # its round trip
        ),
        max_size=60,
    ),
    maxlen=st.integers(1, 9),
)
def test_rate_anchors_give_what_every_pair_gives(steps, maxlen):
    """Kept up as anchors come, are replaced and drop off the front, the rate interval is
    rate_interval's over the same anchors, float for float."""
    anchors = RateAnchors(maxlen)
    kept: list[SyncSample] = []
    t = 1_000.0
    for action, gap, wander, rtt in steps:
        t += gap
        sample = exchange(40.0 + wander, t, rtt / 2.0, rtt / 2.0, service=0.0)
        if action == "clear":
            anchors.clear()
            kept.clear()
        elif action == "replace" and kept:
            anchors.replace_last(sample)
            kept[-1] = sample
        else:
            anchors.append(sample)
            kept = [*kept, sample][-maxlen:]
        assert [anchors[i] for i in range(len(anchors))] == kept
        assert anchors.interval() == rate_interval(kept)
