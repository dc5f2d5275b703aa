"""The sender threads' timing helpers (actors/_timing.py)."""

from __future__ import annotations

import threading
import time

from bandsync_desktop.actors._timing import bracketed_offset, offset_to_monotonic, sleep_until
from bandsync_desktop.core.clock import MonotonicClock


def test_sleep_until_never_returns_early_and_spins_only_the_last_stretch() -> None:
    waits: list[float] = []

    def wait(timeout_s: float) -> bool:
        waits.append(timeout_s)
        time.sleep(timeout_s)
        return False

    for _ in range(20):
        due = time.monotonic() + 0.003
        assert sleep_until(due, wait, 0.0005) is True
        assert time.monotonic() >= due
    # Each wait ends 0.5 ms before the instant (a wait that ends early is waited again).
    assert waits and all(w <= 0.003 - 0.0005 + 1e-4 for w in waits)


def test_sleep_until_gives_up_at_news_and_waits_again_after_an_early_wake_up() -> None:
    news = threading.Event()
    threading.Timer(0.02, news.set).start()
    started = time.monotonic()
    assert sleep_until(started + 5.0, news.wait, 0.0005) is False
    assert time.monotonic() - started < 1.0
    # A wait that returns early without news is not the instant.
    calls = []

    def early(timeout_s: float) -> bool:
        calls.append(timeout_s)
        return False  # at once, no news

    due = time.monotonic() + 0.01
    assert sleep_until(due, early, 0.0005) is True
    assert time.monotonic() >= due and len(calls) > 1


def test_the_server_clock_is_a_constant_shift_of_the_monotonic_clock() -> None:
    clock = MonotonicClock()
    first = offset_to_monotonic(clock.now_ms)
    time.sleep(0.05)
    assert abs(offset_to_monotonic(clock.now_ms) - first) < 0.05  # ms
    # The bracket's midpoint: a reading taken between two others is compared with their mean.
    ticks = iter(range(0, 1000, 2))
    assert bracketed_offset(lambda: 1000.0, lambda: float(next(ticks)), tries=3) == 999.0
