"""The offset estimator against a client clock that runs fast or slow.

A phone's crystal is off by tens of ppm, a cheap or cold one by hundreds. The simulation
plays the page's exchange schedule (a join burst, then one exchange every half second) for
minutes of simulated time over a link with realistic delays: a quiet LAN (2-5 ms each way)
and the Wi-Fi emulator's busy link (the same plus log-normal jitter, p90 20 ms, p99 250 ms,
as ``bench/wifi_emulator.py`` draws it). The client's clock runs at ``1 + ppm`` true ms per
ms; the error is the client's estimate of server time minus the true server time, read
every 97 ms. ``tests/web/test_clock_skew_js.py`` feeds the same samples to ``web/sync.js``.
Runs of six minutes show the anchors' tight drift bound (it needs a minute or two), also on a
wired link (0.1-0.4 ms each way), where what drift adds to an interval is most of it; and the
bound under a crystal that warms up and under steps. ``bench/clock_estimator_bench.py`` prints
these figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bandsync_desktop.core.clocksync import DRIFT_BOUND, RATE_WANDER, OffsetEstimator, SyncSample

#: The offset target (docs/timing.md).
TARGET_MS = 1.0
#: The busy link's worst reading (its jitter tail; the same without any skew).
WIFI_MAX_MS = 1.5
#: How long a skew beyond DRIFT_BOUND may take to learn (the anchors need tens of seconds).
LEARN_MS = 30_000.0
#: The busy link's p95 once the anchors pin the rate (from 2 minutes on; 0.49-0.51 ms while
#: DRIFT_BOUND bounded every sample's drift, 0.26-0.32 ms since) and the spread across six
#: followers then (p95 1.00 ms before, 0.70 ms since).
STEADY_MS = 0.4
STEADY_SPREAD_MS = 0.85
STEADY_FROM_MS = 120_000.0
SERVER_EPOCH_MS = 1_764_000_000_000.0
_Z90, _Z99 = 1.2815515655446004, 2.3263478740408408


@dataclass(frozen=True)
class Link:
    """One direction's delay in ms: uniform base plus optional log-normal jitter."""

    base_min_ms: float = 2.0
    base_max_ms: float = 5.0
    jitter_p90_ms: float = 0.0
    jitter_p99_ms: float = 0.0

    def draw(self, rng: random.Random) -> float:
        delay = rng.uniform(self.base_min_ms, self.base_max_ms)
        if self.jitter_p90_ms > 0:
            sigma = (math.log(self.jitter_p99_ms) - math.log(self.jitter_p90_ms)) / (_Z99 - _Z90)
            mu = math.log(self.jitter_p90_ms) - _Z90 * sigma
            delay += min(2000.0, rng.lognormvariate(mu, sigma))
        return delay


LAN = Link()
WIFI = Link(jitter_p90_ms=20.0, jitter_p99_ms=250.0)
#: A wired link: its intervals are so narrow that what drift adds to them shows.
WIRED = Link(base_min_ms=0.1, base_max_ms=0.4)


@dataclass(frozen=True)
class Run:
    """Samples in arrival order and the instants to check, all as the client sees them."""

    samples: list[tuple[float, float, float, float]]  # (t0, t1, t2, t3)
    #: (index of the first sample not yet arrived, client ms, true server ms, true ms since join)
    queries: list[tuple[int, float, float, float]]
    ppm: float
    step_index: int | None = None  # the first sample to arrive after the step


