"""Stage cues: a short call that lands on a bar on every phone, held for some bars.

Plain values and a fake clock (times are numbers the test chooses): the cue's bar is the next
downbeat at least the scheduling lead away plus ``inBars``, it holds ``holdBars`` bars, it keeps
its bar through tempo and meter changes, and a new song, a stop or a seek take it off.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandsync_desktop.core import validation
from bandsync_desktop.core.commands import COMMANDS
from bandsync_desktop.core.errors import BandSyncError, ErrorCode, NotInSession, NotLeader
from bandsync_desktop.core.session import (
    CONSOLE,
    Cue,
    Rules,
    Session,
    Song,
    carried_over,
    cue_phase,
)

from .bands import console_band

T0 = 1_700_000_000_000.0  # epoch milliseconds, as the server clock reads
RULES = Rules(lead_ms=200.0)
BAR_MS = 2000.0  # 120 BPM in 4/4


def band(tempo: float = 120.0) -> Session:
    """The console's band session with one follower, ``b``, at ``tempo`` in 4/4."""
    return console_band(T0, RULES, tempo)


def playing(tempo: float = 120.0) -> tuple[Session, float]:
    """A band playing from the top with no count-in; returns it and its downbeat (beat 0)."""
    s = band(tempo)
    s.play(T0, CONSOLE, RULES, 0)
    return s, T0 + RULES.lead_ms


def cue(s: Session, now: float, text: str = "CHORUS", **payload: object) -> list:
    action = COMMANDS["cue"].parse({"text": text, **payload}, RULES)
    return action(s, CONSOLE, now)


def test_the_cue_commands_are_in_the_one_table() -> None:
    assert {"cue", "clear_cue"} <= set(COMMANDS)
    for name in ("cue", "clear_cue"):
        assert COMMANDS[name].name == name and COMMANDS[name].summary


def test_a_cue_lands_on_the_next_downbeat_at_least_the_lead_away() -> None:
    for offset in (0.0, 1.0, 900.0, 1799.0, 1800.0, 1801.0, 1999.0, 2000.0, 5321.5):
        s, downbeat = playing()
        now = downbeat + offset
        notices = cue(s, now)
        landed = s.cue
        assert landed is not None
        assert landed.at_ms >= now + RULES.lead_ms - 1e-6, offset
        assert landed.at_ms - (now + RULES.lead_ms) < BAR_MS, offset  # the first such downbeat
        assert landed.at_beat == (landed.bar - 1) * 4
        assert math.isclose(landed.at_ms, downbeat + landed.at_beat * 500.0, abs_tol=1e-3)
        assert s.timeline.bar_beat_at(landed.at_ms + 1e-3).beat == 1  # a downbeat
        assert s.timeline.bar_beat_at(landed.at_ms + 1e-3).bar == landed.bar
        assert notices == [
            (
                "cue",
                {
                    "sessionId": "band",
                    "cue": landed.to_wire(),
                    "reason": "set",
                    "serverTimestamp": now,
                },
            )
        ]
    # worked out by hand: at beat 2 (bar 1) the lead ends at beat 2.4 -> bar 2; at beat 3.8
    # the lead ends at beat 4.2, past bar 2's downbeat -> bar 3
    s, downbeat = playing()
    cue(s, downbeat + 1000.0)
    assert s.cue is not None and (s.cue.bar, s.cue.at_ms) == (2, downbeat + 2000.0)
    s, downbeat = playing()
    cue(s, downbeat + 1900.0)
    assert s.cue is not None and (s.cue.bar, s.cue.at_ms) == (3, downbeat + 4000.0)


def test_in_bars_and_hold_bars() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 1000.0, inBars=3, holdBars=4)
    landed = s.cue
    assert landed is not None
    assert (landed.bar, landed.at_beat, landed.hold_bars) == (5, 16.0, 4)
    assert landed.at_ms == pytest.approx(downbeat + 4 * BAR_MS, abs=1e-3)
    assert landed.until_bar == 9
    defaults = COMMANDS["cue"].parse({"text": "x"}, RULES)
    s2, d2 = playing()
    defaults(s2, CONSOLE, d2)
    assert s2.cue is not None and s2.cue.hold_bars == validation.CUE_HOLD_BARS_DEFAULT == 2


