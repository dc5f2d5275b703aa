"""``ResilientStore``: Redis killed mid-session or absent at start loses nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from bandsync_desktop.core.errors import SessionNotFound
from bandsync_desktop.core.session import CONSOLE, Session
from bandsync_desktop.server.storage import create_store
from bandsync_desktop.server.storage.base import StoreState
from bandsync_desktop.server.storage.redis import RedisStore
from bandsync_desktop.server.storage.resilient import ResilientStore
from tests.helpers.redis import RedisServer, free_port

from .sessions import RULES, mixed_session

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]

OUTAGE = r"Redis at .* is unreachable"


def resilient(url: str) -> ResilientStore:
    store = create_store(url)
    assert isinstance(store, ResilientStore)
    return store


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met in {timeout} s")
        await asyncio.sleep(0.01)


def storage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bandsync.storage" and r.levelno >= logging.WARNING
    ]


@pytest.mark.expect_log(OUTAGE)
async def test_redis_killed_mid_session_every_accepted_change_is_written_back(
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = resilient(redis_server.url)
    await store.start()
    try:
        originals = [mixed_session(i, 4) for i in range(5)]
        for original in originals:
            assert await store.create(original)
        assert store.state is StoreState.REDIS

        redis_server.kill()  # the plug is pulled: every key is gone with the process
        accepted: dict[str, tuple[int, str]] = {}
        for n in range(10):
            session_id = f"mixed-{n % 3}"
            session, _ = await store.update(
                session_id, lambda s, n=n: s.set_message(5000.0 + n, CONSOLE, f"outage {n}")
            )
            accepted[session_id] = (session.version, f"outage {n}")
        assert await store.create(Session.create("born-in-outage", 6000.0))
        assert store.state is StoreState.REDIS_UNREACHABLE
        served = await store.get("mixed-1")
        assert served is not None and served.message == "outage 7"
        assert sorted(store.dirty) == ["born-in-outage", "mixed-0", "mixed-1", "mixed-2"]
        assert len(storage_warnings(caplog)) == 1  # one warning, not one per write

        redis_server.start()  # same port, empty
        await wait_until(lambda: store.state is StoreState.REDIS)
        check = RedisStore(redis_server.url)
        try:
            for session_id, (version, message) in accepted.items():
                stored = await check.get(session_id)
                assert stored is not None
                assert (stored.version, stored.message) == (version, message)
            assert await check.get("born-in-outage") is not None
            # untouched sessions came back too, though Redis restarted empty
            for i in (3, 4):
                restored = await check.get(f"mixed-{i}")
                assert restored is not None
                assert restored.to_dict() == originals[i].to_dict()
        finally:
            await check.close()
        assert store.dirty == frozenset()
        assert len(storage_warnings(caplog)) == 1
    finally:
        await store.close()


@pytest.mark.expect_log(OUTAGE)
async def test_unreachable_at_start_serves_from_memory_then_writes_back() -> None:
    server = RedisServer(free_port())  # not started yet: nothing listens on its port
    store = resilient(server.url)
    await store.start()
    try:
        assert store.state is StoreState.REDIS_UNREACHABLE
        assert await store.create(Session.create("early", 1000.0))
        assert not await store.create(Session.create("early", 1001.0))
        session, _ = await store.update(
            "early", lambda s: s.set_tempo(1100.0, CONSOLE, 133.0, "now", RULES)
        )
        with pytest.raises(SessionNotFound):
            await store.update("unknown", lambda s: None)
        assert await store.session_ids() == ["early"]
        server.start()
        try:
            await wait_until(lambda: store.state is StoreState.REDIS)
            stored = await store.redis.get("early")
            assert stored is not None
            assert stored.version == session.version
            assert stored.timeline.latest.tempo_bpm == 133.0
        finally:
            await store.close()
            server.stop()
    finally:
        server.stop()


async def test_other_nodes_writes_reach_this_nodes_listeners(
    redis_server: RedisServer,
) -> None:
    node_a, node_b = resilient(redis_server.url), resilient(redis_server.url)
    await node_a.start()
    await node_b.start()
    seen: list[Session] = []
    node_b.add_change_listener(seen.append)
    try:
        await node_a.create(Session.create("shared", 1000.0))
        assert await node_b.get("shared") is not None  # B holds it now
        await asyncio.wait_for(node_b.subscribed.wait(), 15)
        await node_a.update("shared", lambda s: s.set_message(2000.0, CONSOLE, "from A"))
        await wait_until(lambda: bool(seen))
        assert seen[-1].message == "from A"
        assert seen[-1].version == 2
        await node_a.create(Session.create("not-held-by-b", 1000.0))
        await node_a.update("not-held-by-b", lambda s: s.set_message(2000.0, CONSOLE, "x"))
        await asyncio.sleep(0.1)
        assert [s.session_id for s in seen] == ["shared"]  # B is told only what it holds
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_redis_that_lost_everything_unnoticed_gets_the_band_back(
    redis_server: RedisServer,
) -> None:
    """Redis restarted empty (here: FLUSHALL) between two commands, so this node saw no
    outage. A session this node holds with members in it is put back, not lost or recreated
    empty; a memberless one that is gone stays gone (it was deleted or expired)."""
    store = resilient(redis_server.url)
    await store.start()
    other = RedisStore(redis_server.url)
    try:
        band = mixed_session(1, 4)
        empty = Session.create("nobody-here", band.created_at)
        assert await store.create(band) and await store.create(empty)
        members = sorted(band.members)
        await other.client.flushall()

        session, _notices = await store.update(
            band.session_id, lambda s: s.set_message(s.created_at + 1, CONSOLE, "still here")
        )
        assert sorted(session.members) == members
        assert session.message == "still here"
        stored = await other.get(band.session_id)
        assert stored is not None and stored.version == session.version
        assert sorted(stored.members) == members
        assert store.state is StoreState.REDIS  # no outage was declared for it

        await other.client.flushall()
        again = await store.get(band.session_id)
        assert again is not None and sorted(again.members) == members
        assert band.session_id in await store.session_ids()

        assert await store.get("nobody-here") is None  # an empty session is not resurrected
    finally:
        await other.close()
        await store.close()