def simulate(
    ppm: float,
    link: Link,
    *,
    seconds: float = 150.0,
    seed: int = 1,
    step_at_s: float | None = None,
    step_ms: float = 0.0,
    ppm_per_minute: float = 0.0,
) -> Run:
    """The page's schedule against a client clock at ``ppm``; with ``step_at_s`` the client's
    clock loses ``step_ms`` there (a phone's monotonic clock paused in deep sleep); with
    ``ppm_per_minute`` its rate moves steadily from ``ppm`` on (a crystal warming up)."""
    rng = random.Random(seed)
    rate = 1.0 + ppm * 1e-6
    ramp = ppm_per_minute * 1e-6 / 60_000.0  # the rate's change per true ms
    origin = rng.uniform(1_000.0, 50_000.0)  # the page's clock is ms since it loaded

    def local(true_ms: float) -> float:
        lost = step_ms if step_at_s is not None and true_ms >= step_at_s * 1000.0 else 0.0
        return origin + true_ms * rate + ramp * true_ms * true_ms / 2.0 - lost

    sends = [i * 50.0 for i in range(16)]
    while sends[-1] < seconds * 1000.0:
        sends.append(sends[-1] + 500.0)
    exchanges = []
    for sent in sends:
        up, serve, down = link.draw(rng), rng.uniform(0.05, 0.5), link.draw(rng)
        received = sent + up
        exchanges.append((received + serve + down, sent, received, received + serve))
    exchanges.sort()
    samples = [
        (local(sent), SERVER_EPOCH_MS + t1, SERVER_EPOCH_MS + t2, local(arrived))
        for arrived, sent, t1, t2 in exchanges
    ]
    step_index = None
    if step_at_s is not None:
        step_index = next(
            (i for i, exchange in enumerate(exchanges) if exchange[0] >= step_at_s * 1000.0), None
        )
    queries = []
    arrived_count = 0
    t = 500.0
    while t < seconds * 1000.0:
        while arrived_count < len(exchanges) and exchanges[arrived_count][0] <= t:
            arrived_count += 1
        if not (step_at_s is not None and abs(t - step_at_s * 1000.0) < 1.0):
            queries.append((arrived_count, local(t), SERVER_EPOCH_MS + t, t))
        t += 97.0
    return Run(samples, queries, ppm, step_index)


def python_estimates(run: Run) -> list[tuple[float, float] | None]:
    """(offset, uncertainty) of core/clocksync.py at each query, None before any sample."""
    return python_run(run)[0]


def python_run(
    run: Run, watch: int | None = None, estimator: Any = None, sample: Any = SyncSample
) -> tuple[list[tuple[float, float] | None], Any, list[float]]:
    """python_estimates, the estimator at the end, and its drift before and after adding the
    sample numbered ``watch``. ``estimator`` and ``sample`` (an OffsetEstimator and the
    SyncSample it takes) default to core/clocksync.py's with a window of 32; the benchmark
    passes another copy's."""
    estimator = OffsetEstimator(32) if estimator is None else estimator
    added = 0
    drifts: list[float] = []
    out: list[tuple[float, float] | None] = []
    for count, now, _, _ in [*run.queries, (len(run.samples), math.nan, math.nan, math.nan)]:
        while added < count:
            if added == watch:
                drifts.append(estimator.drift)
            estimator.add(sample(*run.samples[added]))
            if added == watch:
                drifts.append(estimator.drift)
            added += 1
        if not math.isnan(now):
            estimate = estimator.estimate(now)
            out.append(None if estimate is None else (estimate.offset, estimate.uncertainty))
    return out, estimator, drifts


def readings(
    run: Run, estimates: list[tuple[float, float] | None]
) -> Iterator[tuple[float, float, float]]:
    """(ms since the join, estimated - true server time, reported uncertainty) at each query
    with an estimate."""
    for (_, now, truth, since), estimate in zip(run.queries, estimates, strict=True):
        if estimate is not None:
            yield since, now + estimate[0] - truth, estimate[1]


def errors(run: Run, estimates: list[tuple[float, float] | None], after_ms: float) -> list[float]:
    """|estimated - true server time| at the queries from ``after_ms`` after the join on."""
    return [abs(error) for since, error, _ in readings(run, estimates) if since >= after_ms]


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def p95(values: list[float]) -> float:
    return quantile(values, 0.95)


CASES = [
    pytest.param(ppm, link, id=f"{name}{ppm:+.0f}ppm")
    for name, link in (("lan", LAN), ("wifi", WIFI))
    for ppm in (100.0, -100.0, 500.0, -500.0)
]


