"""NTP-style clock-offset estimation from ``clock_sync`` exchanges.

A client sends ``t0`` (its clock), the server stamps receive ``t1`` and send ``t2`` (server
clock), the client notes arrival ``t3``. Then::

    rtt    = (t3 - t0) - (t2 - t1)
    offset = ((t1 - t0) + (t2 - t3)) / 2      # server = local + offset

The true offset lies within ``rtt / 2`` of that estimate. Clocks also drift (a phone's crystal
is good to about 50 ppm), so a sample's bound widens with age at ``DRIFT_BOUND``. Every sample
thus gives an interval ``offset ± bound`` that holds the truth, and so does their
intersection, which is never wider than the tightest interval alone: the estimate is the
middle of the intersection of the newest samples that agree, and its half-width is the
reported uncertainty. (Samples stop agreeing only if a clock broke the drift bound; then the
older ones are dropped.) Measured through an emulated busy Wi-Fi this halves the error of
picking the single tightest sample (``docs/timing.md``). The follower page implements the
same algorithm in JavaScript (``web/sync.js``).

Crystals beyond the bound (a phone at 500 ppm moves 0.5 ms a second) would bias that middle
by milliseconds, so the rate is measured too: the tightest sample of every ``SKEW_BUCKET_MS``
is kept as an anchor for a few minutes, and every pair of anchors bounds the offset's rate of
change (their offsets differ by at most the sum of their half round trips). The intersection
of those bounds holds the true rate while it stays constant. Once it is known to within
``DRIFT_BOUND``, or proves the rate beyond ``DRIFT_BOUND``, each sample's offset is carried
forward at its middle, and ``DRIFT_BOUND`` bounds what is left. An empty intersection (a
clock step, as when a phone's monotonic clock pauses in deep sleep), or one that asks for a
rate beyond ``MAX_RATE``, starts the anchors again and keeps the rate until they know better.

What is left is bounded more tightly once the anchors pin the rate more tightly than that:
by their half-width plus ``RATE_WANDER``. Each pair's bound holds the mean rate over its span,
so a rate that moves by at most ``RATE_WANDER`` within the anchors' five minutes stays within
that of the intersection, and the bound still holds the truth. 5 ppm is what temperature does
to a crystal in five minutes with room to spare: an AT-cut crystal's frequency follows a cubic
in temperature (Gerber and Ballato's coefficients: about 0.1-0.3 ppm per degree near room
temperature, 0.7 at 45 degrees from it), a TCXO holds ±0.5-2.5 ppm over its whole range, and
a phone or a laptop warms by a few degrees in minutes, not by tens. (A 32 kHz tuning fork's
parabola, -0.034 ppm per degree squared, gives 1.4 ppm per degree 20 degrees from its turning
point: 5 ppm in five minutes is then a degree a minute.) The simulated links pin the rate to
about 45 ppm two minutes in and 20 ppm from five (a wired one to 6 ppm), so a 10 s old sample
widens by 0.45 and 0.2 ms instead of 1 ms. Within that bound a new sample always meets the
estimate; one that does not is a step the anchors missed (a few ms): the samples and anchors
before it are dropped and ``DRIFT_BOUND`` applies again, as after any step, until the anchors
pin the rate anew.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

DRIFT_BOUND: Final = 100e-6  # ms of possible drift per ms of age (100 ppm, twice a bad crystal)
SKEW_BUCKET_MS: Final = 2500.0  # one rate anchor (the tightest sample) per this long
SKEW_ANCHORS: Final = 120  # anchors kept: five minutes of them
MAX_RATE: Final = 2000e-6  # beyond this no crystal runs: a clock step, not a rate
RATE_WANDER: Final = 5e-6  # how far a crystal's rate may move within the anchors' 5 minutes


@dataclass(frozen=True, slots=True)
class SyncSample:
    """One exchange: client send/receive and server receive/send times, all in ms."""

    t0: float
    t1: float
    t2: float
    t3: float

    @property
    def rtt(self) -> float:
        return max(0.0, (self.t3 - self.t0) - (self.t2 - self.t1))

    @property
    def offset(self) -> float:
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2.0

    def bound_at(self, local_now: float, drift: float = DRIFT_BOUND) -> float:
        """The error bound of this sample's offset at local time ``local_now``, when the
        offset's rate is known to within ``drift``."""
        return self.rtt / 2.0 + max(0.0, local_now - self.t3) * drift


