"""The offset estimator against a client clock that runs fast or slow.

A phone's crystal is off by tens of ppm, a cheap or cold one by hundreds. The simulation
plays the page's exchange schedule (a join burst, then one exchange every half second) for
minutes of simulated time over a link with realistic delays: a quiet LAN (2-5 ms each way)
and the Wi-Fi emulator's busy link (the same plus log-normal jitter, p90 20 ms, p99 250 ms,
as ``bench/wifi_emulator.py`` draws it). The client's clock runs at ``1 + ppm`` true ms per
ms; the error is the client's estimate of server time minus the true server time, read
every 97 ms. ``tests/web/test_clock_skew_js.py`` feeds the same samples to ``web/sync.js``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from bandsync_desktop.core.clocksync import DRIFT_BOUND, OffsetEstimator, SyncSample

#: The offset target (docs/timing.md).
TARGET_MS = 1.0
#: The busy link's worst reading (its jitter tail; the same without any skew).
WIFI_MAX_MS = 1.5
#: How long a skew beyond DRIFT_BOUND may take to learn (the anchors need tens of seconds).
LEARN_MS = 30_000.0
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


@dataclass(frozen=True)
class Run:
    """Samples in arrival order and the instants to check, all as the client sees them."""

    samples: list[tuple[float, float, float, float]]  # (t0, t1, t2, t3)
    #: (index of the first sample not yet arrived, client ms, true server ms, true ms since join)
    queries: list[tuple[int, float, float, float]]
    ppm: float


def simulate(
    ppm: float,
    link: Link,
    *,
    seconds: float = 150.0,
    seed: int = 1,
    step_at_s: float | None = None,
    step_ms: float = 0.0,
) -> Run:
    """The page's schedule against a client clock at ``ppm``; with ``step_at_s`` the client's
    clock loses ``step_ms`` there (a phone's monotonic clock paused in deep sleep)."""
    rng = random.Random(seed)
    rate = 1.0 + ppm * 1e-6
    origin = rng.uniform(1_000.0, 50_000.0)  # the page's clock is ms since it loaded

    def local(true_ms: float) -> float:
        lost = step_ms if step_at_s is not None and true_ms >= step_at_s * 1000.0 else 0.0
        return origin + true_ms * rate - lost

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
    queries = []
    arrived_count = 0
    t = 500.0
    while t < seconds * 1000.0:
        while arrived_count < len(exchanges) and exchanges[arrived_count][0] <= t:
            arrived_count += 1
        if not (step_at_s is not None and abs(t - step_at_s * 1000.0) < 1.0):
            queries.append((arrived_count, local(t), SERVER_EPOCH_MS + t, t))
        t += 97.0
    return Run(samples, queries, ppm)


def python_estimates(run: Run) -> list[tuple[float, float] | None]:
    """(offset, uncertainty) of core/clocksync.py at each query, None before any sample."""
    estimator = OffsetEstimator(32)
    added = 0
    out: list[tuple[float, float] | None] = []
    for count, now, _, _ in run.queries:
        while added < count:
            estimator.add(SyncSample(*run.samples[added]))
            added += 1
        estimate = estimator.estimate(now)
        out.append(None if estimate is None else (estimate.offset, estimate.uncertainty))
    return out


def errors(run: Run, estimates: list[tuple[float, float] | None], after_ms: float) -> list[float]:
    """|estimated - true server time| at the queries from ``after_ms`` after the join on."""
    out = []
    for (_, now, truth, since), estimate in zip(run.queries, estimates, strict=True):
        if estimate is not None and since >= after_ms:
            out.append(abs(now + estimate[0] - truth))
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


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