def test_the_phase_turns_exactly_on_the_bar_and_off_after_the_hold() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 1000.0, inBars=1, holdBars=2)  # bar 3, off at bar 5
    landed = s.cue
    assert landed is not None and landed.bar == 3
    on, off = downbeat + 2 * BAR_MS, downbeat + 4 * BAR_MS
    assert cue_phase(landed, s.timeline, downbeat + 1000.0) == ("pending", 2)
    assert cue_phase(landed, s.timeline, downbeat + BAR_MS + 1.0) == ("pending", 1)
    assert cue_phase(landed, s.timeline, on - 0.01) == ("pending", 1)
    assert cue_phase(landed, s.timeline, on + 0.01) == ("showing", 2)
    assert cue_phase(landed, s.timeline, off - 0.01) == ("showing", 1)
    assert cue_phase(landed, s.timeline, off + 0.01) == ("over", 0)


def test_while_stopped_a_cue_shows_at_once_and_holds_until_played() -> None:
    s = band()
    cue(s, T0 + 50.0, "BREAK")
    landed = s.cue
    assert landed is not None
    assert (landed.bar, landed.at_beat, landed.at_ms) == (1, 0.0, T0 + 50.0)
    for later in (0.0, 60_000.0, 3_600_000.0):  # stopped: no bar passes, it stays
        assert cue_phase(landed, s.timeline, T0 + 50.0 + later)[0] == "showing"
    # paused mid-bar: the bar it stands in
    s, downbeat = playing()
    s.pause(downbeat + 5 * BAR_MS + 700.0, CONSOLE)
    cue(s, downbeat + 5 * BAR_MS + 900.0, "BREAK")
    assert s.cue is not None and (s.cue.bar, s.cue.at_beat) == (6, 20.0)
    assert cue_phase(s.cue, s.timeline, downbeat + 10 * BAR_MS)[0] == "showing"
    # played from there, it holds its bars and goes
    s.play(downbeat + 10 * BAR_MS, CONSOLE, RULES, 0)
    resumed = downbeat + 10 * BAR_MS + RULES.lead_ms  # at beat 21.4 (bar 6)
    assert cue_phase(s.cue, s.timeline, resumed + 1.0)[0] == "showing"
    off = resumed + (28.0 - 21.4) * 500.0  # bar 8's downbeat
    assert cue_phase(s.cue, s.timeline, off - 0.01)[0] == "showing"
    assert cue_phase(s.cue, s.timeline, off + 0.01)[0] == "over"
    # stopped with inBars: that many bars after the one it stands in
    s = band()
    cue(s, T0 + 50.0, inBars=2)
    assert s.cue is not None and s.cue.bar == 3
    assert cue_phase(s.cue, s.timeline, T0 + 100.0) == ("pending", 2)


def test_a_tempo_change_before_the_bar_keeps_the_bar_and_moves_the_instant() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, inBars=2)  # bar 4 (beat 12), at 6 s at 120 BPM
    landed = s.cue
    assert landed is not None and landed.bar == 4
    assert landed.at_ms == pytest.approx(downbeat + 6000.0, abs=1e-3)
    s.set_tempo(downbeat + 1000.0, CONSOLE, 60.0, "beat", RULES)  # from beat 3 on, 1 s a beat
    moved = s.cue
    assert moved is not None
    assert (moved.id, moved.bar, moved.at_beat) == (landed.id, 4, 12.0)
    expected = downbeat + 1500.0 + (12 - 3) * 1000.0  # beat 3 at 1.5 s, then 1 s a beat
    assert moved.at_ms == pytest.approx(expected, abs=1e-3)
    assert cue_phase(moved, s.timeline, expected - 0.01) == ("pending", 1)
    assert cue_phase(moved, s.timeline, expected + 0.01) == ("showing", 2)
    assert s.snapshot(downbeat + 2000.0)["cue"]["atServerTime"] == moved.at_ms


def test_a_meter_change_before_the_bar_keeps_the_bar() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, inBars=3)  # bar 5 in 4/4: beat 16
    assert s.cue is not None and (s.cue.bar, s.cue.at_beat) == (5, 16.0)
    s.set_meter(downbeat + 500.0, CONSOLE, 3, 4, "bar", RULES)  # 3/4 from bar 2 on
    moved = s.cue
    assert moved is not None
    # bar 2 starts at 2 s, then 3 beats (1.5 s) a bar: bar 5 at 2 + 3 * 1.5 s
    assert (moved.bar, moved.at_beat) == (5, 12.0)
    assert moved.at_ms == pytest.approx(downbeat + 6500.0, abs=1e-3)
    assert s.timeline.bar_beat_at(moved.at_ms + 0.01).bar == 5
    assert cue_phase(moved, s.timeline, moved.at_ms - 0.01)[0] == "pending"
    assert cue_phase(moved, s.timeline, moved.at_ms + 0.01)[0] == "showing"
    # its hold is counted in the new meter's bars: off at bar 7
    assert cue_phase(moved, s.timeline, downbeat + 2000.0 + 5 * 1500.0 - 0.01)[0] == "showing"
    assert cue_phase(moved, s.timeline, downbeat + 2000.0 + 5 * 1500.0 + 0.01)[0] == "over"


