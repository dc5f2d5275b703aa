"""Rate limits: a token bucket, and the frame meter that drops a flood before it is read.

``TokenBucket`` is the protocol's limit (events per second, per connection). ``FrameMeter``
guards the transport in front of it: it counts every frame a connection sends, before the
frame is decoded, and tells the transport what to do with one over budget (drop it unread,
drop it and answer once per window, or cut the connection off). A refusal that costs as much
as serving the frame (decode it, give it a task, answer it) is no defence against a phone
sending 20,000 frames a second.
"""

from __future__ import annotations

import enum

from .clock import Clock


class TokenBucket:
    """``rate_per_s`` tokens a second on average, at most ``burst`` saved up."""

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

    def refund(self) -> None:
        """Give back a token taken for something that then did not happen."""
        self._tokens = min(self._burst, self._tokens + 1.0)


class Verdict(enum.Enum):
    """What to do with one frame (``FrameMeter.take``)."""

    #: Within budget: decode and handle it.
    PASS = "pass"
    #: Over budget: drop it unread.
    DROP = "drop"
    #: Over budget: drop it unread, and tell the sender (the first refusal of a window).
    ANSWER = "answer"
    #: The sender kept flooding: close the connection.
    CUT = "cut"


class FrameMeter:
    """The frames one connection may send, and the verdict on each one over budget.

    Frames within a token bucket (``rate_per_s``, bursts of ``burst``) pass. The rest are
    dropped; the first dropped frame of each ``window_ms`` is to be answered, so a flooder is
    told once a window however fast it sends. A connection that keeps flooding is cut off:
    when the frames it had dropped, without a quiet window between two of them, add up to
    ``cutoff_s`` seconds' worth of its budget (at twice its rate: after ``cutoff_s``), or to
    one second's worth within one window (at more than twice its rate: within a second; a
    flood of thousands a second: at once). One that only now and then overshoots never is.
    """

    __slots__ = (
        "_answered_at",
        "_bucket",
        "_burst_cutoff",
        "_clock",
        "_cutoff",
        "_last_drop",
        "_run",
        "_shared",
        "_window",
        "_window_drops",
        "_window_start",
    )

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Clock,
        *,
        cutoff_s: float,
        window_ms: float = 1000.0,
        shared: TokenBucket | None = None,
    ) -> None:
        self._bucket = TokenBucket(rate_per_s, burst, clock)
        #: A budget this connection shares with the others from its address: sixteen
        #: connections must not inject sixteen bursts.
        self._shared = shared
        self._clock = clock
        self._window = window_ms
        self._cutoff = max(1.0, rate_per_s * cutoff_s)
        self._burst_cutoff = max(1.0, rate_per_s * window_ms / 1000.0)
        self._run = 0  # frames dropped since the last quiet window
        self._last_drop = float("-inf")
        self._window_start = float("-inf")
        self._window_drops = 0
        self._answered_at = float("-inf")

    def take(self) -> Verdict:
        """Count one frame and say what to do with it."""
        if self._bucket.allow():
            if self._shared is None or self._shared.allow():
                return Verdict.PASS
            self._bucket.refund()  # over the address's budget: dropped, and counted so
        now = self._clock.now_ms()
        if now - self._last_drop > self._window:
            self._run = 0
        self._last_drop = now
        self._run += 1
        if now - self._window_start >= self._window:
            self._window_start = now
            self._window_drops = 0
        self._window_drops += 1
        if self._run >= self._cutoff or self._window_drops >= self._burst_cutoff:
            return Verdict.CUT
        if now - self._answered_at >= self._window:
            self._answered_at = now
            return Verdict.ANSWER
        return Verdict.DROP

    @property
    def dropped(self) -> int:
        """Frames dropped since the last quiet window."""
        return self._run