@dataclass(frozen=True, slots=True)
class Estimate:
    """The offset estimate at one instant: ``offset ± uncertainty``, and the best RTT."""

    offset: float
    uncertainty: float
    rtt: float
    samples: int  # how many samples agreed


def rate_interval(anchors: Sequence[SyncSample]) -> tuple[float, float]:
    """``(lo, hi)``: the rates of change of the offset (ms per local ms) that every pair of
    ``anchors`` allows; ``lo > hi`` when no constant rate explains them all."""
    lo, hi = -math.inf, math.inf
    for j in range(1, len(anchors)):
        later = anchors[j]
        for i in range(j):
            earlier = anchors[i]
            span = later.t3 - earlier.t3
            if span <= 0:
                continue
            change = later.offset - earlier.offset
            slack = (earlier.rtt + later.rtt) / 2.0
            lo = max(lo, (change - slack) / span)
            hi = min(hi, (change + slack) / span)
    return lo, hi


class RateAnchors:
    """The rate anchors, oldest first, with what every pair of them says of the rate, kept up
    as anchors come and go: ``interval()`` is ``rate_interval(anchors)`` (the same floats)
    without working out all of its ~7,000 pairs again on every sample. Each anchor keeps its
    pairs' bounds with every earlier one (a pair whose span is not positive says nothing:
    ±inf); a new anchor adds one row, the newest replaced redoes its row, and the oldest
    dropped takes the first bound off every row."""

    def __init__(self, maxlen: int = SKEW_ANCHORS) -> None:
        self._maxlen = maxlen
        self._anchors: deque[SyncSample] = deque()
        self._rows: deque[tuple[deque[float], deque[float]]] = deque()
        self._row_lo: deque[float] = deque()  # the largest of each row's lower bounds
        self._row_hi: deque[float] = deque()  # the smallest of each row's upper bounds

    def __len__(self) -> int:
        return len(self._anchors)

    def __getitem__(self, index: int) -> SyncSample:
        return self._anchors[index]

    def clear(self) -> None:
        for part in (self._anchors, self._rows, self._row_lo, self._row_hi):
            part.clear()

    def append(self, sample: SyncSample) -> None:
        if len(self._anchors) == self._maxlen:
            self._anchors.popleft()
            self._rows.popleft()
            self._row_lo.popleft()
            self._row_hi.popleft()
            for index, (los, his) in enumerate(self._rows):
                los.popleft()
                his.popleft()
                self._row_lo[index] = max(los, default=-math.inf)
                self._row_hi[index] = min(his, default=math.inf)
        self._add_row(sample)

    def replace_last(self, sample: SyncSample) -> None:
        self._anchors.pop()
        self._rows.pop()
        self._row_lo.pop()
        self._row_hi.pop()
        self._add_row(sample)

    def interval(self) -> tuple[float, float]:
        """``(lo, hi)`` as ``rate_interval`` gives it for these anchors."""
        return max(self._row_lo, default=-math.inf), min(self._row_hi, default=math.inf)

    def _add_row(self, later: SyncSample) -> None:
        los: deque[float] = deque()
        his: deque[float] = deque()
        later_offset, later_rtt = later.offset, later.rtt
        for earlier in self._anchors:
            span = later.t3 - earlier.t3
            if span <= 0:
                los.append(-math.inf)
                his.append(math.inf)
                continue
            change = later_offset - earlier.offset
            slack = (earlier.rtt + later_rtt) / 2.0
            los.append((change - slack) / span)
            his.append((change + slack) / span)
        self._anchors.append(later)
        self._rows.append((los, his))
        self._row_lo.append(max(los, default=-math.inf))
        self._row_hi.append(min(his, default=math.inf))


