"""Session rules: membership, seniority, leadership in open and protected sessions, commands."""

from __future__ import annotations

import pytest

from bandsync_desktop.core.errors import (
    ErrorCode,
    LeaderKeyRequired,
    MemberNotFound,
    NotInSession,
    NotLeader,
    SessionFull,
    ValidationError,
)
from bandsync_desktop.core.session import CONSOLE, Rules, Session, Song, member_id

from ..helpers.protocol import SNAPSHOT_FIELDS

T0 = 1_000_000.0
RULES = Rules(leader_grace_ms=10_000, member_memory_ms=60_000, max_members=4, lead_ms=200)


def join(s: Session, cid: str, now: float = T0, **kw):
    kw.setdefault("display_name", cid.upper())
    kw.setdefault("role", None)
    kw.setdefault("key", None)
    kw.setdefault("device", None)
    return s.join(now, f"sock-{cid}-{now}", client_id=cid, rules=RULES, **kw)


def open_session() -> Session:
    return Session.create("gig", T0)


def test_joining_never_makes_a_leader_by_itself():
    s = open_session()
    member, replaced, notices = join(s, "a")
    assert s.leader_id is None
    assert replaced is None
    assert [n[0] for n in notices] == ["user_joined"]
    assert member.display_name == "A"


def test_missing_name_gets_a_readable_default_and_blank_is_refused():
    s = open_session()
    member, _, _ = join(s, "a", display_name=None)
    assert member.display_name == "Player 1"
    with pytest.raises(ValidationError) as err:
        join(s, "b", display_name="   ")
    assert err.value.code == ErrorCode.INVALID_NAME
    assert "b" not in s.members


def test_version_increases_with_every_accepted_change_only():
    s = open_session()
    v = s.version
    join(s, "a")
    assert s.version == v + 1
    with pytest.raises(NotLeader):
        s.set_tempo(T0, "a", 100, "beat", RULES)
    assert s.version == v + 1


def test_open_session_takeover_and_role_changed():
    s = open_session()
    join(s, "a")
    join(s, "b", T0 + 1)
    assert s.set_role(T0 + 2, "a", "leader", None)[0][0] == "role_changed"
    notices = s.set_role(T0 + 3, "b", "leader", None)
    assert s.leader_id == "b"
    event, payload = notices[0]
    assert event == "role_changed"
    assert payload["previousLeaderMemberId"] == member_id("a")
    assert s.role_of("a") == "follower"


def test_join_as_leader_in_an_open_session():
    s = open_session()
    join(s, "a", role="leader")
    assert s.leader_id == "a"


def test_protected_session_needs_the_key_or_a_hand_over():
    s = Session.create("band", T0, protected=True)
    key = s.leader_key
    assert key
    join(s, "a")
    join(s, "b", T0 + 1)
    with pytest.raises(LeaderKeyRequired):
        s.set_role(T0 + 2, "b", "leader", None)
    with pytest.raises(LeaderKeyRequired):
        s.set_role(T0 + 2, "b", "leader", "wrong-key")
    with pytest.raises(LeaderKeyRequired):
        join(s, "c", role="leader")
    assert "c" not in s.members  # a refused join changes nothing
    s.set_role(T0 + 3, "a", "leader", key)
    assert s.leader_id == "a"
    s.hand_over(T0 + 4, "a", member_id("b"))
    assert s.leader_id == "b"
    with pytest.raises(NotLeader):
        s.hand_over(T0 + 5, "a", member_id("a"))


def test_console_hosted_session_is_led_by_the_console():
    s = Session.create("band", T0, console_hosted=True)
    assert s.protected and s.leader_id == CONSOLE
    join(s, "a")
    s.set_tempo(T0, CONSOLE, 90, "now", RULES)
    s.hand_over(T0 + 1, CONSOLE, member_id("a"))
    assert s.leader_id == "a"
    s.hand_over(T0 + 2, CONSOLE, CONSOLE)
    assert s.leader_id == CONSOLE
    with pytest.raises(NotLeader):
        s.hand_over(T0 + 3, "a", CONSOLE)


