"""Finding 5: a Redis outage never turns a protected session into an open one.

Seen: Redis unreachable (its data kept), the server restarted knowing no sessions, an
attacker joined the band's id as leader; the server made an *open* session led by the
attacker, whose tempo changes pushed its version past the stored one, and the write-back
(versions only) left Redis with ``protected: false``, no key, the attacker leading.

Here Redis keeps running with its data, and a real TCP proxy between the server and Redis is
cut and restored: the server sees exactly what a network outage looks like.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from bandsync_desktop.core.errors import ErrorCode
from bandsync_desktop.core.session import Session
from bandsync_desktop.server.storage.redis import RedisStore
from tests.helpers.clients import Recorder, expect_ok, expect_refused
from tests.helpers.redis import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]

OUTAGE = r"Redis at .* is unreachable"


class CuttableProxy:
    """A TCP proxy on loopback that can be cut (every link closed, new ones refused at once)
    and restored."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._links -= {writer, up_writer}

    def sever(self) -> None:
        self.cut = True
        for link in list(self._links):
            link.transport.abort()

    def restore(self) -> None:
        self.cut = False

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            # every relay ends once its links are aborted: let each finish, cancel none
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


@pytest.mark.expect_log(OUTAGE, r"Redis holds another session under this id")
async def test_a_node_that_cannot_see_redis_hands_out_no_lead_and_loses_no_key(
    redis_server: RedisServer, start_server: Any
) -> None:
    # The band's protected session, in Redis.
    first = await start_server(redis_url=redis_server.url)
    leader = await Recorder(first.url, "leader").connect()
    created = await expect_ok(
        leader, "create_session", {"sessionId": "the-band", "clientId": "lead-1"}
    )
    await expect_ok(leader, "set_tempo", {"sessionId": "the-band", "tempo": 96})
    await leader.close()
    await first.stop()

    proxy = await CuttableProxy(redis_server.port).start()
    proxy.sever()
    server = await start_server(redis_url=proxy.url)  # knows no session; Redis unreachable
    assert str(server.service.store.state) == "redis-unreachable"
    attacker = await Recorder(server.url, "attacker", source="127.0.0.66").connect()
    try:
        base = {"sessionId": "the-band", "clientId": "mallory"}
        await expect_refused(
            attacker, "join_session", {**base, "role": "leader"}, ErrorCode.STORE_UNAVAILABLE
        )
        await expect_refused(attacker, "create_session", base, ErrorCode.STORE_UNAVAILABLE)
        await expect_ok(attacker, "join_session", base)  # a follower may wait in it
        await expect_refused(
            attacker,
            "set_role",
            {"sessionId": "the-band", "role": "leader"},
            ErrorCode.STORE_UNAVAILABLE,
        )
        for bpm in range(100, 130):  # what pushed the version past the stored one
            ack = await attacker.call("set_tempo", {"sessionId": "the-band", "tempo": bpm})
            assert ack["ok"] is False and ack["error"]["code"] == ErrorCode.NOT_LEADER

        proxy.restore()
        await _until(lambda: str(server.service.store.state) == "redis")
        check = RedisStore(redis_server.url)
        try:
            stored = await check.get("the-band")
        finally:
            await check.close()
        assert stored is not None
        assert stored.protected and stored.leader_key == created["leaderKey"]
        assert stored.leader_id == "lead-1" or stored.leader_id is None
        assert stored.timeline.latest.tempo_bpm == 96
        assert "mallory" in stored.members  # its join was accepted: it stays, a follower
        # and this node now serves the band's session: the key works, the attacker leads not
        await _until(lambda: server.service.sessions["the-band"].protected)
        owner = await Recorder(server.url, "owner").connect()
        try:
            await expect_ok(
                owner,
                "join_session",
                {
                    "sessionId": "the-band",
                    "clientId": "lead-1",
                    "role": "leader",
                    "leaderKey": created["leaderKey"],
                },
            )
        finally:
            await owner.close()
        await expect_refused(
            attacker,
            "set_role",
            {"sessionId": "the-band", "role": "leader"},
            ErrorCode.LEADER_KEY_REQUIRED,
        )
    finally:
        await attacker.close()
        await server.stop()
        await proxy.close()


async def test_a_write_back_never_replaces_a_protected_session_with_another(
    redis_server: RedisServer,
) -> None:
    """The store's own rule (``_PUT_IF_NEWER``), whatever a node sends it."""
    store = RedisStore(redis_server.url)
    try:
        band = Session.create("the-band", 1_000.0, protected=True)
        assert await store.create(band)
        impostor = Session.create("the-band", 2_000.0)  # another incarnation, open
        impostor.version = 500
        assert not await store.put_if_newer(impostor)
        kept = await store.get("the-band")
        assert kept is not None and kept.protected and kept.leader_key == band.leader_key
        # within one incarnation, the newer version still wins as before
        newer = Session.from_dict(band.to_dict())
        newer.version = 7
        newer.message = "later"
        assert await store.put_if_newer(newer)
        stored = await store.get("the-band")
        assert stored is not None and stored.message == "later"
        # and a protected incarnation does replace an open one
        open_one = Session.create("jam", 1_000.0)
        open_one.version = 50
        assert await store.create(open_one)
        locked = Session.create("jam", 2_000.0, protected=True)
        assert await store.put_if_newer(locked)
        stored = await store.get("jam")
        assert stored is not None and stored.protected
    finally:
        await store.close()
