"""A song's form in the session: the sections' tempo and meter on the timeline, and the
leader's calls (jump, vamp, end) as commands, on the bar (issue 15, item 3).

Plain values and numbers for times: the session is driven as the server drives it
(``conduct`` a few times a second), and where the music is at any instant is read back from
the timeline with the conductor's own ``song_bar_at``.
"""

from __future__ import annotations

import pytest

from bandsync_desktop.core.commands import COMMANDS
from bandsync_desktop.core.conductor import STEP_S, song_bar_at
from bandsync_desktop.core.errors import BandSyncError, ErrorCode, NotLeader
from bandsync_desktop.core.session import CONSOLE, Rules, Session

from .bands import console_band

T0 = 1_700_000_000_000.0
RULES = Rules(lead_ms=200.0)
STEP_MS = STEP_S * 1000.0
SECTIONS = [
    {"name": "Intro", "bars": 2, "tempoBpm": 120},
    {"name": "Verse", "bars": 4, "tempoBpm": 120},
    {"name": "Bridge", "bars": 2, "tempoBpm": 140, "beatsPerBar": 7, "beatUnit": 8},
    {"name": "Outro", "bars": 2, "tempoBpm": 100, "rampToBpm": 80},
]


def band() -> Session:
    return console_band(T0, RULES, 90.0, "Ben")


def do(s: Session, name: str, payload: dict, now: float, actor: str = CONSOLE) -> list:
    return COMMANDS[name].parse(payload, RULES)(s, actor, now)


def with_song(sections: list | None = None) -> Session:
    s = band()
    song = {"title": "Form", "chart": "", "sections": SECTIONS if sections is None else sections}
    do(s, "set_song", {"song": song}, T0 + 1)
    return s


def conduct_until(s: Session, start: float, end: float, heard: list | None = None) -> list:
    """The server's conductor task from ``start`` to ``end``; every notice it gave. With
    ``heard``: what the band hears meanwhile is added to it (``(song bar, beats per bar,
    tempo)`` at each bar's downbeat, read as each step leaves the timeline: it is pruned of
    what is past)."""
    notices = []
    now = start
    while now < end:
        notices += s.conduct(now)
        if heard is not None:
            t = now
            while t < min(now + STEP_MS, end):
                segment = s.timeline.segment_at(t)
                bar = song_bar_at(s.timeline, t)
                if (
                    segment.playing
                    and t >= segment.anchor_ms
                    and (not heard or heard[-1][0] != bar)
                ):
                    heard.append((bar, segment.beats_per_bar, round(segment.tempo_at(t))))
                t += 25.0
        now += STEP_MS
    return notices


def bars(heard: list) -> list[int]:
    return [bar for bar, _, _ in heard]


def test_a_song_with_sections_starts_at_its_first_sections_tempo_and_meter() -> None:
    s = with_song()
    latest = s.timeline.latest
    assert (latest.end_tempo_bpm, latest.beats_per_bar) == (120.0, 4)
    assert s.form is not None and s.form.total_bars == 10
    snapshot = s.snapshot(T0 + 2)
    assert [x["name"] for x in snapshot["song"]["sections"]] == [
        "Intro",
        "Verse",
        "Bridge",
        "Outro",
    ]
    assert snapshot["show"] == {"vamp": None, "vampName": None, "call": None, "segue": None}
    # stored and read back whole (Redis keeps sessions in this form)
    again = Session.from_dict(s.to_dict())
    assert again.form is not None and again.form.to_dict() == s.form.to_dict()


def test_the_song_plays_as_its_form_says_and_stops_at_its_end() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 10 + RULES.lead_ms
    heard: list = []
    conduct_until(s, T0 + 10, start + 40_000, heard)
    assert bars(heard) == list(range(1, 11))
    assert [meter for _, meter, _ in heard] == [4] * 6 + [7] * 2 + [4] * 2
    assert [tempo for _, _, tempo in heard[:8]] == [120] * 6 + [140] * 2
    assert heard[8][2] == 100  # the ramp starts at 100
    assert not s.timeline.latest.playing  # the song is over: stopped on its last downbeat


