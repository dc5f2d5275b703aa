"""Idle sessions expire from Redis; a quiet band with members connected does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bandsync_desktop.server.storage.redis import RedisStore
from tests.helpers.clients import Recorder
from tests.helpers.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.slow]


async def test_idle_session_expires_but_a_quiet_band_stays(
    redis_server: RedisServer,  # first: it must outlive the server
    start_server: Any,
) -> None:
    server = await start_server(redis_url=redis_server.url, idle_expiry_s=2.0)
    band = await Recorder(server.url, "band").connect()
    passer = await Recorder(server.url, "passer-by").connect()
    check = RedisStore(redis_server.url)
    try:
        assert (await band.call("join_session", {"sessionId": "quiet", "clientId": "b1"}))["ok"]
        first = await passer.call("join_session", {"sessionId": "left", "clientId": "p1"})
        assert (await passer.call("leave_session", {"sessionId": "left"}))["ok"]
        assert await check.get("left") is not None

        await asyncio.sleep(3.2)  # longer than the 2 s idle expiry; nobody does anything

        assert await check.get("left") is None  # idle and empty: gone from Redis
        assert await check.session_ids() == ["quiet"]  # connected members keep it alive
        quiet = await check.get("quiet")
        assert quiet is not None and list(quiet.members) == ["b1"]
        again = await passer.call("join_session", {"sessionId": "left", "clientId": "p1"})
        assert again["ok"] and again["version"] <= first["version"]  # a fresh session
    finally:
        await check.close()
        await band.close()
        await passer.close()
