"""Headless Chromium (Debian's, never a downloaded one) for the follower-page tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ..helpers.browser import CHROMIUM, CHROMIUM_ARGS


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