def test_every_boundary_reaches_the_phones_well_before_it_happens() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    placed_at: dict[float, float] = {}
    now = T0 + 10
    while now < T0 + 40_000:
        s.conduct(now)
        for segment in s.timeline.segments:
            placed_at.setdefault(segment.start_ms, now)
        now += STEP_MS
    early = [start - when for start, when in placed_at.items() if start > T0 + 1_000]
    assert early and min(early) >= 1_500.0, early


def test_jump_at_the_next_bar_lands_on_that_downbeat_in_the_sections_meter() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    conduct_until(s, T0 + 10, start + 3_000)  # in bar 2 of the intro
    asked = start + 3_000
    notices = do(s, "jump", {"section": "bridge", "at": "bar"}, asked)
    assert notices[0][0] == "show"
    call = notices[0][1]["call"]
    assert call["kind"] == "jump" and call["sectionName"] == "Bridge" and call["bar"] == 3
    assert call["atServerTime"] == pytest.approx(start + 4_000)  # the next downbeat
    conduct_until(s, asked, start + 3_900)
    # the phones see it coming until its instant, then it is gone
    assert s.snapshot(start + 3_900)["show"]["call"]["bar"] == 3
    assert song_bar_at(s.timeline, start + 4_001) == 7  # the bridge's first bar
    assert s.timeline.segment_at(start + 4_001).beats_per_bar == 7
    conduct_until(s, start + 3_900, start + 4_200)
    assert s.snapshot(start + 4_200)["show"]["call"] is None


def test_jump_at_the_end_of_the_section_and_by_index() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    conduct_until(s, T0 + 10, start + 4_500)  # in the verse's first bar (bar 3)
    notices = do(s, "jump", {"section": 3, "at": "section"}, start + 4_500)
    assert notices[0][1]["call"]["bar"] == 7  # the verse ends before bar 7
    heard: list = []
    conduct_until(s, start + 4_500, start + 13_000, heard)
    assert bars(heard) == [3, 4, 5, 6, 9]  # then the outro


def test_vamp_repeats_the_section_until_released() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    heard: list = []
    conduct_until(s, T0 + 10, start + 500, heard)
    assert do(s, "vamp", {}, start + 500)[0][1]["vampName"] == "Intro"
    conduct_until(s, start + 500, start + 15_000, heard)
    assert bars(heard) == [1, 2] * 4
    do(s, "vamp", {"on": False}, start + 15_000)  # in the fourth time's second bar
    assert s.show.vamp is None
    conduct_until(s, start + 15_000, start + 21_000, heard)
    assert bars(heard)[8:] == [3, 4, 5]


def test_end_after_this_bar_stops_on_the_next_downbeat() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    conduct_until(s, T0 + 10, start + 4_500)
    do(s, "end", {"at": "bar"}, start + 4_500)
    assert s.timeline.is_playing_at(start + 5_999)
    assert not s.timeline.is_playing_at(start + 6_001)  # bar 3 began at 4 s; 4 at 6 s
    conduct_until(s, start + 4_500, start + 7_000)
    assert not s.timeline.latest.playing


def test_a_seek_lands_on_the_forms_bar_and_drops_the_calls() -> None:
    s = with_song()
    do(s, "vamp", {}, T0 + 5)
    bridge_ms = s.form.section_start_ms(2) if s.form else 0.0
    notices = do(s, "seek", {"position": bridge_ms}, T0 + 20)
    assert [n[0] for n in notices][:1] == ["show"] and s.show.vamp is None
    assert song_bar_at(s.timeline, T0 + 30) == 7
    assert s.timeline.latest.beats_per_bar == 7 and s.timeline.latest.end_tempo_bpm == 140.0


