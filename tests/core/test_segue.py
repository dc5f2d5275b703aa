"""The next song, straight on (a segue): on the downbeat the song playing stops on, the next
one starts from its top with its count-in, tempo and meter; every phone has that timeline
before the downbeat, and the song goes on the stands as it begins.

Plain values and a fake clock, as in test_song_calls.py (its conductor loop is reused)."""

from __future__ import annotations

import pytest

from bandsync_desktop.core.conductor import song_bar_at
from bandsync_desktop.core.errors import BandSyncError, ErrorCode, NotLeader
from bandsync_desktop.core.session import CONSOLE, Session

from .test_song_calls import RULES, T0, band, bars, conduct_until, do, with_song

NEXT = {
    "title": "Ballad",
    "chart": "slow",
    "tempo": 60,
    "beatsPerBar": 3,
    "beatUnit": 4,
    "countInBars": 1,
}
START = T0 + 10 + RULES.lead_ms  # the first song's first downbeat (played at T0 + 10)


def playing_form() -> Session:
    s = with_song()  # Intro 2, Verse 4, Bridge 2 (7/8 at 140), Outro 2: 10 bars
    do(s, "play", {"countInBars": 0}, T0 + 10)
    return s


def test_at_the_next_bar_the_next_song_counts_in_on_that_downbeat() -> None:
    s = band()  # no form: 90 BPM 4/4, a bar is 2 2/3 s
    do(s, "set_song", {"song": {"title": "Jam"}}, T0 + 1)
    do(s, "play", {"countInBars": 0}, T0 + 10)
    asked = START + 1_000
    notices = do(s, "segue", {"song": NEXT, "at": "bar"}, asked)
    bar_ms = 4 * 60_000 / 90
    switch = START + bar_ms  # bar 2's downbeat: the first at least the lead away
    show = notices[-1][1]
    assert show["reason"] == "segue"
    assert show["segue"] == {"title": "Ballad", "at": "bar", "bar": 2, "atServerTime": switch}
    # the whole change is on the timeline now: every phone has it before its instant
    assert s.timeline.is_playing_at(switch - 1) and s.timeline.tempo_at(switch - 1) == 90
    at = s.timeline.segment_at(switch + 1)
    assert (at.tempo_bpm, at.beats_per_bar, at.position_ms) == (60.0, 3, 0.0)
    assert at.anchor_ms == pytest.approx(switch + 3_000)  # one bar of 3/4 at 60 counts in
    assert s.timeline.counting_in_at(switch + 2_999)
    assert song_bar_at(s.timeline, switch + 3_001) == 1
    # the song goes on the stands as it begins (the server's next step)
    assert s.song is not None and s.song.title == "Jam"
    assert s.would_conduct(switch - 1) is False and s.would_conduct(switch + 1) is True
    landed = s.conduct(switch + 100)
    events = [event for event, _ in landed]
    assert events == ["song_changed", "play", "show"]
    assert s.song.title == "Ballad" and s.count_in_bars == 1 and s.segue is None
    play = dict(landed)["play"]
    assert play["downbeatAt"] == pytest.approx(switch + 3_000) and play["countInBars"] == 1
    assert s.snapshot(switch + 200)["show"]["segue"] is None


def test_at_the_end_of_the_song_as_written_the_next_one_follows_without_a_gap() -> None:
    s = playing_form()
    heard: list = []
    conduct_until(s, T0 + 10, START + 1_000, heard)
    do(s, "segue", {"song": {**NEXT, "countInBars": 0}}, START + 1_000)  # at: "end"
    assert s.snapshot(START + 1_100)["show"]["segue"]["bar"] == 11
    conduct_until(s, START + 1_000, START + 60_000, heard)
    # the whole first song, then the ballad's bars from its first, at once
    assert bars(heard)[:10] == list(range(1, 11))
    assert bars(heard)[10:13] == [1, 2, 3]
    assert heard[10][1:] == (3, 60)
    assert s.song is not None and s.song.title == "Ballad"
    end = next(seg.start_ms for seg in s.timeline.segments if seg.tempo_bpm == 60.0)
    # (the first song's end: 6 bars of 4/4 at 120, 2 of 7/8 at 140, 2 ramping 100->80)
    assert s.timeline.is_playing_at(end - 1) and s.timeline.is_playing_at(end + 1)


def test_at_the_end_of_the_section_and_a_vamp_holds_the_end_off() -> None:
    s = playing_form()
    conduct_until(s, T0 + 10, START + 4_500)  # bar 3, the verse's first
    do(s, "segue", {"song": NEXT, "at": "section"}, START + 4_500)
    assert s.show.call is not None and s.show.call.bar == 7  # the verse ends before bar 7
    heard: list = []
    conduct_until(s, START + 4_500, START + 20_000, heard)
    assert bars(heard)[:4] == [3, 4, 5, 6]
    assert bars(heard)[4] == 1 and heard[4][1] == 3  # the ballad after its count-in
    # with a vamp, "the end of the song" waits for the release
    s = playing_form()
    conduct_until(s, T0 + 10, START + 500)
    do(s, "vamp", {}, START + 500)
    do(s, "segue", {"song": NEXT}, START + 600)
    heard = []
    conduct_until(s, START + 600, START + 20_000, heard)
    assert bars(heard) == [1, 2] * 5 and s.song is not None and s.song.title == "Form"


