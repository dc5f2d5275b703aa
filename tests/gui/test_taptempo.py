"""Tap tempo: the average of the last taps, forgotten after a pause."""

from __future__ import annotations

from bandsync_desktop.core.clock import ManualClock
from bandsync_desktop.gui.taptempo import TapTempo


def tap_every(tapper: TapTempo, clock: ManualClock, interval_ms: float, taps: int) -> list:
    results = []
    for _ in range(taps):
        results.append(tapper.tap())
        clock.advance(interval_ms)
    return results


def test_two_taps_give_a_tempo_and_more_taps_average() -> None:
    clock = ManualClock()
    tapper = TapTempo(clock)
    assert tapper.tap() is None
    clock.advance(500.0)
    assert tapper.tap() == 120.0
    clock.advance(520.0)  # a late tap is averaged out, not taken alone
    assert tapper.tap() == round(60_000 / 510)


def test_average_spans_only_the_last_taps() -> None:
    clock = ManualClock()
    tapper = TapTempo(clock, max_taps=4)
    tap_every(tapper, clock, 1000.0, 4)  # 60 BPM
    results = tap_every(tapper, clock, 500.0, 4)  # now 120 BPM: the old taps roll out
    assert results[-1] == 120.0


def test_a_pause_starts_a_new_count() -> None:
    clock = ManualClock()
    tapper = TapTempo(clock, reset_after_ms=2000.0)
    tap_every(tapper, clock, 400.0, 3)
    clock.advance(3000.0)
    assert tapper.tap() is None
    assert tapper.count == 1


def test_tempo_is_clamped_to_the_valid_range() -> None:
    clock = ManualClock()
    tapper = TapTempo(clock)
    assert tap_every(tapper, clock, 100.0, 2)[-1] == 280.0
    tapper.reset()
    assert tap_every(tapper, clock, 1900.0, 2)[-1] == 32.0
