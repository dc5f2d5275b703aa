"""A song's form and the leader's calls over the protocol: real socket.io clients against a
real server on loopback, its own conductor task placing the sections (issue 15, item 3).

The leader sends a song with sections, plays, and calls jump / vamp / end; every phone gets
each change in a snapshot (``segments``) before its downbeat, and all phones reading their
snapshot's timeline hear the same bar at the same server instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from bandsync_desktop.core.conductor import song_bar_at
from bandsync_desktop.core.timeline import Timeline
from bandsync_desktop.server.app import ServerRunner

from ..helpers.clients import Recorder, expect_ok, expect_refused, joined_phone

pytestmark = pytest.mark.asyncio

UNLIMITED = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
SECTIONS = [
    {"name": "Intro", "bars": 1, "tempoBpm": 240},
    {"name": "Verse", "bars": 2, "tempoBpm": 240},
    {"name": "Bridge", "bars": 1, "tempoBpm": 180, "beatsPerBar": 3},
    {"name": "Outro", "bars": 1, "tempoBpm": 240},
]
Phones = Callable[..., Awaitable[Recorder]]


@pytest_asyncio.fixture
async def phones(start_server: Any) -> AsyncIterator[tuple[ServerRunner, Phones]]:
    server = await start_server(band_session=True, **UNLIMITED)
    made: list[Recorder] = []

    async def phone(name: str, **join: Any) -> Recorder:
        join = {"capabilities": ["timeline"], **join}
        return await joined_phone(server.url, name, made, hears=("show",), **join)

    yield server, phone
    for client in made:
        await client.close()


def timeline_of(client: Recorder) -> Timeline:
    return Timeline.from_wire(client.last("snapshot")["segments"])


async def test_the_form_plays_on_every_phone_and_a_jump_lands_on_the_bar(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    guitar, bass = await phone("Guitar"), await phone("Bass")
    song = {"title": "Short form", "sections": SECTIONS}
    await expect_ok(leader, "set_song", {"sessionId": "gig", "song": song})
    await asyncio.sleep(0.2)
    snap = guitar.last("snapshot")
    assert [s["name"] for s in snap["song"]["sections"]] == ["Intro", "Verse", "Bridge", "Outro"]
    assert snap["show"] == {"vamp": None, "vampName": None, "call": None, "segue": None}

    await expect_ok(leader, "play", {"sessionId": "gig"})
    clock = server.service.clock
    # each phone's own timeline, sampled as the snapshots arrive: what it will play
    heard: dict[str, list[tuple[float, int, int]]] = {"Guitar": [], "Bass": []}
    call_sent = False
    end = clock.now_ms() + 6_000
    while clock.now_ms() < end:
        now = clock.now_ms()
        for name, client in (("Guitar", guitar), ("Bass", bass)):
            timeline = timeline_of(client)
            segment = timeline.segment_at(now)
            if segment.playing and now >= segment.anchor_ms:
                heard[name].append((now, song_bar_at(timeline, now), segment.beats_per_bar))
        if not call_sent and heard["Guitar"] and heard["Guitar"][-1][1] == 2:
            # in the verse's first bar: go to the outro at the next bar
            shows = guitar.next("show")
            ack = await expect_ok(
                leader, "jump", {"sessionId": "gig", "section": "Outro", "at": "bar"}
            )
            assert ack["ok"] is True
            notice = await asyncio.wait_for(shows, 3)
            assert notice["call"] is not None, (notice["reason"], notice)
            assert notice["call"]["sectionName"] == "Outro" and notice["call"]["bar"] == 3
            call_sent = True
        if heard["Guitar"] and not server.service.sessions["gig"].timeline.is_playing_at(now):
            break  # the song is over
        await asyncio.sleep(0.02)
    assert call_sent
    for name, samples in heard.items():
        bars = [bar for _, bar, _ in samples]
        order = [b for i, b in enumerate(bars) if i == 0 or bars[i - 1] != b]
        assert order == [1, 2, 5], (name, order)  # intro, the verse's first bar, the outro
    # both phones' timelines say the same bar at every instant they were sampled
    guitar_tl, bass_tl = timeline_of(guitar), timeline_of(bass)
    assert guitar_tl == bass_tl
    session = server.service.sessions["gig"]
    assert not session.timeline.latest.playing  # the song ended after the outro


async def test_calls_from_a_follower_and_bad_calls_are_refused_and_change_nothing(
    phones,
) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    guitar = await phone("Guitar")
    await expect_ok(
        leader, "set_song", {"sessionId": "gig", "song": {"title": "T", "sections": SECTIONS}}
    )
    await expect_ok(leader, "play", {"sessionId": "gig"})
    await asyncio.sleep(0.1)
    before = server.service.sessions["gig"].show
    await expect_refused(guitar, "jump", {"sessionId": "gig", "section": 1}, "NOT_LEADER")
    await expect_refused(guitar, "vamp", {"sessionId": "gig"}, "NOT_LEADER")
    await expect_refused(guitar, "end", {"sessionId": "gig"}, "NOT_LEADER")
    for event, payload in (
        ("jump", {"section": 99}),
        ("jump", {"section": {"$gt": 0}}),
        ("jump", {"section": "Chorus"}),
        ("jump", {"section": 1, "at": "never"}),
        ("end", {"at": ["bar"]}),
        ("vamp", {"on": 1}),
    ):
        await expect_refused(leader, event, {"sessionId": "gig", **payload}, "INVALID_CALL")
    assert server.service.sessions["gig"].show == before
    # the legacy path still works: a tick-only client gets positions while the form plays
    ack = await expect_ok(leader, "vamp", {"sessionId": "gig"})
    assert ack["ok"] is True
    assert server.service.sessions["gig"].show.vamp == 0


async def test_a_segue_reaches_every_phone_before_its_downbeat_and_the_next_song_follows(
    phones,
) -> None:
    """The song ends as written and the next one counts in on that downbeat: both phones
    had the next song's timeline in a snapshot before it, and get it on the stands as it
    begins (the server's conductor step), with a ``play`` for clients of the original."""
    server, phone = phones
    leader = await phone("Lead", role="leader")
    guitar, bass = await phone("Guitar"), await phone("Bass")
    for client in (guitar, bass):
        client.sio.on("song_changed", client._recorder("song_changed"))
    song = {"title": "Short form", "sections": SECTIONS}
    await expect_ok(leader, "set_song", {"sessionId": "gig", "song": song})
    await expect_ok(leader, "play", {"sessionId": "gig", "countInBars": 0})
    nxt = {"title": "Next", "tempo": 120, "beatsPerBar": 2, "beatUnit": 4, "countInBars": 1}
    await expect_ok(leader, "segue", {"sessionId": "gig", "song": nxt})
    show = await guitar.wait_for("show")
    assert show["segue"]["title"] == "Next" and show["segue"]["bar"] == 6
    clock = server.service.clock
    # wait until the next song is on the timeline, then until it is on the stands
    for _ in range(100):
        segue = server.service.sessions["gig"].segue
        if segue is not None and segue.at_ms is not None:
            break
        await asyncio.sleep(0.05)
    assert segue is not None and segue.at_ms is not None
    switch = segue.at_ms
    for client in (guitar, bass):  # each phone has it in a snapshot before the downbeat
        while timeline_of(client).segment_at(switch + 1).tempo_bpm != 120.0:
            assert clock.now_ms() < switch, client.name
            await asyncio.sleep(0.005)
        assert clock.now_ms() < switch, client.name
        assert timeline_of(client).counting_in_at(switch + 500)  # a bar of 2/4 at 120
    changed = [client.wait_for("song_changed", timeout=10) for client in (guitar, bass)]
    for got in await asyncio.gather(*changed):
        assert got["song"]["title"] == "Next"
    assert clock.now_ms() >= switch
    assert guitar.last("play")["downbeatAt"] == pytest.approx(switch + 1_000)
    for client in (guitar, bass):  # (the snapshot follows the notices)
        for _ in range(100):
            if client.last("snapshot")["song"]["title"] == "Next":
                break
            await asyncio.sleep(0.02)
        after = client.last("snapshot")
        assert after["song"]["title"] == "Next" and after["show"]["segue"] is None
        assert song_bar_at(timeline_of(client), switch + 1_001) == 1


async def test_a_client_of_the_original_server_hears_the_song_to_its_end_then_a_pause(
    phones,
) -> None:
    """No timeline for it to read the form's end from: its ``scroll_tick`` goes on until the
    band stops (not 2 s before, when the end is placed) and then a ``pause`` tells it."""
    server, phone = phones
    leader = await phone("Lead", role="leader")
    old = Recorder(server.url, "old")
    await old.connect()
    try:
        await expect_ok(old, "join_session", {"sessionId": "gig", "displayName": "Old"})
        song = {"title": "Short form", "sections": SECTIONS}
        await expect_ok(leader, "set_song", {"sessionId": "gig", "song": song})
        await expect_ok(leader, "play", {"sessionId": "gig", "countInBars": 0})
        paused = old.next("pause")
        got = await asyncio.wait_for(paused, 10)
        session = server.service.sessions["gig"]
        end = session.timeline.latest.start_ms  # the form's end, where it stopped
        assert not session.timeline.latest.playing
        assert got["isPlaying"] is False and got["effectiveAt"] == pytest.approx(end)
        assert end <= got["serverTimestamp"] <= end + 400  # told as it happened, not before
        ticks = [t for t in old.payloads("scroll_tick") if t["isPlaying"]]
        assert ticks and ticks[-1]["serverTimestamp"] >= end - 300  # ticks to the end
    finally:
        await old.close()