def test_a_cue_that_landed_keeps_its_instant_through_a_tempo_change() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, holdBars=4)
    landed = s.cue
    assert landed is not None
    s.set_tempo(landed.at_ms + 100.0, CONSOLE, 90.0, "beat", RULES)
    assert s.cue == landed


def test_a_cue_during_a_pending_play_lands_on_the_played_timeline() -> None:
    s = band()
    s.play(T0, CONSOLE, RULES, 1)  # count-in from T0 + 200 ms, downbeat 2 s later
    cue(s, T0 + 10.0)
    landed = s.cue
    assert landed is not None
    # the lead ends inside the count-in's bar (bar 0): the next downbeat is the song's first
    assert (landed.bar, landed.at_beat) == (1, 0.0)
    assert landed.at_ms == pytest.approx(T0 + 200.0 + BAR_MS, abs=1e-3)
    assert cue_phase(landed, s.timeline, T0 + 300.0) == ("pending", 1)  # "in 1 bar"
    s = band()
    s.play(T0, CONSOLE, RULES, 1)
    cue(s, T0 + 10.0, inBars=2)
    assert s.cue is not None and s.cue.bar == 3
    assert s.cue.at_ms == pytest.approx(T0 + 200.0 + 3 * BAR_MS, abs=1e-3)


def test_pausing_before_the_bar_keeps_the_cue_pending_and_play_brings_it() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, inBars=1)  # bar 3, at 4 s
    pending = s.cue
    assert pending is not None and pending.bar == 3
    s.pause(downbeat + 1000.0, CONSOLE)
    assert s.cue is not None and s.cue.bar == 3
    assert cue_phase(s.cue, s.timeline, downbeat + 60_000.0) == ("pending", 2)
    s.play(downbeat + 60_000.0, CONSOLE, RULES, 0)  # resumes at beat 2 at 60.2 s
    resumed = downbeat + 60_000.0 + RULES.lead_ms
    assert s.cue is not None
    assert s.cue.at_ms == pytest.approx(resumed + 6 * 500.0, abs=1e-3)  # beat 8
    assert cue_phase(s.cue, s.timeline, s.cue.at_ms + 0.01)[0] == "showing"


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        (lambda s, now: s.stop(now, CONSOLE), "stop"),
        (lambda s, now: s.seek(now, CONSOLE, 30_000.0, RULES), "seek"),
        (lambda s, now: s.set_song(now, CONSOLE, Song("Next"), None, None, None, RULES), "song"),
    ],
    ids=["stop", "seek", "set_song"],
)
def test_a_new_song_a_stop_or_a_seek_takes_the_cue_off_and_says_so(what, reason) -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, inBars=4)
    now = downbeat + 700.0
    version = s.version
    notices = what(s, now)
    assert s.cue is None
    assert s.version > version
    cleared = [payload for event, payload in notices if event == "cue"]
    assert cleared == [{"sessionId": "band", "cue": None, "reason": reason, "serverTimestamp": now}]
    assert s.snapshot(now)["cue"] is None
    # a cue that is over goes without a word
    s, downbeat = playing()
    cue(s, downbeat + 500.0, holdBars=1)
    notices = what(s, downbeat + 10 * BAR_MS)
    assert s.cue is None and not [n for n in notices if n[0] == "cue"]


def test_pause_and_play_and_tempo_keep_the_cue() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0)
    notices = s.pause(downbeat + 600.0, CONSOLE)
    assert s.cue is not None and not [n for n in notices if n[0] == "cue"]


