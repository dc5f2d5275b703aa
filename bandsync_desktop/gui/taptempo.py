"""Tap tempo: the average of the last taps, forgotten after a pause. Plain Python, no Qt."""

from __future__ import annotations

from collections import deque

from ..core.clock import Clock
from ..core.validation import TEMPO_MAX, TEMPO_MIN

MAX_TAPS = 8  # the average of the last seven intervals
RESET_AFTER_MS = 2_000.0  # a pause this long starts a new count


class TapTempo:
    """Turns taps into a tempo.

    Args:
        clock: where tap times come from (inject a ``ManualClock`` in tests).
        max_taps: how many recent taps the average spans.
        reset_after_ms: a gap longer than this forgets the earlier taps.
    """

    def __init__(
        self, clock: Clock, max_taps: int = MAX_TAPS, reset_after_ms: float = RESET_AFTER_MS
    ) -> None:
        self._clock = clock
        self._taps: deque[float] = deque(maxlen=max_taps)
        self._reset_after_ms = reset_after_ms

    @property
    def count(self) -> int:
        """Taps in the current count."""
        return len(self._taps)

    def tap(self) -> float | None:
        """Record a tap; the tempo (whole BPM, 20-280) once there are two taps, else None."""
        now = self._clock.now_ms()
        if self._taps and now - self._taps[-1] > self._reset_after_ms:
            self._taps.clear()
        self._taps.append(now)
        if len(self._taps) < 2:
            return None
        interval = (self._taps[-1] - self._taps[0]) / (len(self._taps) - 1)
        if interval <= 0:
            return None
        bpm = 60_000.0 / interval
        return float(max(TEMPO_MIN, min(TEMPO_MAX, round(bpm))))

    def reset(self) -> None:
        self._taps.clear()
