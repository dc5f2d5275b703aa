"""Clocks: the one server timebase, injected everywhere so rules can be tested with a fake.

Server time is milliseconds on a monotonic clock. To let several processes (and a process
restarted after a crash) agree on one timeline stored in Redis, the monotonic reading is
shifted once, at construction, by the wall clock's offset: readings look like Unix epoch
milliseconds and are comparable across processes whose wall clocks are synced (NTP), yet they
never jump when the wall clock is stepped while a process runs.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells server time in milliseconds."""

    def now_ms(self) -> float:
        """Return the current server time in milliseconds."""
        ...


class MonotonicClock:
    """The production clock: ``time.monotonic()`` shifted to epoch milliseconds once."""

    def __init__(self) -> None:
        self._offset_ms = time.time() * 1000.0 - time.monotonic() * 1000.0

    def now_ms(self) -> float:
        return time.monotonic() * 1000.0 + self._offset_ms


class ManualClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start_ms: float = 1_000_000.0) -> None:
        self._now = float(start_ms)

    def now_ms(self) -> float:
        return self._now

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` milliseconds (never backwards)."""
        if ms < 0:
            raise ValueError("a clock never goes backwards")
        self._now += ms

    def set(self, now_ms: float) -> None:
        """Jump to ``now_ms``, which must not lie in the past."""
        if now_ms < self._now:
            raise ValueError("a clock never goes backwards")
        self._now = float(now_ms)
