"""The command table: each command parses a protocol payload once and binds its rule."""

from __future__ import annotations

import pytest

from bandsync_desktop.core.commands import COMMANDS
from bandsync_desktop.core.errors import BandSyncError, ErrorCode, NotLeader
from bandsync_desktop.core.session import CONSOLE, Rules, Session, Song, member_id
from bandsync_desktop.core.song import Section, SongMap

from .bands import joined

RULES = Rules()
T0 = 1_000_000.0

GOOD = {
    "set_tempo": {"tempo": 133, "quantize": "now"},
    "set_meter": {"beatsPerBar": 3, "beatUnit": 4},
    "set_count_in": {"bars": 2},
    "play": {"countInBars": 1},
    "pause": {},
    "stop": {},
    "seek": {"position": 5000},
    "update_message": {"message": "hi"},
    "set_song": {"song": {"title": "T", "tempo": 90, "beatsPerBar": 6, "beatUnit": 8}},
    "hand_over": {"to": member_id("b")},
    "cue": {"text": "BREAK"},
    "clear_cue": {},
    "jump": {"section": "Chorus", "at": "section"},
    "vamp": {"on": True},
    "end": {"at": "bar"},
    "set_setlist": {"setlist": {"name": "Fri", "songs": [{"title": "A"}], "current": 0}},
    "segue": {"song": {"title": "Next", "tempo": 100}, "at": "bar"},
}
BAD = {
    "set_tempo": ({"tempo": 300}, ErrorCode.INVALID_TEMPO),
    "set_meter": ({"beatsPerBar": 17}, ErrorCode.INVALID_METER),
    "set_count_in": ({"bars": 9}, ErrorCode.INVALID_COUNT_IN),
    "play": ({"countInBars": -1}, ErrorCode.INVALID_COUNT_IN),
    "seek": ({"position": -1}, ErrorCode.INVALID_POSITION),
    "update_message": ({}, ErrorCode.INVALID_MESSAGE),
    "set_song": ({"song": {"title": ""}}, ErrorCode.INVALID_SONG),
    "hand_over": ({"to": ""}, ErrorCode.INVALID_PAYLOAD),
    "cue": ({"text": ""}, ErrorCode.INVALID_CUE),
    "jump": ({"section": None}, ErrorCode.INVALID_CALL),
    "vamp": ({"on": "yes"}, ErrorCode.INVALID_CALL),
    "end": ({"at": "later"}, ErrorCode.INVALID_CALL),
    "set_setlist": ({"setlist": {"songs": []}}, ErrorCode.INVALID_SETLIST),
    "segue": ({"song": {"title": "Next"}, "at": "later"}, ErrorCode.INVALID_CALL),
}
#: A song with a form is on the stands (calls need sections), playing for an end.
FORM = Song("F", "", SongMap([Section("Verse", 4, 120.0), Section("Chorus", 4, 120.0)]))


def band() -> Session:
    s = Session.create("gig", T0)
    for cid in ("a", "b"):
        joined(s, T0, cid, cid, RULES)
    s.song = FORM
    s.set_role(T0, "a", "leader", None)
    return s


def test_every_leader_command_is_in_the_table_once():
    assert sorted(COMMANDS) == sorted(GOOD)
    assert set(BAD) <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_valid_payload_binds_the_rule_for_the_leader_and_the_console(name):
    for actor in ("a", CONSOLE):
        s = band()
        if name in ("end", "segue"):
            s.play(T0, CONSOLE, RULES)
        before = s.version
        COMMANDS[name].parse(GOOD[name], RULES)(s, actor, T0 + 1)
        # (pause while stopped, clear_cue with no cue: nothing to change)
        assert s.version > before or name in ("pause", "clear_cue")


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_follower_is_refused_by_the_same_rule(name):
    s = band()
    before = s.to_dict()
    action = COMMANDS[name].parse(GOOD[name], RULES)
    with pytest.raises(NotLeader):
        action(s, "b", T0 + 1)
    assert s.to_dict() == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_payload_is_refused_before_any_rule(name):
    payload, code = BAD[name]
    with pytest.raises(BandSyncError) as refused:
        COMMANDS[name].parse(payload, RULES)
    assert refused.value.code == code
