"""Stage cues over the protocol: real socket.io clients against a real server on loopback.

The leader's ``cue`` reaches every member as a ``cue`` notice and a snapshot before its bar;
a follower's is refused; every malformed field is refused with a clear ``error`` and changes
nothing; ``clear_cue``, a new song, a stop and a seek take the cue off; a client written for
the original server (no capabilities, the seeds' events only) is unaffected.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from bandsync_desktop.core.errors import BandSyncError
from bandsync_desktop.core.session import Session, cue_phase
from bandsync_desktop.server.app import ServerRunner

from ..helpers.clients import Recorder, expect_ok, expect_refused, joined_phone
from ..helpers.protocol import SNAPSHOT_FIELDS

pytestmark = pytest.mark.asyncio

#: Every bad payload below reaches validation (the rate limit is tested elsewhere).
UNLIMITED = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
CUE_FIELDS = {"id", "text", "atBar", "atBeat", "atServerTime", "holdBars"}

Phones = Callable[..., Awaitable[Recorder]]


@pytest_asyncio.fixture
async def phones(start_server: Any) -> AsyncIterator[tuple[ServerRunner, Phones]]:
    """A band-session server and ``phone(name, session, **join)``: a joined real client."""
    server = await start_server(band_session=True, **UNLIMITED)
    made: list[Recorder] = []

    async def phone(name: str, session: str = "gig", **join: Any) -> Recorder:
        return await joined_phone(server.url, name, made, hears=("cue",), session=session, **join)

    yield server, phone
    for client in made:
        await client.close()


def stored(server: ServerRunner, session_id: str = "gig") -> Session:
    return server.service.sessions[session_id]


async def test_the_leaders_cue_reaches_every_phone_before_its_bar(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    guitar, bass = await phone("Guitar"), await phone("Bass")
    await expect_ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 120})
    await expect_ok(leader, "play", {"sessionId": "gig"})
    await asyncio.sleep(0.5)
    heard = [p.next("cue") for p in (guitar, bass)]
    snapshots = [p.next("snapshot") for p in (guitar, bass)]
    clock = server.service.clock
    sent_at = clock.now_ms()
    ack = await expect_ok(leader, "cue", {"sessionId": "gig", "text": " 2× CHORUS ", "inBars": 1})
    notices = [await asyncio.wait_for(n, 5) for n in heard]
    received_at = clock.now_ms()
    snaps = [await asyncio.wait_for(s, 5) for s in snapshots]
    session = stored(server)
    assert session.cue is not None
    assert ack["version"] == session.version
    wire = session.cue.to_wire()
    for notice, snap in zip(notices, snaps, strict=True):
        assert notice == {
            "sessionId": "gig",
            "cue": wire,
            "reason": "set",
            "serverTimestamp": notice["serverTimestamp"],
        }
        assert sent_at <= notice["serverTimestamp"] <= received_at
        assert snap["cue"] == wire and set(snap["cue"]) == CUE_FIELDS
        assert snap["version"] == session.version
    assert wire["text"] == "2× CHORUS"  # trimmed
    assert wire["holdBars"] == 2
    # heard before its bar: the next downbeat a lead away, plus the one bar asked for
    lead = server.service.rules.lead_ms
    assert wire["atServerTime"] >= sent_at + lead + 2000.0 - 1.0
    assert received_at < wire["atServerTime"]
    # and on a downbeat of the timeline every phone was sent
    timeline = session.timeline
    after = timeline.bar_beat_at(wire["atServerTime"] + 0.01)
    assert (after.bar, after.beat) == (wire["atBar"], 1)
    before = timeline.bar_beat_at(wire["atServerTime"] - 0.01)
    assert before.bar == wire["atBar"] - 1
    assert wire["atBeat"] == (wire["atBar"] - 1) * 4
    assert cue_phase(session.cue, timeline, received_at)[0] == "pending"


async def test_a_followers_cue_is_refused_and_changes_nothing(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    follower = await phone("Follower")
    await expect_ok(leader, "cue", {"sessionId": "gig", "text": "VERSE"})
    before = stored(server).to_dict()
    error = follower.next("error")
    for event, payload in (("cue", {"text": "MINE"}), ("clear_cue", {})):
        await expect_refused(follower, event, {"sessionId": "gig", **payload}, "NOT_LEADER")
    assert (await asyncio.wait_for(error, 5)) == {
        "code": "NOT_LEADER",
        "message": "only the leader may do that",
        "event": "cue",
    }
    # a stranger to the session, and a session that does not exist
    stranger = await phone("Stranger", session="elsewhere")
    await expect_refused(stranger, "cue", {"sessionId": "gig", "text": "X"}, "NOT_IN_SESSION")
    await expect_refused(stranger, "cue", {"sessionId": "nope", "text": "X"}, "SESSION_NOT_FOUND")
    await asyncio.sleep(0.1)
    assert stored(server).to_dict() == before
    assert [p["cue"]["text"] for p in leader.payloads("cue")] == ["VERSE"]


BAD = [
    ({}, "text is required"),
    ({"text": None}, "text must be a string"),
    ({"text": ""}, "text must not be empty"),
    ({"text": "   "}, "text must not be empty"),
    ({"text": "A" * 41}, "at most 40 characters"),
    ({"text": "A" * 100_000}, "at most 40 characters"),
    ({"text": 2}, "text must be a string"),
    ({"text": True}, "text must be a string"),
    ({"text": ["CHORUS"]}, "text must be a string"),
    ({"text": {"$gt": ""}}, "text must be a string"),
    ({"text": {"text": {"text": "deep"}}}, "text must be a string"),
    ({"text": "LINE\nBREAK"}, "one line"),
    ({"text": "BELL\x07"}, "one line"),
    ({"text": "\x1b[2J"}, "one line"),
    ({"text": "A\u2028B"}, "one line"),
    ({"text": "\u202eSUROHC"}, "text-direction"),  # reads "CHORUS" backwards-forwards
    ({"text": "\u2066BREAK\u2069"}, "text-direction"),
    ({"text": "CHO\u200bRUS"}, "invisible"),
    ({"text": "\u2060\u2060"}, "invisible"),
    ({"text": "\ufeffOUTRO"}, "invisible"),
    ({"text": "OK", "inBars": -1}, "inBars must be between 0 and 8"),
    ({"text": "OK", "inBars": 9}, "inBars must be between 0 and 8"),
    ({"text": "OK", "inBars": 2.5}, "inBars must be a whole number"),
    ({"text": "OK", "inBars": True}, "inBars must be a whole number"),
    ({"text": "OK", "inBars": "1"}, "inBars must be a whole number"),
    ({"text": "OK", "inBars": {"n": 1}}, "inBars must be a whole number"),
    ({"text": "OK", "inBars": [1]}, "inBars must be a whole number"),
    ({"text": "OK", "inBars": 1e308}, "inBars must be between 0 and 8"),
    ({"text": "OK", "holdBars": 0}, "holdBars must be between 1 and 16"),
    ({"text": "OK", "holdBars": 17}, "holdBars must be between 1 and 16"),
    ({"text": "OK", "holdBars": False}, "holdBars must be a whole number"),
    ({"text": "OK", "holdBars": -0.5}, "holdBars must be a whole number"),
]


async def test_bad_cues_are_refused_with_a_clear_error_and_change_nothing(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    follower = await phone("Follower")
    await expect_ok(leader, "play", {"sessionId": "gig"})
    await expect_ok(leader, "cue", {"sessionId": "gig", "text": "KEEP ME"})
    await asyncio.sleep(0.1)
    before = stored(server).to_dict()
    follower.clear()
    for payload, words in BAD:
        error = leader.next("error")
        ack = await expect_refused(leader, "cue", {"sessionId": "gig", **payload}, "INVALID_CUE")
        assert words in ack["error"]["message"], (payload, ack)
        assert (await asyncio.wait_for(error, 5)) == ack["error"]
        assert ack["error"]["event"] == "cue"
    # NaN and infinities do not survive JSON as numbers: a client sends them as null
    # (socket.io's encoder) or as a string; both are refused above. Not an object at all:
    for raw in (["cue"], "CHORUS", 42, None):
        ack = await leader.call("cue", raw)
        assert ack["ok"] is False, raw
        assert ack["error"]["code"] in ("INVALID_PAYLOAD", "INVALID_SESSION_ID", "INVALID_CUE")
    await asyncio.sleep(0.1)
    assert stored(server).to_dict() == before
    assert follower.payloads("cue") == [] and follower.payloads("snapshot") == []
    # the server still serves: a good cue goes through
    await expect_ok(leader, "cue", {"sessionId": "gig", "text": "OUTRO"})
    assert stored(server).cue is not None and stored(server).cue.text == "OUTRO"


async def test_clear_cue_and_what_else_takes_a_cue_off(phones) -> None:
    server, phone = phones
    leader = await phone("Lead", role="leader")
    follower = await phone("Follower")
    await expect_ok(leader, "play", {"sessionId": "gig"})
    for event, payload, reason in (
        ("clear_cue", {}, "cleared"),
        ("stop", {}, "stop"),
        ("seek", {"position": 1000}, "seek"),
        ("set_song", {"song": {"title": "Next one"}}, "song"),
    ):
        await expect_ok(leader, "play", {"sessionId": "gig"})
        await expect_ok(leader, "cue", {"sessionId": "gig", "text": "BRIDGE", "inBars": 4})
        cleared = follower.next("cue")
        snapshot = follower.next("snapshot")
        await expect_ok(leader, event, {"sessionId": "gig", **payload})
        notice = await asyncio.wait_for(cleared, 5)
        assert notice["cue"] is None and notice["reason"] == reason, (event, notice)
        assert (await asyncio.wait_for(snapshot, 5))["cue"] is None
        assert stored(server).cue is None
    # nothing to clear: accepted, nothing published
    version = stored(server).version
    follower.clear()
    await expect_ok(leader, "clear_cue", {"sessionId": "gig"})
    await asyncio.sleep(0.1)
    assert stored(server).version == version and follower.payloads("snapshot") == []


async def test_the_console_cues_the_band_through_the_same_table(phones) -> None:
    server, phone = phones
    drums = await phone("Drums", session="band")
    heard = drums.next("cue")
    host = server.actors.host
    session = await host.submit("cue", {"text": "EYES ON ME", "holdBars": 4})
    notice = await asyncio.wait_for(heard, 5)
    assert session.cue is not None
    assert notice["cue"] == session.cue.to_wire() and notice["cue"]["holdBars"] == 4
    # stopped: it shows at once, on the bar the band stands in
    assert cue_phase(session.cue, session.timeline, host.now_ms()) == ("showing", 4)
    with pytest.raises(BandSyncError) as refused:
        await host.submit("cue", {"text": "\u202eEM NO SEYE"})
    assert refused.value.code == "INVALID_CUE"
    assert stored(server, "band").cue == session.cue


async def test_legacy_clients_are_unaffected(phones) -> None:
    """A client of the original server: no capabilities, listens to the seeds' events."""
    server, phone = phones
    leader = await phone("Lead", role="leader")
    legacy = Recorder(server.url, "legacy")  # no handler for 'cue': socket.io drops it
    await legacy.connect()
    try:
        snap = legacy.next("snapshot")
        await expect_ok(legacy, "join_session", {"sessionId": "gig", "displayName": "Old"})
        await asyncio.wait_for(snap, 5)
        await expect_ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 150, "quantize": "now"})
        await expect_ok(leader, "play", {"sessionId": "gig"})
        await asyncio.sleep(0.3)
        snap = legacy.next("snapshot")
        await expect_ok(leader, "cue", {"sessionId": "gig", "text": "LAST TIME"})
        data = await asyncio.wait_for(snap, 5)
        assert set(data) >= SNAPSHOT_FIELDS
        assert (data["tempo"], data["isPlaying"]) == (150, True)
        await asyncio.sleep(0.5)
        ticks = legacy.payloads("scroll_tick")
        assert len(ticks) >= 3
        positions = [t["positionMs"] for t in ticks]
        assert positions == sorted(positions) and all(t["tempoBpm"] == 150 for t in ticks)
        # its own events still work as before
        response = legacy.next("sync_response")
        await legacy.emit("sync_request", {"sessionId": "gig"})
        sync = await asyncio.wait_for(response, 5)
        assert sync["isPlaying"] is True and math.isfinite(sync["positionMs"])
        # the seeds' flow: plain emits, then the next snapshot
        snap = legacy.next("snapshot")
        await leader.emit("pause", {"sessionId": "gig"})
        assert (await asyncio.wait_for(snap, 5))["isPlaying"] is False
        assert legacy.payloads("error") == []
    finally:
        await legacy.close()
