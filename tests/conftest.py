"""Shared fixtures: a real server on a free loopback port and real socket.io clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bandsync_desktop.config import Settings
from bandsync_desktop.server.app import ServerRunner, create_app

from .helpers.clients import Recorder
from .helpers.logfail import fail_on_warning_log  # noqa: F401
from .helpers.redis import redis_server  # noqa: F401  (a real redis-server per test)

ServerFactory = Callable[..., Awaitable[ServerRunner]]

#: Tests whose checks are measured in milliseconds of real time, against the machine's own
#: clock: the gear bridges (Link phase, MIDI clock pulses), the console's Gear dialog (its Link
#: peer is seen by the bridges' tests) and the page tests that time what they see or hear
#: (taps, clicks, beat spread, a banner or a section on its bar, relocking). ``scripts/test``
#: runs them alone, one at a time (``--part timed``), after the rest on two workers (``--part
#: untimed -n 2``): two at once, or a second worker's browser beside them, made them miss by
#: 10-900 ms. The layout tests (geometry after an animation frame), the routes and the node
#: checks are untimed.
TIMED = frozenset(
    {
        "actors",
        "test_gear.py",
        "test_audio_map.py",
        "test_calibration.py",
        "test_comforts.py",
        "test_cue_page.py",
        "test_engines.py",
        "test_follower_page.py",
        "test_form_page.py",
        "test_resume.py",
        "test_setlist_page.py",
        "test_voice.py",
        "test_wifi_emulator.py",
    }
)
#: The packaging tests share one frozen build: on one worker, so it is built once.
PACKAGING = "packaging"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--part",
        choices=("all", "timed", "untimed"),
        default="all",
        help="run only the real-time tests (timed), only the others (untimed), or all",
    )


# First: xdist's worker reads the xdist_group marks in its own collection hook, and marks added
# after it are not seen (the packaging tests then went to both workers, each building the
# bundle, 40 s: clean-clone run of 3 Dec 16:11). pyproject.toml pins pytest below 9.2 for the
# same grouping.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = config.getoption("--part")
    root = Path(__file__).parent
    xdist = config.pluginmanager.hasplugin("xdist")
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        parts = item.path.relative_to(root).parts
        timed = any(p in TIMED for p in parts)
        if part != "all" and timed != (part == "timed"):
            dropped.append(item)
            continue
        kept.append(item)
        if xdist and PACKAGING in parts:
            item.add_marker(pytest.mark.xdist_group(PACKAGING))
        elif xdist and timed:  # (a parallel run of everything keeps them on one worker)
            item.add_marker(pytest.mark.xdist_group("timed"))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest_asyncio.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start servers with custom settings/clock/store/actors: ``await start_server(**kw)``."""
    runners: list[ServerRunner] = []

    async def start(
        *,
        clock: Any = None,
        store: Any = None,
        band_session: bool = False,
        actors: Any = (),
        **overrides: Any,
    ) -> ServerRunner:
        settings = Settings(host="127.0.0.1", port=0).with_overrides(overrides)
        app = create_app(
            settings, clock=clock, store=store, band_session=band_session, actors=actors
        )
        runner = ServerRunner(app)
        await runner.start("127.0.0.1", 0)
        runners.append(runner)
        return runner

    yield start
    for runner in reversed(runners):
        await runner.stop()


@pytest_asyncio.fixture
async def server(start_server: ServerFactory) -> ServerRunner:
    """A server with default settings."""
    return await start_server()


ClientFactory = Callable[..., Awaitable[Recorder]]


@pytest_asyncio.fixture
async def make_client(server: ServerRunner) -> AsyncIterator[ClientFactory]:
    """Connected recording clients: ``await make_client("name")`` (or ``url=`` another)."""
    clients: list[Recorder] = []

    async def make(name: str = "client", *, url: str | None = None, **options: Any) -> Recorder:
        client = Recorder(url or server.url, name, **options)
        await client.connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
