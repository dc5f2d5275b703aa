"""``RedisStore`` against a real ``redis-server``: integrity, compare-and-set, TTL, memory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bandsync_desktop.core.errors import NotLeader, SessionNotFound
from bandsync_desktop.core.session import CONSOLE, Session
from bandsync_desktop.server.storage.redis import RedisStore, encode, parse_change
from tests.helpers.redis import RedisServer

from .sessions import RULES, mixed_session

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url)
    await store.start()
    yield store
    await store.close()


async def test_integrity_of_100_mixed_sessions(store: RedisStore) -> None:
    """The seeds' integrity test: 100 sessions of mixed content read back identical."""
    sessions = [mixed_session(i, 2 + i % 9) for i in range(100)]
    assert all(await asyncio.gather(*(store.create(s) for s in sessions)))
    assert await store.session_ids() == sorted(s.session_id for s in sessions)
    for original in sessions:
        loaded = await store.get(original.session_id)
        assert loaded is not None
        assert loaded.to_dict() == original.to_dict()
        assert encode(loaded) == encode(original)  # byte for byte, unicode included
        assert loaded.timeline == original.timeline
    assert await store.get("never-stored") is None


async def test_fifty_concurrent_updates_from_five_clients_lose_nothing(
    store: RedisStore,
    redis_server: RedisServer,
) -> None:
    """50 joins racing through 5 independent connections: every one is in the result."""
    await store.create(Session.create("crowd", 1000.0))
    writers = [RedisStore(redis_server.url) for _ in range(5)]

    async def join(i: int) -> int:
        def change(s: Session) -> int:
            s.join(
                2000.0 + i,
                f"sock-{i}",
                client_id=f"c{i}",
                display_name=f"P{i}",
                role=None,
                key=None,
                device=None,
                rules=RULES,
            )
            return s.version

        _, version = await writers[i % 5].update("crowd", change)
        return version

    try:
        versions = await asyncio.gather(*(join(i) for i in range(50)))
    finally:
        await asyncio.gather(*(w.close() for w in writers))
    final = await store.get("crowd")
    assert final is not None
    assert sorted(final.members) == sorted(f"c{i}" for i in range(50))
    assert final.version == 1 + 50
    assert sorted(versions) == list(range(2, 52))  # each write got its own version


async def test_refused_change_writes_nothing(store: RedisStore) -> None:
    session = mixed_session(7, 3)
    await store.create(session)

    def refused(s: Session) -> None:
        s.set_message(5000.0, "client-7-2", "not the leader")  # raises NotLeader first

    with pytest.raises(NotLeader):
        await store.update(session.session_id, refused)
    stored = await store.get(session.session_id)
    assert stored is not None and stored.to_dict() == session.to_dict()
    with pytest.raises(SessionNotFound):
        await store.update("missing", lambda s: None)


async def test_create_is_compare_and_set_and_writes_publish(store: RedisStore) -> None:
    first = Session.create("dup", 1000.0)
    pubsub = store.client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(store.channel)
    assert await store.create(first) is True
    assert await store.create(Session.create("dup", 2000.0)) is False
    stored = await store.get("dup")
    assert stored is not None and stored.created_at == 1000.0
    message = None
    for _ in range(20):  # the subscribe confirmation comes first and reads as None
        message = await pubsub.get_message(timeout=0.1)
        if message is not None:
            break
    assert message is not None
    session_id, version, data = parse_change(message["data"])
    assert (session_id, version) == ("dup", 1)
    assert json.loads(data) == first.to_dict()
    await pubsub.aclose()


async def test_stale_write_back_is_refused_newer_is_taken(store: RedisStore) -> None:
    session = Session.create("wb", 1000.0)
    await store.create(session)
    newer = Session.from_dict(session.to_dict())
    newer.set_message(1500.0, CONSOLE, "written during an outage")
    assert await store.put_if_newer(newer) is True
    assert await store.put_if_newer(session) is False  # older: Redis keeps the newer one
    stored = await store.get("wb")
    assert stored is not None and stored.message == "written during an outage"


async def test_idle_sessions_expire_and_activity_refreshes_the_ttl(
    redis_server: RedisServer,
) -> None:
    store = RedisStore(redis_server.url, ttl_s=0.6)
    try:
        await store.create(Session.create("idle", 1000.0))
        await store.create(Session.create("busy", 1000.0))
        assert 0 < await store.client.pttl(store.key("idle")) <= 600
        await asyncio.sleep(0.35)
        await store.update("busy", lambda s: s.set_message(2000.0, CONSOLE, "still here"))
        assert await store.client.pttl(store.key("busy")) > 450  # refreshed by the write
        await asyncio.sleep(0.35)
        assert await store.get("idle") is None  # 0.7 s without activity: gone
        assert await store.session_ids() == ["busy"]
        assert await store.client.smembers(store.index_key) == {"busy"}  # index pruned
        await store.touch(["busy"])
        assert await store.client.pttl(store.key("busy")) > 450
    finally:
        await store.close()


async def test_memory_per_session_of_eight_members_is_under_5_kb(store: RedisStore) -> None:
    usages = []
    for i in range(20):
        session = mixed_session(i, 8)
        await store.create(session)
        usage = await store.memory_usage(session.session_id)
        assert usage is not None
        usages.append(usage)
    assert max(usages) < 5 * 1024, usages


async def test_delete_removes_key_and_index(store: RedisStore) -> None:
    await store.create(Session.create("gone", 1000.0))
    await store.delete("gone")
    assert await store.get("gone") is None
    assert await store.session_ids() == []
    assert await store.client.exists(store.key("gone")) == 0