def test_calls_are_the_leaders_and_bad_ones_change_nothing() -> None:
    s = with_song()
    do(s, "play", {}, T0 + 10)
    with pytest.raises(NotLeader):
        do(s, "jump", {"section": 1}, T0 + 500, actor="b")
    with pytest.raises(NotLeader):
        do(s, "vamp", {}, T0 + 500, actor="b")
    before = s.to_dict()
    for name, payload in (
        ("jump", {"section": 9}),
        ("jump", {"section": -1}),
        ("jump", {"section": "Chorus"}),
        ("jump", {"section": True}),
        ("jump", {"section": None}),
        ("jump", {"section": 1.5}),
        ("jump", {"section": "x" * 10_000}),
        ("jump", {"section": 1, "at": "soon"}),
        ("end", {"at": 3}),
        ("vamp", {"on": "yes"}),
    ):
        with pytest.raises(BandSyncError) as raised:
            do(s, name, payload, T0 + 500)
        assert raised.value.code in (ErrorCode.INVALID_CALL, ErrorCode.INVALID_PAYLOAD), payload
        assert s.to_dict() == before, (name, payload)
    plain = band()  # a song without sections has nothing to call
    for name, payload in (("jump", {"section": 0}), ("vamp", {}), ("end", {})):
        with pytest.raises(BandSyncError) as raised:
            do(plain, name, payload, T0 + 500)
        assert raised.value.code == ErrorCode.INVALID_CALL


def test_bad_sections_in_a_song_are_refused_whole() -> None:
    s = band()
    before = s.to_dict()
    for sections in (
        [],
        [{"name": "A", "bars": 0, "tempoBpm": 120}],
        [{"name": "A", "bars": 2, "tempoBpm": 1000}],
        [{"name": "A", "bars": 2, "tempoBpm": 120, "beatsPerBar": 0}],
        [{"name": "", "bars": 2, "tempoBpm": 120}],
        [{"name": "A", "bars": 2}],
        "sections",
        [{"name": "A", "bars": 2, "tempoBpm": 120}] * 201,
    ):
        song = {"title": "Form", "sections": sections}
        with pytest.raises(BandSyncError) as raised:
            do(s, "set_song", {"song": song}, T0 + 5)
        assert raised.value.code in (
            ErrorCode.INVALID_SONG,
            ErrorCode.INVALID_TEMPO,
            ErrorCode.INVALID_METER,
            ErrorCode.INVALID_PAYLOAD,
        )
        assert s.to_dict() == before


def test_while_stopped_a_jump_goes_there_at_once_and_an_end_is_refused() -> None:
    s = with_song()
    notices = do(s, "jump", {"section": "Outro"}, T0 + 50)
    assert "seek" in [n[0] for n in notices]
    assert song_bar_at(s.timeline, T0 + 60) == 9
    with pytest.raises(BandSyncError) as raised:
        do(s, "end", {}, T0 + 70)
    assert raised.value.code == ErrorCode.INVALID_CALL


def test_a_call_or_a_tempo_change_just_before_a_boundary_lands_where_asked() -> None:
    """The conductor places a boundary ~2 s ahead; the leader's change in that window is
    not pushed past it (the placed boundary is taken back and placed again after it)."""
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    heard: list = []
    conduct_until(s, T0 + 10, start + 3_000, heard)  # bar 2, the intro's last: 1 s to go
    assert any(seg.start_ms == pytest.approx(start + 4_000) for seg in s.timeline.segments)
    do(s, "vamp", {}, start + 3_000)  # late, but before the downbeat: it repeats
    conduct_until(s, start + 3_000, start + 7_900, heard)
    assert bars(heard) == [1, 2, 1, 2]
    do(s, "vamp", {"on": False}, start + 7_000)  # released in the last bar: the verse next
    do(s, "set_tempo", {"tempo": 150, "quantize": "beat"}, start + 7_000)
    assert s.timeline.tempo_at(start + 7_600) == 150.0  # at the next beat, not after 8 s
    conduct_until(s, start + 7_000, start + 12_000, heard)
    assert bars(heard)[4:6] == [3, 4]
    # the verse has its own tempo (120): the leader's change held until its downbeat
    assert [tempo for _, _, tempo in heard[4:6]] == [120, 120]


def test_a_section_name_that_would_read_otherwise_is_refused() -> None:
    s = band()
    before = s.to_dict()
    for name in ("Verse\u202e", "Ch\u200borus", "Bridge\u2028", "Out\x00ro", "x" * 1_000):
        song = {"title": "T", "sections": [{"name": name, "bars": 2, "tempoBpm": 120}]}
        with pytest.raises(BandSyncError) as raised:
            do(s, "set_song", {"song": song}, T0 + 5)
        assert raised.value.code == ErrorCode.INVALID_SONG
        assert s.to_dict() == before