def test_leader_disconnect_pauses_and_holds_the_seat():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b", T0 + 1)
    s.play(T0 + 10, "a", RULES)
    notices = s.leave(T0 + 5_000, "a", disconnected=True)
    events = [n[0] for n in notices]
    assert events == ["user_left", "pause", "role_changed"]
    assert s.leader_id is None
    assert not s.timeline.latest.playing
    assert s.timeline.position_at(T0 + 9_000) == pytest.approx(5_000 - 210)
    assert s.snapshot(T0 + 5_001)["leaderSocketId"] is None
    # within the grace period nobody is elected
    assert s.housekeeping(T0 + 14_000, RULES) == []
    # the same clientId comes back: it leads again, with its seniority
    member, _, notices = join(s, "a", T0 + 14_500)
    assert s.leader_id == "a"
    assert member.joined_at == T0
    assert ("role_changed", notices[-1][1])[0] == "role_changed"
    assert notices[-1][1]["reason"] == "returned"


def test_after_the_grace_the_earliest_joined_member_is_elected():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "c", T0 + 2)
    join(s, "b", T0 + 1)
    s.leave(T0 + 100, "a", disconnected=True)
    notices = s.housekeeping(T0 + 100 + 10_000, RULES)
    assert s.leader_id == "b"
    assert notices[0][1]["reason"] == "elected"
    # the old leader returning later is a follower
    join(s, "a", T0 + 20_000)
    assert s.leader_id == "b"


def test_members_may_claim_an_open_session_during_the_vacancy():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b", T0 + 1)
    s.leave(T0 + 100, "a", disconnected=True)
    s.set_role(T0 + 200, "b", "leader", None)
    assert s.leader_id == "b"
    assert s.housekeeping(T0 + 20_000, RULES) == []


def test_protected_vacancy_returns_to_the_console_or_waits_for_the_key():
    hosted = Session.create("band", T0, console_hosted=True)
    join(hosted, "a")
    hosted.hand_over(T0, CONSOLE, member_id("a"))
    hosted.leave(T0 + 1, "a", disconnected=True)
    hosted.housekeeping(T0 + 10_001, RULES)
    assert hosted.leader_id == CONSOLE

    s = Session.create("p", T0, protected=True)
    join(s, "a", role="leader", key=s.leader_key)
    join(s, "b", T0 + 1)
    s.leave(T0 + 2, "a", disconnected=True)
    s.housekeeping(T0 + 20_000, RULES)
    assert s.leader_id is None  # no keyless member is given a protected session
    join(s, "a", T0 + 30_000)
    assert s.leader_id is None  # grace over: coming back is not enough any more
    s.set_role(T0 + 30_001, "a", "leader", s.leader_key)
    assert s.leader_id == "a"


def test_explicit_leave_by_the_leader_elects_at_once():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b", T0 + 1)
    s.leave(T0 + 5, "a", disconnected=False)
    assert s.leader_id == "b"
    assert s.held_leader_id is None


def test_reconnect_with_same_client_id_keeps_place_and_replaces_socket():
    s = open_session()
    join(s, "a")
    join(s, "b", T0 + 1)
    member, replaced, notices = s.join(
        T0 + 50,
        "new-socket",
        client_id="a",
        display_name=None,
        role=None,
        key=None,
        device=None,
        rules=RULES,
    )
    assert replaced == f"sock-a-{T0}"
    assert member.display_name == "A"  # kept when not sent again
    assert member.joined_at == T0
    assert notices == []
    assert s.snapshot(T0 + 51)["members"][0]["socketId"] == "new-socket"