def test_clear_cue_and_a_new_cue_replaces_the_last() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, "VERSE")
    first = s.cue
    cue(s, downbeat + 600.0, "CHORUS")
    second = s.cue
    assert first is not None and second is not None
    assert second.id == first.id + 1 and second.text == "CHORUS"
    version = s.version
    notices = COMMANDS["clear_cue"].parse({}, RULES)(s, CONSOLE, downbeat + 700.0)
    assert s.cue is None and s.version == version + 1
    assert notices == [
        (
            "cue",
            {
                "sessionId": "band",
                "cue": None,
                "reason": "cleared",
                "serverTimestamp": downbeat + 700.0,
            },
        )
    ]
    # nothing to clear: nothing changes, nothing is published
    assert s.clear_cue(downbeat + 800.0, CONSOLE) == [] and s.version == version + 1
    cue(s, downbeat + 900.0, "OUTRO")
    assert s.cue is not None and s.cue.id == second.id + 1  # ids never repeat


def test_only_the_leader_may_cue_and_a_refusal_changes_nothing() -> None:
    s = Session.create("gig", T0)
    for cid in ("a", "b"):
        s.join(
            T0,
            f"sock-{cid}",
            client_id=cid,
            display_name=cid,
            role=None,
            key=None,
            device=None,
            rules=RULES,
        )
    s.set_role(T0, "a", "leader", None)
    COMMANDS["cue"].parse({"text": "FIRST"}, RULES)(s, "a", T0 + 1)
    before = s.to_dict()
    for name, payload in (("cue", {"text": "MINE"}), ("clear_cue", {})):
        action = COMMANDS[name].parse(payload, RULES)
        with pytest.raises(NotLeader):
            action(s, "b", T0 + 2)
        with pytest.raises(NotInSession):
            action(s, "stranger", T0 + 2)
        assert s.to_dict() == before
    # the leader, and the console with the owner's authority, may
    COMMANDS["clear_cue"].parse({}, RULES)(s, "a", T0 + 3)
    COMMANDS["cue"].parse({"text": "CONSOLE"}, RULES)(s, CONSOLE, T0 + 4)
    assert s.cue is not None and s.cue.text == "CONSOLE"


BAD_CUES = [
    {},  # no text
    {"text": None},
    {"text": ""},
    {"text": "    "},
    {"text": "x" * 41},
    {"text": " " + "x" * 41 + " "},
    {"text": "x" * 1_000_000},
    {"text": 42},
    {"text": True},
    {"text": ["CHORUS"]},
    {"text": {"text": "CHORUS"}},
    {"text": "CHO\nRUS"},
    {"text": "CHO\rRUS"},
    {"text": "CHO\tRUS"},
    {"text": "CHORUS\x00"},
    {"text": "\x1b[31mRED"},
    {"text": "CHO\u2028RUS"},  # line separator
    {"text": "CHO\u2029RUS"},  # paragraph separator
    {"text": "\u202eSUROHC"},  # right-to-left override
    {"text": "\u2067CHORUS\u2069"},  # right-to-left isolate
    {"text": "CHO\u200bRUS"},  # zero-width space
    {"text": "CHO\u200dRUS"},  # zero-width joiner
    {"text": "\ufeffCHORUS"},  # byte order mark
    {"text": "\u200b\u200b"},  # nothing visible
    {"text": "CHO\u00adRUS"},  # soft hyphen
    {"text": "\udc00"},  # a lone surrogate
    {"text": "OK", "inBars": -1},
    {"text": "OK", "inBars": 9},
    {"text": "OK", "inBars": 1.5},
    {"text": "OK", "inBars": float("nan")},
    {"text": "OK", "inBars": float("inf")},
    {"text": "OK", "inBars": True},
    {"text": "OK", "inBars": "2"},
    {"text": "OK", "inBars": [1]},
    {"text": "OK", "inBars": {"n": 1}},
    {"text": "OK", "holdBars": 0},
    {"text": "OK", "holdBars": 17},
    {"text": "OK", "holdBars": float("nan")},
    {"text": "OK", "holdBars": False},
    {"text": "OK", "holdBars": 1e300},
    {"text": "OK", "holdBars": "2"},
]


@pytest.mark.parametrize("payload", BAD_CUES, ids=[repr(p)[:40] for p in BAD_CUES])
def test_a_bad_cue_is_refused_with_a_clear_error_and_nothing_changes(payload) -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, "KEEP")
    before = s.to_dict()
    with pytest.raises(BandSyncError) as refused:
        COMMANDS["cue"].parse(payload, RULES)(s, CONSOLE, downbeat + 600.0)
    assert refused.value.code == ErrorCode.INVALID_CUE
    message = refused.value.message
    assert any(word in message for word in ("text", "inBars", "holdBars")), message
    assert s.to_dict() == before


