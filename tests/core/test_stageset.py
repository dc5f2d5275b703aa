"""The set on the phones: ``set_setlist`` checks the whole set before it changes anything,
the leader's (or the console's) only; the set is in every snapshot, survives storing and a
console restart, and is independent of the song on the stands."""

from __future__ import annotations

import pytest

from bandsync_desktop.core.commands import COMMANDS
from bandsync_desktop.core.errors import BandSyncError, ErrorCode, NotLeader
from bandsync_desktop.core.session import CONSOLE, Rules, Session, carried_over
from bandsync_desktop.core.stageset import SET_SONGS_MAX, StageSet, StageSong

from .bands import console_band

T0 = 1_700_000_000_000.0
RULES = Rules(lead_ms=200.0)

SET = {
    "name": "Friday at the Rose",
    "current": 1,
    "songs": [
        {"title": "Opener", "tempo": 128, "beatsPerBar": 4, "beatUnit": 4, "lengthMs": 200_000},
        {"title": "Slow one", "tempo": 72, "beatsPerBar": 6, "beatUnit": 8},
        {"title": "Closer"},
    ],
}


def set_setlist(s: Session, payload: dict, actor: str = CONSOLE, now: float = T0 + 1) -> list:
    return COMMANDS["set_setlist"].parse(payload, RULES)(s, actor, now)


def test_the_set_reaches_every_phone_in_the_notice_and_the_snapshot():
    s = console_band(T0, RULES)
    before = s.version
    notices = set_setlist(s, {"setlist": SET})
    assert s.version == before + 1
    wire = {
        "name": "Friday at the Rose",
        "current": 1,
        "songs": [
            {
                "title": "Opener",
                "tempo": 128.0,
                "beatsPerBar": 4,
                "beatUnit": 4,
                "lengthMs": 200_000.0,
            },
            {"title": "Slow one", "tempo": 72.0, "beatsPerBar": 6, "beatUnit": 8, "lengthMs": None},
            {
                "title": "Closer",
                "tempo": None,
                "beatsPerBar": None,
                "beatUnit": None,
                "lengthMs": None,
            },
        ],
    }
    assert notices == [("setlist", {"sessionId": "band", "setlist": wire})]
    assert s.snapshot(T0 + 2)["setlist"] == wire
    assert s.setlist is not None and s.setlist.next == StageSong("Closer")
    assert s.song is None  # the set says what comes; the stands change only by set_song


def test_the_set_comes_off_with_null_and_is_kept_by_storing_and_a_restart():
    s = console_band(T0, RULES)
    set_setlist(s, {"setlist": SET})
    stored = Session.from_dict(s.to_dict())
    assert stored.setlist == s.setlist
    assert carried_over(s, T0 + 60_000).setlist == s.setlist
    set_setlist(s, {"setlist": None})
    assert s.setlist is None and s.snapshot(T0 + 2)["setlist"] is None
    assert Session.from_dict(s.to_dict()).setlist is None


def test_a_follower_cannot_set_it_and_nothing_changes():
    s = console_band(T0, RULES)
    set_setlist(s, {"setlist": SET})
    before = s.to_dict()
    with pytest.raises(NotLeader):
        set_setlist(s, {"setlist": None}, actor="b")
    assert s.to_dict() == before


def test_next_is_the_first_song_while_none_is_on_the_stands_and_none_after_the_last():
    songs = (StageSong("A"), StageSong("B"))
    assert StageSet("", songs, None).next == StageSong("A")
    assert StageSet("", songs, 0).next == StageSong("B")
    assert StageSet("", songs, 1).next is None


def bad_sets() -> list[tuple[object, str]]:
    song = {"title": "A"}
    return [
        ({}, "setlist is required"),
        ({"setlist": "Friday"}, "setlist must be an object"),
        ({"setlist": {"songs": []}}, "1 to 60 songs"),
        ({"setlist": {"songs": "ABC"}}, "songs must be a list"),
        ({"setlist": {"songs": [song] * (SET_SONGS_MAX + 1)}}, "1 to 60 songs"),
        ({"setlist": {"songs": [song, {"title": ""}]}}, "song 2: title must not be empty"),
        ({"setlist": {"songs": [song, {"title": "B\x00"}]}}, "song 2: title must not contain"),
        ({"setlist": {"songs": [{"title": "A", "tempo": 900}]}}, "song 1: tempo"),
        ({"setlist": {"songs": [{"title": "A", "beatUnit": 4}]}}, "song 1: beatsPerBar"),
        ({"setlist": {"songs": [{"title": "A", "lengthMs": 0}]}}, "song 1: lengthMs"),
        ({"setlist": {"songs": [{"title": "A", "lengthMs": float("nan")}]}}, "song 1: lengthMs"),
        ({"setlist": {"songs": [{"title": "A", "lengthMs": True}]}}, "song 1: lengthMs"),
        ({"setlist": {"songs": [song], "current": 1}}, "current must be null or 0 to 0"),
        ({"setlist": {"songs": [song], "current": True}}, "current must be null"),
        ({"setlist": {"songs": [song], "current": -1}}, "current must be null"),
        ({"setlist": {"songs": [song], "name": "x" * 121}}, "name: title must be at most"),
        ({"setlist": {"songs": [song, ["A"]]}}, "song 2: payload must be a JSON object"),
    ]


@pytest.mark.parametrize(("payload", "says"), bad_sets())
def test_a_bad_set_is_refused_whole_with_a_clear_message(payload, says):
    s = console_band(T0, RULES)
    set_setlist(s, {"setlist": SET})
    before = s.to_dict()
    with pytest.raises(BandSyncError) as refused:
        COMMANDS["set_setlist"].parse(payload, RULES)
    assert refused.value.code == ErrorCode.INVALID_SETLIST
    assert says in refused.value.message
    assert s.to_dict() == before
