"""A token bucket: ``rate`` events per second on average, bursts up to ``burst``."""

from __future__ import annotations

from .clock import Clock


class TokenBucket:
    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, rate_per_s: float, burst: int, clock: Clock) -> None:
        self._rate = rate_per_s / 1000.0
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock.now_ms()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock.now_ms()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