def test_good_texts_are_trimmed_and_kept_as_typed() -> None:
    for raw, kept in (
        ("  2× CHORUS  ", "2× CHORUS"),
        ("x" * 40, "x" * 40),
        ("  " + "y" * 40 + "  ", "y" * 40),
        ("LAST TIME!", "LAST TIME!"),
        ("Ñandú 🎸", "Ñandú 🎸"),
        ("עוד פעם", "עוד פעם"),  # right-to-left script itself is fine, only overrides are not
        ("<b>BREAK</b>", "<b>BREAK</b>"),  # shown as typed (textContent, plain labels)
    ):
        assert validation.cue_text(raw) == kept


def test_the_cue_is_stored_and_snapshot_and_old_stored_sessions_load() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0, "BRIDGE", inBars=1, holdBars=3)
    landed = s.cue
    assert landed is not None
    again = Session.from_dict(s.to_dict())
    assert again.cue == landed and again.cue_seq == s.cue_seq == landed.id
    assert again.to_dict() == s.to_dict()
    assert s.copy().cue == landed
    snap = s.snapshot(downbeat + 600.0)
    assert snap["cue"] == {
        "id": landed.id,
        "text": "BRIDGE",
        "atBar": landed.bar,
        "atBeat": landed.at_beat,
        "atServerTime": landed.at_ms,
        "holdBars": 3,
    }
    assert Cue.from_wire(snap["cue"]) == landed
    # a session stored before cues existed
    old = s.to_dict()
    del old["cue"], old["cueSeq"]
    loaded = Session.from_dict(old)
    assert loaded.cue is None and loaded.cue_seq == 0
    assert loaded.snapshot(downbeat)["cue"] is None


def test_a_restarted_console_server_drops_the_cue_but_counts_on() -> None:
    s, downbeat = playing()
    cue(s, downbeat + 500.0)
    kept = carried_over(s, downbeat + 10_000.0)
    assert kept.cue is None and kept.cue_seq == s.cue_seq
    cue(kept, downbeat + 10_001.0)
    assert kept.cue is not None and kept.cue.id == s.cue_seq + 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    text=JSON | st.text(max_size=80),
    in_bars=JSON | st.integers(-2, 10),
    hold_bars=JSON | st.integers(-2, 20),
)
def test_any_payload_is_a_cue_or_a_clear_refusal_that_changes_nothing(
    text: object, in_bars: object, hold_bars: object
) -> None:
    s, downbeat = playing()
    before = s.to_dict()
    payload = {"text": text, "inBars": in_bars, "holdBars": hold_bars}
    try:
        COMMANDS["cue"].parse(payload, RULES)(s, CONSOLE, downbeat + 300.0)
    except BandSyncError as refused:
        assert refused.code == ErrorCode.INVALID_CUE
        assert s.to_dict() == before
        return
    assert s.cue is not None
    assert 1 <= len(s.cue.text) <= validation.CUE_TEXT_MAX and s.cue.text == s.cue.text.strip()
    assert 1 <= s.cue.hold_bars <= validation.CUE_HOLD_BARS_MAX


@settings(max_examples=300, deadline=None)
@given(
    tempo=st.floats(validation.TEMPO_MIN, validation.TEMPO_MAX),
    beats_per_bar=st.integers(1, 16),
    offset=st.floats(0.0, 600_000.0),
    in_bars=st.integers(0, validation.CUE_IN_BARS_MAX),
)
def test_a_cue_always_lands_on_the_first_downbeat_after_the_lead_plus_in_bars(
    tempo: float, beats_per_bar: int, offset: float, in_bars: int
) -> None:
    s = Session.create(
        "band", T0, console_hosted=True, tempo_bpm=tempo, beats_per_bar=beats_per_bar
    )
    s.play(T0, CONSOLE, RULES, 0)
    downbeat = T0 + RULES.lead_ms
    now = downbeat + offset
    cue(s, now, inBars=in_bars)
    landed = s.cue
    assert landed is not None
    bar_ms = beats_per_bar * 60_000.0 / tempo
    first = now + RULES.lead_ms
    assert landed.at_ms >= first - 1e-3
    assert landed.at_ms - first < (in_bars + 1) * bar_ms + 1e-3
    assert landed.at_ms - first >= in_bars * bar_ms - 1e-3
    assert cue_phase(landed, s.timeline, landed.at_ms - 0.05)[0] == "pending"
    assert cue_phase(landed, s.timeline, landed.at_ms + 0.05)[0] == "showing"
