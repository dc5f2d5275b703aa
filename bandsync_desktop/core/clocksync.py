"""NTP-style clock-offset estimation from ``clock_sync`` exchanges.

A client sends ``t0`` (its clock), the server stamps receive ``t1`` and send ``t2`` (server
clock), the client notes arrival ``t3``. Then::

    rtt    = (t3 - t0) - (t2 - t1)
    offset = ((t1 - t0) + (t2 - t3)) / 2      # server = local + offset

The true offset lies within ``rtt / 2`` of that estimate. Clocks also drift (a phone's crystal
is good to about 50 ppm), so a sample's bound widens with age at ``DRIFT_BOUND``. The
estimate is the sample with the tightest bound now; its bound is the reported uncertainty.
The follower page implements the same algorithm in JavaScript (``web/sync.js``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

DRIFT_BOUND: Final = 100e-6  # ms of possible drift per ms of age (100 ppm, twice a bad crystal)


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

    def bound_at(self, local_now: float) -> float:
        """The error bound of this sample's offset at local time ``local_now``."""
        return self.rtt / 2.0 + max(0.0, local_now - self.t3) * DRIFT_BOUND


class OffsetEstimator:
    """Keeps the last ``window`` samples and picks the tightest one."""

    def __init__(self, window: int = 32) -> None:
        self._samples: deque[SyncSample] = deque(maxlen=window)

    def add(self, sample: SyncSample) -> None:
        if sample.t3 < sample.t0 or sample.t2 < sample.t1:
            raise ValueError("a sample's times must not run backwards")
        self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    def best(self, local_now: float) -> SyncSample | None:
        if not self._samples:
            return None
        return min(self._samples, key=lambda s: s.bound_at(local_now))

    def offset(self, local_now: float) -> float | None:
        """Estimated ``server - local`` in ms, or ``None`` before the first sample."""
        best = self.best(local_now)
        return None if best is None else best.offset

    def uncertainty(self, local_now: float) -> float | None:
        best = self.best(local_now)
        return None if best is None else best.bound_at(local_now)

    def rtt(self, local_now: float) -> float | None:
        best = self.best(local_now)
        return None if best is None else best.rtt
