"""The one interface of in-process actors (server/peers.py), against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from bandsync_desktop.config import Settings
from bandsync_desktop.core.errors import BandSyncError
from bandsync_desktop.server.app import create_app
from bandsync_desktop.server.peers import Actor, ActorError, ActorHost
from tests.helpers.clients import expect_ok

pytestmark = pytest.mark.asyncio


class Recording:
    """An actor that records what it hears and, on start, sets the tempo."""

    def __init__(self, name: str, log: list[str], tempo: float | None = None) -> None:
        self.name = name
        self.log = log
        self.tempo = tempo
        self.heard: list[tuple[str, Mapping[str, Any]]] = []
        self.host: ActorHost | None = None

    async def start(self, host: ActorHost) -> None:
        self.host = host
        host.subscribe(self._on_publication)
        if self.tempo is not None:
            await host.submit("set_tempo", {"tempo": self.tempo})
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        if self.host is not None:
            self.host.unsubscribe(self._on_publication)
            self.host = None
            self.log.append(f"stop {self.name}")

    def status(self) -> Mapping[str, Any]:
        return {"state": "running" if self.host else "stopped"}

    def _on_publication(self, event: str, payload: Mapping[str, Any]) -> None:
        self.heard.append((event, payload))


class Broken(Recording):
    async def start(self, host: ActorHost) -> None:
        await super().start(host)
        raise ActorError("no such port")


async def test_actors_start_with_the_band_session_and_command_it_by_the_table(
    start_server: Any, make_client: Any
) -> None:
    log: list[str] = []
    first, second = Recording("a", log, tempo=97), Recording("b", log)
    assert isinstance(first, Actor)
    server = await start_server(band_session=True, actors=[first, second])
    assert log == ["start a", "start b"]
    assert server.service.sessions["band"].timeline.latest.tempo_bpm == 97
    phone = await make_client("phone")
    await expect_ok(phone, "join_session", {"sessionId": "other", "role": "leader"})
    await expect_ok(phone, "set_tempo", {"sessionId": "other", "tempo": 150})
    await first.host.submit("set_tempo", {"tempo": 101})  # type: ignore[union-attr]
    await asyncio.sleep(0.05)
    # Only the band session's publications reach the band's actors.
    tempos = [p.get("tempoBpm") for e, p in second.heard if e == "snapshot"]
    assert 101 in tempos and 150 not in tempos
    # The same parser as a phone's: bad input is refused, nothing changes.
    version = server.service.sessions["band"].version
    with pytest.raises(BandSyncError):
        await first.host.submit("set_tempo", {"tempo": 300})  # type: ignore[union-attr]
    assert server.service.sessions["band"].version == version
    await server.stop()
    assert log[-2:] == ["stop b", "stop a"]  # the last started stops first


async def test_an_actor_that_cannot_start_leaves_nothing_running(start_server: Any) -> None:
    log: list[str] = []
    server = await start_server(band_session=True)
    actors = server.actors
    assert actors is not None
    broken = Broken("midi-clock", log)
    with pytest.raises(ActorError, match="no such port"):
        await actors.start(broken)
    assert "midi-clock" not in actors and log == ["start midi-clock", "stop midi-clock"]
    # One with the same name replaces the running one.
    one, two = Recording("osc", log), Recording("osc", log)
    await actors.start(one)
    await actors.start(two)
    assert actors.get("osc") is two and one.host is None
    await actors.stop("osc")
    assert actors.running == ()


async def test_actors_need_the_band_session() -> None:
    with pytest.raises(ValueError, match="band session"):
        create_app(Settings(host="127.0.0.1", port=0), actors=[Recording("a", [])])