def test_a_pause_or_a_stop_with_the_form_playing_lands_at_once() -> None:
    """Not after what the conductor placed ahead: Pause 1.1 s before a section boundary
    placed 2 s ahead stopped the band on that boundary (found by reading the pause's instant).
    A call it had placed waits again, and the resume places it anew."""
    for command in ("pause", "stop"):
        s = with_song()
        do(s, "play", {}, T0 + 10)
        start = T0 + 210
        conduct_until(s, T0 + 10, start + 2_000)  # in bar 2: the verse's downbeat (4 s) placed
        assert any(seg.start_ms == pytest.approx(start + 4_000) for seg in s.timeline.segments)
        if command == "pause":
            do(s, "jump", {"section": "Bridge", "at": "bar"}, start + 2_100)  # bar 3's downbeat
            assert s.show.placed is not None  # within the horizon: on the timeline already
        notices = do(s, command, {}, start + 2_900)
        paused = next(p for e, p in notices if e == "pause")
        assert paused["effectiveAt"] == start + 2_900, command
        assert not s.timeline.is_playing_at(start + 2_901)
        assert all(seg.start_ms <= start + 2_900 for seg in s.timeline.segments), command
    # (the last one was a stop: its calls are gone; the pause's jump waits for the resume)
    s = with_song()
    do(s, "play", {}, T0 + 10)
    start = T0 + 210
    conduct_until(s, T0 + 10, start + 2_000)
    do(s, "jump", {"section": "Bridge", "at": "bar"}, start + 2_100)
    do(s, "pause", {}, start + 2_900)
    assert s.show.call is not None and s.show.call.section == 2 and s.show.placed is None
    assert s.snapshot(start + 3_000)["show"]["call"]["sectionName"] == "Bridge"
    do(s, "play", {"countInBars": 0}, start + 10_000)
    heard: list = []
    conduct_until(s, start + 10_000, start + 16_000, heard)
    assert bars(heard)[:2] == [2, 7]  # bar 2 again from where it paused, then the bridge


def test_a_tempo_change_or_a_vamp_after_a_jump_was_placed_keeps_the_jump() -> None:
    """A jump is on the timeline up to 2 s ahead; a leader's change takes back what was
    placed after its instant, and the jump with it: it waits again and is placed anew (it
    was lost: the phones counted down to the bridge and the band played on in the verse)."""
    for change in ({"name": "set_tempo", "tempo": 121}, {"name": "vamp", "on": True}):
        s = with_song()
        do(s, "play", {"countInBars": 0}, T0 + 10)
        start = T0 + 210
        conduct_until(s, T0 + 10, start + 2_500)  # bar 2 of the intro
        do(s, "jump", {"section": "Bridge", "at": "bar"}, start + 2_500)
        assert s.show.placed is not None  # on the timeline already
        payload = {k: v for k, v in change.items() if k != "name"}
        do(s, str(change["name"]), payload, start + 2_600)
        heard: list = []
        conduct_until(s, start + 2_600, start + 8_000, heard)
        assert bars(heard)[:3] == [2, 7, 8], change


def test_a_vamp_shows_until_the_jump_out_of_it_lands() -> None:
    s = with_song()
    do(s, "play", {"countInBars": 0}, T0 + 10)
    start = T0 + 210
    conduct_until(s, T0 + 10, start + 500)
    do(s, "vamp", {}, start + 500)  # the intro, bars 1-2
    conduct_until(s, start + 500, start + 2_500)
    do(s, "jump", {"section": "Outro", "at": "bar"}, start + 2_500)  # at 4 s
    assert s.show.placed is not None
    # placed, the vamp still shows (the band still plays the intro) until the downbeat
    assert s.snapshot(start + 3_000)["show"]["vampName"] == "Intro"
    conduct_until(s, start + 2_500, start + 3_900)
    assert s.snapshot(start + 3_900)["show"]["vamp"] == 0
    heard: list = []
    conduct_until(s, start + 3_900, start + 9_000, heard)
    assert s.show.vamp is None and s.snapshot(start + 9_000)["show"]["vampName"] is None
    assert bars(heard)[:3] == [2, 9, 10]  # the outro, and no intro again (the vamp is over)
    again = Session.from_dict(s.to_dict())
    assert again.show == s.show
