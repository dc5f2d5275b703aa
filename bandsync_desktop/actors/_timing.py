"""What the bridges' sender threads share to send at an instant: the server clock's offset
from ``time.monotonic()``, real-time scheduling, and a sleep that ends exactly on time.

Server time is ``time.monotonic()`` shifted by a constant (``core/clock.py``), so a thread
that knows the constant needs nothing else from the server's loop to find an instant. A
sleep wakes late by up to ~0.1 ms (timer slack, scheduling); spinning the last stretch on
the monotonic clock is exact.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from logging import Logger
from typing import Final

#: SCHED_FIFO priority asked for a sender thread: above every normal thread, below JACK's
#: own (70 and up), so a sender never delays the audio server.
RT_PRIORITY: Final = 20


def bracketed_offset(
    read: Callable[[], float], reference: Callable[[], float], tries: int = 16
) -> float:
    """``read()`` minus ``reference()`` at the same instant: ``read`` is bracketed by two
    readings of ``reference`` and compared with their midpoint; the tightest of ``tries``
    brackets wins (a thread switch between two readings would skew a single one)."""
    best_width = math.inf
    offset = 0.0
    for _ in range(tries):
        before = reference()
        value = read()
        after = reference()
        if after - before < best_width:
            best_width = after - before
            offset = value - (before + after) / 2.0
    return offset


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


def offset_to_monotonic(now_ms: Callable[[], float]) -> float:
    """Server time (``now_ms()``) minus ``time.monotonic()``, in ms: a constant."""
    return bracketed_offset(now_ms, monotonic_ms)


def ask_realtime(log: Logger, what: str) -> bool:
    """Real-time scheduling (``SCHED_FIFO``, ``RT_PRIORITY``) for the calling thread, if the
    system allows it (root, or an ``rtprio`` limit; Linux): woken at its instant, the thread
    does not wait for a core behind other processes' threads. Where it is refused, says so
    at INFO (``what`` names the thread's work) and returns False."""
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return False
    try:
        setter(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))  # 0: this thread (Linux)
    except OSError as error:
        log.info("%s at normal priority (no real-time scheduling: %s)", what, error)
        return False
    return True


def sleep_until(due_s: float, wait: Callable[[float], bool], spin_s: float) -> bool:
    """Sleep until ``due_s`` on ``time.monotonic()``: ``wait`` until ``spin_s`` before it,
    then spin the rest.

    Args:
        due_s: the instant (monotonic seconds).
        wait: sleeps at most its argument (seconds) and returns True if woken by news (a new
            timeline, a close) that calls the instant into question; it may return early
            without news (it is called again for what is left).
        spin_s: how long before ``due_s`` sleeping gives way to spinning.

    Returns:
        True at ``due_s`` (never before it), False as soon as ``wait`` reports news.
    """
    while (remaining := due_s - time.monotonic()) > spin_s:
        if wait(remaining - spin_s):
            return False
    while time.monotonic() < due_s:
        pass
    return True