@pytest.mark.parametrize(("ppm", "link"), CASES)
def test_offset_stays_within_target_on_a_skewed_clock(ppm: float, link: Link) -> None:
    run = simulate(ppm, link, seed=int(ppm) + 7)
    estimates = python_estimates(run)
    # Within DRIFT_BOUND the age rule covers the skew from the first burst on; beyond it the
    # rate takes up to LEARN_MS to learn, and from then on the target holds.
    settled = 1_000.0 if abs(ppm) * 1e-6 <= DRIFT_BOUND else LEARN_MS
    late = errors(run, estimates, settled)
    assert p95(late) <= TARGET_MS, (p95(late), max(late))
    # on a quiet link every reading is within the target; on the busy one a rare run of slow
    # exchanges lets a reading or two pass it, with or without skew (0 ppm reaches 0.95 ms)
    assert max(late) <= (TARGET_MS if link is LAN else WIFI_MAX_MS), (p95(late), max(late))
    # the rate the estimator measured is the clock's (the offset falls at ppm when the client
    # runs fast: server - local changes by -ppm/(1+ppm) per local ms)
    estimator = OffsetEstimator(32)
    for sample in run.samples:
        estimator.add(SyncSample(*sample))
    expected = -ppm * 1e-6 / (1 + ppm * 1e-6)
    assert estimator.skew == pytest.approx(expected, abs=20e-6)


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_within_the_drift_bound_the_truth_stays_within_the_uncertainty(ppm: float) -> None:
    """Up to DRIFT_BOUND the reported uncertainty is a guarantee, skew or not."""
    for link in (LAN, WIFI):
        run = simulate(ppm, link, seed=3)
        estimates = python_estimates(run)
        for (_, now, truth, _), estimate in zip(run.queries, estimates, strict=True):
            if estimate is not None:
                offset, uncertainty = estimate
                assert abs(now + offset - truth) <= uncertainty + 1e-9


@pytest.mark.parametrize("ppm", [500.0, -500.0])
def test_a_clock_step_is_followed_at_once_and_the_rate_kept(ppm: float) -> None:
    """A phone's monotonic clock stops in deep sleep: 7 s lost at once, a minute in. The
    estimate follows the step with the first sample after it and keeps the learnt rate."""
    run = simulate(ppm, LAN, seconds=90.0, seed=11, step_at_s=60.0, step_ms=7_000.0)
    estimates = python_estimates(run)
    checked = [
        abs(now + estimate[0] - truth)
        for (_, now, truth, since), estimate in zip(run.queries, estimates, strict=True)
        if estimate is not None and since >= 61_000.0
    ]
    assert max(checked) <= TARGET_MS, max(checked)


def outside(run: Run, estimates: list[tuple[float, float] | None], after_ms: float) -> list[float]:
    """The instants (ms since the join) from ``after_ms`` on when the truth fell outside the
    reported uncertainty."""
    return [
        since
        for since, error, uncertainty in readings(run, estimates)
        if since >= after_ms and abs(error) > uncertainty + 1e-9
    ]


def signed_errors(run: Run, estimates: list[tuple[float, float] | None]) -> dict[float, float]:
    return {since: error for since, error, _ in readings(run, estimates)}


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_once_the_rate_is_pinned_older_samples_stay_tight(ppm: float) -> None:
    """Minutes in, the anchors know the rate far better than DRIFT_BOUND: a 10 s old sample
    widens by a fraction of a millisecond, not by one, and still narrows the estimate."""
    run = simulate(ppm, WIFI, seconds=360.0, seed=int(ppm) + 7)
    estimates = python_estimates(run)
    late = errors(run, estimates, STEADY_FROM_MS)
    assert p95(late) <= STEADY_MS, (p95(late), max(late))


def test_followers_agree_more_closely_once_the_rate_is_pinned() -> None:
    """Six followers on the busy link, clocks spread over ±100 ppm: the spread of their
    errors at the same instants (what two phones' beats differ by, less audio)."""
    followers = [(-100.0, 201), (-60.0, 202), (-20.0, 203), (20.0, 204), (60.0, 205), (100.0, 206)]
    per = []
    for ppm, seed in followers:
        run = simulate(ppm, WIFI, seconds=300.0, seed=seed)
        per.append(signed_errors(run, python_estimates(run)))
    instants = [t for t in per[0] if t >= STEADY_FROM_MS and all(t in f for f in per)]
    spreads = [max(f[t] for f in per) - min(f[t] for f in per) for t in instants]
    assert p95(spreads) <= STEADY_SPREAD_MS, (p95(spreads), max(spreads))


