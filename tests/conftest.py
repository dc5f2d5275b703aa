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

#: Groups that run one test at a time on one worker when the suite runs in parallel
#: (``scripts/test`` runs two pytest-xdist workers): the gear bridges and the console's Gear
#: dialog share the machine's Link session (a second Link peer is seen by the first); the
#: page tests' browsers take both cores, and their timing checks (taps, clicks, beat spread)
#: must not meet a second browser; the packaging tests share one frozen build.
SERIAL_GROUPS = {
    "actors": "gear",
    "test_gear.py": "gear",
    "web": "browser",
    "packaging": "packaging",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        group = next((SERIAL_GROUPS[p] for p in parts if p in SERIAL_GROUPS), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
