"""Link health of a member, from round-trip time and clock-offset uncertainty.

The thresholds are the ones the console shows in its tooltip. A click that is 5 ms off is
inaudible in a band; 15 ms is a flam a drummer hears. RTT matters because changes are
scheduled ``lead_ms`` ahead: a member whose RTT nears the lead hears changes late.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

Status = Literal["good", "fair", "poor", "unknown"]

GOOD_RTT_MS: Final = 50.0
FAIR_RTT_MS: Final = 150.0
GOOD_UNCERTAINTY_MS: Final = 5.0
FAIR_UNCERTAINTY_MS: Final = 15.0
STALE_MS: Final = 30_000.0  # no word from a member for this long is poor, whatever it said

THRESHOLDS_TEXT: Final = (
    f"good: RTT < {GOOD_RTT_MS:g} ms and clock uncertainty < {GOOD_UNCERTAINTY_MS:g} ms\n"
    f"fair: RTT < {FAIR_RTT_MS:g} ms and clock uncertainty < {FAIR_UNCERTAINTY_MS:g} ms\n"
    f"poor: anything worse, or nothing heard for {STALE_MS / 1000:g} s"
)


def classify(
    rtt_ms: float | None, uncertainty_ms: float | None, silent_for_ms: float = 0.0
) -> Status:
    """Good / fair / poor (or unknown before any measurement)."""
    if silent_for_ms >= STALE_MS:
        return "poor"
    if rtt_ms is None and uncertainty_ms is None:
        return "unknown"
    rtt = rtt_ms if rtt_ms is not None else 0.0
    unc = uncertainty_ms if uncertainty_ms is not None else 0.0
    if rtt < GOOD_RTT_MS and unc < GOOD_UNCERTAINTY_MS:
        return "good"
    if rtt < FAIR_RTT_MS and unc < FAIR_UNCERTAINTY_MS:
        return "fair"
    return "poor"


#: Round trips a link's RTT is the median of.
RTT_WINDOW: Final = 15


@dataclass(slots=True)
class LinkStats:
    """Recent link measurements of one connection.

    Every connection has one, so the samples are a packed ``array`` (~190 bytes for 15)
    rather than a ``deque`` (whose first block alone is ~530 bytes).
    """

    rtt_samples: array[float] = field(default_factory=lambda: array("d"))
    uncertainty_ms: float | None = None
    offset_ms: float | None = None
    last_seen: float = 0.0
    #: The member's output latency (ms, its click sent that much early) and which output
    #: ("speaker", "wired", "bluetooth"), from its sync reports; the console shows them.
    output_delay_ms: float | None = None
    output: str | None = None

    def add_rtt(self, rtt_ms: float) -> None:
        if rtt_ms >= 0:
            samples = self.rtt_samples
            if len(samples) >= RTT_WINDOW:
                del samples[0]
            samples.append(rtt_ms)

    def add_rtts(self, values: Iterable[float]) -> None:
        for value in values:
            self.add_rtt(value)

    @property
    def rtt_ms(self) -> float | None:
        """Median of the recent samples: one Wi-Fi stall does not paint a member red."""
        return statistics.median(self.rtt_samples) if self.rtt_samples else None

    def to_wire(self, now_ms: float) -> dict[str, object]:
        rtt = self.rtt_ms
        return {
            "rttMs": None if rtt is None else round(rtt, 2),
            "uncertaintyMs": None if self.uncertainty_ms is None else round(self.uncertainty_ms, 2),
            "lastSeen": self.last_seen,
            "status": classify(rtt, self.uncertainty_ms, now_ms - self.last_seen),
        }
