"""Headless Chromium (Debian's, never a downloaded one) for the follower-page tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ..helpers.browser import CHROMIUM, CHROMIUM_ARGS
from ..helpers.engines import BrowserPool, Engine, missing_reason


def chromium_path() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium per test; each page gets its own context (own localStorage)."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian chromium is not installed (scripts/bootstrap dev installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


# -- every engine: one browser process per engine and module, pages through one driver layer --


@pytest.fixture(scope="module")
def browser_pool() -> Iterator[BrowserPool]:
    pool = BrowserPool()
    yield pool
    pool.close()


@pytest_asyncio.fixture(
    params=[
        pytest.param("chromium", marks=pytest.mark.browser),
        pytest.param("firefox", marks=pytest.mark.firefox),
        pytest.param("webkit", marks=pytest.mark.webkit),
    ]
)
async def engine(
    request: pytest.FixtureRequest, browser_pool: BrowserPool
) -> AsyncIterator[Engine]:
    """The test once in each engine (Chromium, Firefox, WebKit); skipped where one is not
    installed."""
    name: str = request.param
    reason = missing_reason(name)
    if reason is not None:
        pytest.skip(reason)
    pages = Engine(name, browser_pool)
    try:
        yield pages
    finally:
        await pages.close()