def test_departed_members_keep_seniority_until_forgotten():
    s = open_session()
    join(s, "a")
    s.leave(T0 + 10, "a", disconnected=True)
    s.housekeeping(T0 + 10 + 59_000, RULES)
    member, _, _ = join(s, "a", T0 + 69_500)
    assert member.joined_at == T0
    s.leave(T0 + 70_000, "a", disconnected=True)
    s.housekeeping(T0 + 70_000 + 60_000, RULES)
    assert "a" not in s.away
    member, _, _ = join(s, "a", T0 + 200_000)
    assert member.joined_at == T0 + 200_000


def test_session_full():
    s = open_session()
    for i in range(4):
        join(s, f"m{i}")
    with pytest.raises(SessionFull):
        join(s, "m4")
    join(s, "m0", T0 + 1)  # re-attaching an existing member is not a new seat


def test_leader_only_commands_refused_for_followers_and_strangers():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b")
    before = s.to_dict()
    for call in (
        lambda: s.set_tempo(T0, "b", 100, "beat", RULES),
        lambda: s.play(T0, "b", RULES),
        lambda: s.pause(T0, "b"),
        lambda: s.seek(T0, "b", 1000, RULES),
        lambda: s.set_message(T0, "b", "hi"),
        lambda: s.set_meter(T0, "b", 3, 4, "bar", RULES),
        lambda: s.set_count_in(T0, "b", 1),
        lambda: s.set_song(T0, "b", Song("x"), None, None, None, RULES),
        lambda: s.remove(T0, "b", member_id("a")),
        lambda: s.hand_over(T0, "b", member_id("b")),
    ):
        with pytest.raises(NotLeader):
            call()
    with pytest.raises(NotInSession):
        s.set_tempo(T0, "stranger", 100, "beat", RULES)
    assert s.to_dict() == before


def test_transport_commands_schedule_ahead_on_the_beat():
    s = open_session()
    join(s, "a", role="leader")
    s.play(T0, "a", RULES)
    assert s.timeline.latest.start_ms == T0 + 200
    s.set_tempo(T0 + 1_100, "a", 60, "beat", RULES)
    change = s.timeline.latest
    assert change.start_ms == pytest.approx(T0 + 1_700)  # next beat after now + lead
    assert change.tempo_bpm == 60
    notices = s.pause(T0 + 5_000, "a")
    assert notices[0][0] == "pause"
    assert s.timeline.position_at(T0 + 9_999) == pytest.approx(4_800)


def test_play_with_count_in_and_stop():
    s = open_session()
    join(s, "a", role="leader")
    s.set_count_in(T0, "a", 2)
    notices = s.play(T0, "a", RULES)
    assert notices[0][1]["countInBars"] == 2
    assert notices[0][1]["downbeatAt"] == pytest.approx(T0 + 200 + 8 * 500)
    s.stop(T0 + 10_000, "a")
    assert s.timeline.position_at(T0 + 11_000) == 0
    assert not s.timeline.latest.playing
    assert s.play(T0 + 12_000, "a", RULES, count_in_bars=0)[0][1]["countInBars"] == 0


def test_play_twice_is_idempotent():
    s = open_session()
    join(s, "a", role="leader")
    s.play(T0, "a", RULES)
    v = s.version
    assert s.play(T0 + 10, "a", RULES) == []
    assert s.version == v


def test_set_song_sets_tempo_meter_and_chart_from_the_top():
    s = open_session()
    join(s, "a", role="leader")
    s.play(T0, "a", RULES)
    notices = s.set_song(T0 + 3_000, "a", Song("Blue", "Am | G"), 96.0, (3, 4), 1, RULES)
    assert [n[0] for n in notices] == ["pause", "song_changed"]
    latest = s.timeline.latest
    assert (latest.tempo_bpm, latest.beats_per_bar, latest.playing) == (96.0, 3, False)
    assert s.timeline.position_at(T0 + 9_000) == 0
    assert s.count_in_bars == 1
    assert s.snapshot(T0 + 9_000)["song"] == {"title": "Blue", "chart": "Am | G"}


