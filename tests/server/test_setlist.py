"""The set on the phones over the protocol: real socket.io clients, a real server on loopback.

The leader's ``set_setlist`` reaches every member as a ``setlist`` notice and in the next
snapshot; a follower's is refused and changes nothing; a malformed set is refused whole with
``INVALID_SETLIST``; the biggest set allowed fits every limit; a client of the original server
is unaffected (it ignores the notice and its snapshot simply has one more field).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from bandsync_desktop.core.stageset import SET_SONGS_MAX
from bandsync_desktop.core.validation import TITLE_MAX
from bandsync_desktop.server.app import ServerRunner

from ..helpers.clients import Recorder, expect_ok, expect_refused, joined_phone

pytestmark = pytest.mark.asyncio

UNLIMITED = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
SET = {
    "name": "Friday",
    "current": 0,
    "songs": [
        {"title": "Opener", "tempo": 128, "beatsPerBar": 4, "beatUnit": 4, "lengthMs": 200_000},
        {"title": "Ballad", "tempo": 72, "beatsPerBar": 6, "beatUnit": 8},
    ],
}
Phones = Callable[..., Awaitable[Recorder]]


@pytest_asyncio.fixture
async def phones(start_server: Any) -> AsyncIterator[tuple[ServerRunner, Phones]]:
    server = await start_server(band_session=True, **UNLIMITED)
    made: list[Recorder] = []

    async def phone(name: str, **join: Any) -> Recorder:
        return await joined_phone(server.url, name, made, hears=("setlist",), **join)

    yield server, phone
    for client in made:
        await client.close()


async def test_the_leaders_set_reaches_every_phone(phones) -> None:
    _, phone = phones
    leader = await phone("Lead", role="leader")
    guitar, bass = await phone("Guitar"), await phone("Bass")
    heard = [p.next("setlist") for p in (guitar, bass)]
    snapshots = [p.next("snapshot") for p in (guitar, bass)]
    await expect_ok(leader, "set_setlist", {"sessionId": "gig", "setlist": SET})
    for notice, snapshot in zip(heard, snapshots, strict=True):
        got = await asyncio.wait_for(notice, 5)
        assert got["sessionId"] == "gig"
        assert [s["title"] for s in got["setlist"]["songs"]] == ["Opener", "Ballad"]
        assert got["setlist"]["current"] == 0
        assert (await asyncio.wait_for(snapshot, 5))["setlist"] == got["setlist"]
    # and a phone joining later finds it in its first snapshot
    late = await phone("Keys")
    assert late.last("snapshot")["setlist"]["name"] == "Friday"


async def test_a_follower_cannot_replace_or_clear_the_set(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    rogue = await phone("Rogue")
    await expect_ok(leader, "set_setlist", {"sessionId": "gig", "setlist": SET})
    before = server.service.sessions["gig"].to_dict()
    for setlist in (None, {"songs": [{"title": "RICKROLL"}]}):
        await expect_refused(
            rogue, "set_setlist", {"sessionId": "gig", "setlist": setlist}, "NOT_LEADER"
        )
    assert server.service.sessions["gig"].to_dict() == before


async def test_a_malformed_set_is_refused_whole_and_changes_nothing(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    await expect_ok(leader, "set_setlist", {"sessionId": "gig", "setlist": SET})
    before = server.service.sessions["gig"].to_dict()
    bad = [
        {"songs": [{"title": "A"}] * (SET_SONGS_MAX + 1)},
        {"songs": [{"title": "A"}, {"title": "\u0007bell"}]},
        {"songs": [{"title": "A", "lengthMs": -5}]},
        {"songs": [{"title": "A"}], "current": 5},
        {"songs": {"title": "A"}},
        "a set",
    ]
    for setlist in bad:
        ack = await expect_refused(
            leader, "set_setlist", {"sessionId": "gig", "setlist": setlist}, "INVALID_SETLIST"
        )
        assert ack["error"]["message"]
    assert server.service.sessions["gig"].to_dict() == before


async def test_the_biggest_set_allowed_passes_every_limit(phones) -> None:
    """60 songs with 120-character titles: under the payload limit, accepted, delivered."""
    _, phone = phones
    leader = await phone("Lead", role="leader")
    follower = await phone("Guitar")
    songs = [
        {"title": f"{i:02d} " + "é" * (TITLE_MAX - 3), "tempo": 100 + i, "lengthMs": 180_000}
        for i in range(SET_SONGS_MAX)
    ]
    payload = {"sessionId": "gig", "setlist": {"name": "N" * TITLE_MAX, "songs": songs}}
    assert len(json.dumps(payload)) < 128 * 1024
    heard = follower.next("setlist")
    await expect_ok(leader, "set_setlist", payload)
    got = await asyncio.wait_for(heard, 5)
    assert len(got["setlist"]["songs"]) == SET_SONGS_MAX
    assert got["setlist"]["songs"][59]["title"] == songs[59]["title"]


async def test_a_client_of_the_original_server_keeps_working(phones) -> None:
    """No capabilities, the seeds' events only: a set changes nothing it relies on."""
    server, phone = phones
    leader = await phone("Lead", role="leader")
    old = Recorder(server.url, "old")
    await old.connect()
    try:
        await expect_ok(old, "join_session", {"sessionId": "gig", "displayName": "Old"})
        snapshot = old.next("snapshot")
        await expect_ok(leader, "set_setlist", {"sessionId": "gig", "setlist": SET})
        got = await asyncio.wait_for(snapshot, 5)
        assert got["tempo"] == 120 and got["isPlaying"] is False and got["setlist"]["name"]
        await expect_ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 90})
        await asyncio.sleep(0.3)
        assert old.last("tempo_changed")["tempoBpm"] == 90
    finally:
        await old.close()