class OffsetEstimator:
    """Keeps the last ``window`` samples; estimates from the intersection of their intervals."""

    def __init__(self, window: int = 32) -> None:
        self._samples: deque[SyncSample] = deque(maxlen=window)
        self._anchors = RateAnchors(SKEW_ANCHORS)
        self._skew = 0.0
        self._drift = DRIFT_BOUND

    @property
    def skew(self) -> float:
        """The offset's measured rate of change (ms per local ms; 0 until it is known)."""
        return self._skew

    @property
    def drift(self) -> float:
        """How far the offset's rate may be from ``skew`` (ms per local ms)."""
        return self._drift

    def add(self, sample: SyncSample) -> None:
        if sample.t3 < sample.t0 or sample.t2 < sample.t1:
            raise ValueError("a sample's times must not run backwards")
        anchors = self._anchors
        if self._drift < DRIFT_BOUND and not self._agrees(sample):
            # Within the tight bound a sample always meets the estimate, so the clock broke
            # the model (a step): nothing before it, and nothing said of the rate, applies.
            self._samples.clear()
            anchors.clear()
            self._drift = DRIFT_BOUND
        self._samples.append(sample)
        if anchors and anchors[-1].t3 // SKEW_BUCKET_MS == sample.t3 // SKEW_BUCKET_MS:
            if sample.rtt < anchors[-1].rtt:
                anchors.replace_last(sample)
        else:
            anchors.append(sample)
        lo, hi = anchors.interval()
        if lo > hi or lo > MAX_RATE or hi < -MAX_RATE:
            # A step (or a new rate): the history no longer applies. (A sample in flight when
            # a phone's clock paused spans the step: its wide interval may still meet the
            # others', but only at a rate no crystal has.)
            anchors.clear()
            anchors.append(sample)
            lo, hi = -math.inf, math.inf
        known = (hi - lo) / 2.0 <= DRIFT_BOUND or lo > DRIFT_BOUND or hi < -DRIFT_BOUND
        # Not known yet: keep the last rate (0 at first; a step leaves a crystal's rate as it
        # was), moved into what the anchors allow.
        skew = (lo + hi) / 2.0 if known else min(max(self._skew, lo), hi)
        self._skew = min(max(skew, -MAX_RATE), MAX_RATE)
        # Every pair of anchors bounds the mean rate over its span, so a rate that moves by up
        # to RATE_WANDER within the anchors' span stays within that of what they allow: once
        # that is tighter than DRIFT_BOUND, it bounds what carrying at ``skew`` leaves. (A
        # step clears the anchors, and with them this bound.)
        pinned = (hi - lo) / 2.0 + RATE_WANDER
        tight = known and self._skew == skew and pinned < DRIFT_BOUND
        self._drift = pinned if tight else DRIFT_BOUND

    def _agrees(self, sample: SyncSample) -> bool:
        estimate = self.estimate(sample.t3)
        if estimate is None:
            return True
        gap = abs(sample.offset - estimate.offset)
        return gap <= sample.rtt / 2.0 + estimate.uncertainty

    def __len__(self) -> int:
        return len(self._samples)

    def estimate(self, local_now: float) -> Estimate | None:
        """Intersect the intervals from the newest sample back, while they still overlap."""
        lo, hi = -math.inf, math.inf
        rtt = math.inf
        used = 0
        for sample in reversed(self._samples):
            bound = sample.bound_at(local_now, self._drift)
            carried = sample.offset + self._skew * (local_now - sample.t3)
            new_lo, new_hi = max(lo, carried - bound), min(hi, carried + bound)
            if new_lo > new_hi:
                break  # this (older) sample disagrees with the newer ones: stop here
            lo, hi = new_lo, new_hi
            rtt = min(rtt, sample.rtt)
            used += 1
        if used == 0:
            return None
        return Estimate((lo + hi) / 2.0, (hi - lo) / 2.0, rtt, used)

    def offset(self, local_now: float) -> float | None:
        """Estimated ``server - local`` in ms, or ``None`` before the first sample."""
        estimate = self.estimate(local_now)
        return None if estimate is None else estimate.offset

    def uncertainty(self, local_now: float) -> float | None:
        """Half-width of the interval that holds the true offset."""
        estimate = self.estimate(local_now)
        return None if estimate is None else estimate.uncertainty

    def rtt(self, local_now: float) -> float | None:
        """The smallest round trip among the agreeing samples."""
        estimate = self.estimate(local_now)
        return None if estimate is None else estimate.rtt