def test_remove_member():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b")
    member, notices = s.remove(T0, "a", member_id("b"))
    assert [n[0] for n in notices] == ["user_left"]
    assert member.client_id == "b"
    assert "b" not in s.members and "b" not in s.away
    with pytest.raises(MemberNotFound):
        s.remove(T0, "a", "nobody")


def test_idle_and_expiry_rules():
    s = open_session()
    assert s.is_idle(T0 + 30 * 60_000, 30 * 60_000)
    join(s, "a")
    assert not s.is_idle(T0 + 99 * 60_000, 30 * 60_000)
    assert not Session.create("band", T0, console_hosted=True).is_idle(T0 + 1e9, 1)


def test_snapshot_has_every_field_and_no_key():
    s = Session.create("band", T0, protected=True)
    join(s, "a", role="leader", key=s.leader_key)
    snap = s.snapshot(T0 + 1)
    assert set(snap) >= SNAPSHOT_FIELDS, SNAPSHOT_FIELDS - set(snap)
    assert s.leader_key not in repr(snap)
    assert {"socketId", "displayName", "role", "joinedAt"} <= set(snap["members"][0])


def test_stored_form_round_trips():
    s = Session.create("band", T0, protected=True)
    join(s, "a", role="leader", key=s.leader_key)
    join(s, "b")
    s.leave(T0 + 5, "b", disconnected=True)
    s.set_song(T0 + 6, "a", Song("Song", "chart"), 100, (6, 8), 2, RULES)
    s.play(T0 + 7, "a", RULES)
    again = Session.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    assert again.timeline == s.timeline


def test_housekeeping_due_matches_what_housekeeping_does():
    s = open_session()
    join(s, "a", role="leader")
    s.leave(T0 + 1, "a", disconnected=True)
    # an empty open session: nothing to elect, nothing due (the seat stays held)
    assert not s.housekeeping_due(T0 + 20_000, RULES)
    assert s.housekeeping(T0 + 20_000, RULES) == []
    join(s, "b", T0 + 20_001)
    assert s.housekeeping_due(T0 + 20_002, RULES)
    assert s.housekeeping(T0 + 20_002, RULES)
    assert s.leader_id == "b"
    assert not s.housekeeping_due(T0 + 20_003, RULES)
    assert s.housekeeping_due(T0 + 1 + RULES.member_memory_ms, RULES)  # forget "a"
    s.housekeeping(T0 + 1 + RULES.member_memory_ms, RULES)
    assert not s.housekeeping_due(T0 + 2 + RULES.member_memory_ms, RULES)

    p = Session.create("p", T0, protected=True)
    join(p, "a", role="leader", key=p.leader_key)
    p.leave(T0 + 1, "a", disconnected=True)
    assert not p.housekeeping_due(T0 + 5_000, RULES)
    assert p.housekeeping_due(T0 + 10_001, RULES)
    p.housekeeping(T0 + 10_001, RULES)
    assert p.held_leader_id is None
    assert not p.housekeeping_due(T0 + 10_002, RULES)


def test_a_copy_is_independent_and_equal_in_stored_form():
    s = open_session()
    join(s, "a", role="leader")
    join(s, "b")
    s.leave(T0 + 5, "b", disconnected=True)
    join(s, "c")
    s.set_song(T0 + 6, "a", Song("Tune", "| C | G |"), 100.0, (3, 4), 1, RULES)
    copy = s.copy()
    assert copy.to_dict() == s.to_dict()
    copy.members["c"].display_name = "changed"
    copy.away["b"].left_at = 0.0
    copy.set_tempo(T0 + 7, "a", 140.0, "now", RULES)
    assert s.members["c"].display_name != "changed"
    assert s.away["b"].left_at == T0 + 5
    assert s.timeline.latest.tempo_bpm == 100.0 and s.version != copy.version
