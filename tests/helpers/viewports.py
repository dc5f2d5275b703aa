"""The screens the follower page is checked at (issue 12), and one page turned through them.

A layout test plays its story once and, wherever it looks at the screen, looks at every
viewport: it resizes the page it has (as a phone turned to landscape, or a tablet's window
resized, does) and asserts again. Replaying the whole story once per viewport, with its songs
played in real time, cost four times as much and checked nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

#: Phone, small phone, phone in landscape, tablet (CSS px).
VIEWPORTS: list[tuple[int, int]] = [(390, 844), (360, 800), (844, 390), (820, 1180)]

# Resolves after the next frame has been laid out and painted (a task queued from a rAF
# callback runs once every callback of that frame is done).
NEXT_FRAME = "new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))"


async def resize(page: Any, size: tuple[int, int]) -> None:
    """Resizes Playwright page ``page`` (a test's ``Page`` wrapper: ``.page``) to ``size`` and
    waits for the page to have laid itself out at it."""
    width, height = size
    await page.page.set_viewport_size({"width": width, "height": height})
    await page.page.evaluate(NEXT_FRAME)
    shown: dict[str, int] = await page.page.evaluate("({w: innerWidth, h: innerHeight})")
    assert (shown["w"], shown["h"]) == size, shown


async def each_viewport(page: Any) -> AsyncIterator[tuple[int, int]]:
    """``page`` at each of VIEWPORTS in turn (resize), yielding the size; it stays at the
    last (the tablet) afterwards."""
    for size in VIEWPORTS:
        await resize(page, size)
        yield size