@pytest.mark.parametrize(
    ("ppm", "link"),
    [
        pytest.param(100.0, WIFI, id="wifi+100ppm"),
        pytest.param(-100.0, LAN, id="lan-100ppm"),
        pytest.param(500.0, LAN, id="lan+500ppm"),
        pytest.param(-500.0, WIFI, id="wifi-500ppm"),
        pytest.param(80.0, WIRED, id="wired+80ppm"),
    ],
)
def test_the_tight_bound_still_holds_the_truth(ppm: float, link: Link) -> None:
    """Six minutes: within DRIFT_BOUND from the first sample on, beyond it once the rate is
    learnt; the tight bound the anchors give must hold it as DRIFT_BOUND did."""
    run = simulate(ppm, link, seconds=360.0, seed=int(ppm) + 17)
    estimates, estimator, _ = python_run(run)
    settled = 0.0 if abs(ppm) * 1e-6 <= DRIFT_BOUND else LEARN_MS
    assert not outside(run, estimates, settled)
    assert estimator.drift < DRIFT_BOUND / 2  # (the tight bound was in force)


@pytest.mark.parametrize(
    ("ppm", "link"),
    [(-80.0, WIRED), (80.0, LAN), (500.0, WIRED)],
    ids=["wired-80ppm", "lan+80ppm", "wired+500ppm"],
)
def test_a_crystal_warming_up_stays_within_the_bound(ppm: float, link: Link) -> None:
    """The rate moves by RATE_WANDER every five minutes (the anchors' span), for six."""
    per_minute = RATE_WANDER * 1e6 / 5.0
    run = simulate(ppm, link, seconds=360.0, seed=5, ppm_per_minute=per_minute)
    estimates, estimator, _ = python_run(run)
    assert not outside(run, estimates, 0.0 if abs(ppm) < 100.0 else LEARN_MS)
    assert estimator.drift < DRIFT_BOUND / 2
    late = errors(run, estimates, STEADY_FROM_MS)
    assert p95(late) <= TARGET_MS / 2, p95(late)


@pytest.mark.parametrize(
    ("ppm", "step_ms", "link"),
    [
        (500.0, 7_000.0, WIRED),
        (-500.0, 7_000.0, WIFI),
        (-100.0, 7_000.0, LAN),
        (60.0, 20.0, WIRED),
        (60.0, -20.0, LAN),
        (-30.0, 20.0, WIFI),
        (-30.0, 6.0, WIFI),
    ],
    ids=[
        "wired+500ppm-7s",
        "wifi-500ppm-7s",
        "lan-100ppm-7s",
        "wired+60ppm-20ms",
        "lan+60ppm-gains20ms",
        "wifi-30ppm-20ms",
        "wifi-30ppm-6ms",
    ],
)
def test_a_step_drops_the_tight_bound(ppm: float, step_ms: float, link: Link) -> None:
    """Four minutes in, with the rate pinned, the clock steps (deep sleep): the bound is
    DRIFT_BOUND again until new anchors pin the rate, and the truth stays within it from a
    second after. 6 ms on the busy link is too small a step for the anchors to notice (their
    pairs allow it as a rate), not for the estimate: the first sample after it does not meet
    the estimate's tight interval. (Steps of 3-5 ms meet it, and are not caught at once.)"""
    step_at_s = 240.0
    run = simulate(ppm, link, seconds=270.0, seed=23, step_at_s=step_at_s, step_ms=step_ms)
    estimates, _, (before, after) = python_run(run, watch=run.step_index)
    assert before < DRIFT_BOUND / 2
    assert after == DRIFT_BOUND
    late = [t for t in outside(run, estimates, 0.0) if t >= step_at_s * 1000.0 + 1_000.0]
    assert not late, (len(late), late[:3])