def test_a_pause_a_stop_or_a_new_song_take_it_back_and_bad_ones_change_nothing() -> None:
    for take_back in ("pause", "stop", "set_song", "segue"):
        s = band()
        do(s, "set_song", {"song": {"title": "Jam"}}, T0 + 1)
        do(s, "play", {"countInBars": 0}, T0 + 10)
        do(s, "segue", {"song": NEXT, "at": "bar"}, START + 1_000)
        payload = {"song": None} if take_back in ("segue", "set_song") else {}
        if take_back == "set_song":
            payload = {"song": {"title": "Other"}}
        do(s, take_back, payload, START + 1_500)
        assert s.segue is None, take_back
        assert all(seg.tempo_bpm != 60.0 for seg in s.timeline.segments), take_back
        assert s.snapshot(START + 1_600)["show"]["segue"] is None
    # while the next song is on the timeline, a tempo change or a call would land in it
    s = band()
    do(s, "set_song", {"song": {"title": "Jam"}}, T0 + 1)
    do(s, "play", {"countInBars": 0}, T0 + 10)
    do(s, "segue", {"song": NEXT, "at": "bar"}, START + 1_000)
    before = s.to_dict()
    refused = [
        ("set_tempo", {"tempo": 100}, ErrorCode.INVALID_CALL),
        ("seek", {"position": 0}, ErrorCode.INVALID_CALL),
        ("segue", {"song": NEXT}, ErrorCode.INVALID_CALL),  # no sections: at the next bar only
        ("segue", {"song": NEXT, "at": "bar"}, ErrorCode.INVALID_CALL),  # one is on its way
        ("segue", {"song": {"title": ""}, "at": "bar"}, ErrorCode.INVALID_SONG),
        ("segue", {"song": NEXT, "at": "soon"}, ErrorCode.INVALID_CALL),
        ("segue", {}, ErrorCode.INVALID_CALL),
    ]
    for name, payload, code in refused:
        with pytest.raises(BandSyncError) as error:
            do(s, name, payload, START + 1_200)
        assert error.value.code == code, (name, payload)
        assert s.to_dict() == before, (name, payload)
    with pytest.raises(NotLeader):
        do(s, "segue", {"song": None}, START + 1_200, actor="b")
    assert s.to_dict() == before
    # stopped, there is nothing to go on from
    s = band()
    with pytest.raises(BandSyncError, match="nothing is playing"):
        do(s, "segue", {"song": NEXT, "at": "bar"}, T0 + 5)


def test_a_segue_is_stored_whole_and_the_console_may_call_it() -> None:
    s = playing_form()
    conduct_until(s, T0 + 10, START + 1_000)
    do(s, "segue", {"song": NEXT, "at": "section"}, START + 1_000, actor=CONSOLE)
    again = Session.from_dict(s.to_dict())
    assert again.segue == s.segue and again.segue is not None
    assert again.segue.song.title == "Ballad" and again.segue.meter == (3, 4)


def test_taking_a_segue_back_at_once_keeps_a_play_not_yet_begun() -> None:
    """Play, segue, take it back, all within the scheduling lead (the console's Space, N,
    N): only the next song goes; the play still starts (it was cut once: the band stopped)."""
    s = band()
    do(s, "set_song", {"song": {"title": "Jam"}}, T0 + 1)
    do(s, "play", {"countInBars": 0}, T0 + 10)
    do(s, "segue", {"song": NEXT, "at": "bar"}, T0 + 50)
    do(s, "segue", {"song": None}, T0 + 90)
    assert s.segue is None and s.timeline.latest.playing
    assert s.timeline.is_playing_at(START + 1) and s.timeline.tempo_at(START + 10_000) == 90


def test_called_just_before_the_end_it_still_follows_on_that_downbeat() -> None:
    """The song's end already placed and less than the lead away: the next song starts
    there all the same (it waited for an end that had come)."""
    s = playing_form()
    end = None
    now = T0 + 10
    while end is None:
        s.conduct(now)
        latest = s.timeline.latest
        if not latest.playing:
            end = latest.start_ms
        now += 50.0
    asked = end - 100.0  # within the 200 ms lead of the end
    do(s, "segue", {"song": NEXT}, asked)
    assert s.segue is not None and s.segue.at_ms == end
    assert s.timeline.segment_at(end + 1).tempo_bpm == 60.0
    conduct_until(s, asked, end + 5_000)
    assert s.song is not None and s.song.title == "Ballad"


def test_the_set_moves_on_when_the_segue_is_its_next_song() -> None:
    s = band()
    setlist = {"songs": [{"title": "Jam"}, {"title": "Ballad"}, {"title": "Closer"}]}
    do(s, "set_setlist", {"setlist": {**setlist, "current": 0}}, T0 + 1)
    do(s, "set_song", {"song": {"title": "Jam"}}, T0 + 1)
    do(s, "play", {"countInBars": 0}, T0 + 10)
    do(s, "segue", {"song": NEXT, "at": "bar"}, START + 1_000)
    landed = s.conduct(START + 10_000)
    assert ("setlist" in dict(landed)) and s.setlist is not None and s.setlist.current == 1
    # a song that is not the set's next leaves the set where it was
    do(s, "segue", {"song": {**NEXT, "title": "Encore"}, "at": "bar"}, START + 11_000)
    s.conduct(START + 20_000)
    assert s.song is not None and s.song.title == "Encore" and s.setlist.current == 1


def test_taking_back_a_segue_at_the_sections_end_takes_its_end_back_too() -> None:
    s = playing_form()
    conduct_until(s, T0 + 10, START + 4_500)  # bar 3, the verse's first
    do(s, "segue", {"song": NEXT, "at": "section"}, START + 4_500)
    do(s, "segue", {"song": None}, START + 5_000)
    assert s.segue is None and s.show.call is None
    heard: list = []
    conduct_until(s, START + 5_000, START + 14_000, heard)
    assert bars(heard)[:5] == [3, 4, 5, 6, 7]  # on into the bridge: nothing ended
