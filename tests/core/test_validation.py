"""Validation: every field gets a clean value or a typed error with a stable code."""

from __future__ import annotations

import math

import pytest

from bandsync_desktop.core import validation as v
from bandsync_desktop.core.errors import ErrorCode, ValidationError


def code_of(call) -> ErrorCode:
    with pytest.raises(ValidationError) as err:
        call()
    return err.value.code


@pytest.mark.parametrize("bpm", [20, 20.0, 120, 133.5, 280])
def test_tempo_accepted(bpm):
    assert v.tempo(bpm) == float(bpm)


@pytest.mark.parametrize("bpm", [300, 19.99, 280.01, -1, 0, math.nan, math.inf, "120", True, None])
def test_tempo_refused(bpm):
    assert code_of(lambda: v.tempo(bpm)) == ErrorCode.INVALID_TEMPO


def test_meter():
    assert v.meter(7, 8) == (7, 8)
    assert v.meter(4.0, 4) == (4, 4)
    for beats, unit in ((0, 4), (17, 4), (4, 3), (4, 32), (3.5, 4), ("4", 4), (True, 4), (4, None)):
        assert code_of(lambda b=beats, u=unit: v.meter(b, u)) == ErrorCode.INVALID_METER


def test_position():
    assert v.position(0) == 0.0
    for bad in (-1, math.nan, "10", None, 1e12):
        assert code_of(lambda b=bad: v.position(b)) == ErrorCode.INVALID_POSITION


@pytest.mark.parametrize("sid", ["a", "band", "Gig_2026-11.22:set1", "x" * 64])
def test_session_id_accepted(sid):
    assert v.session_id(sid) == sid


@pytest.mark.parametrize("sid", ["", "x" * 65, "a b", "../etc", "ü", None, 5, "a/b", "a\n"])
def test_session_id_refused(sid):
    assert code_of(lambda: v.session_id(sid)) == ErrorCode.INVALID_SESSION_ID


def test_display_name():
    assert v.display_name("  Ana  ", "d") == "Ana"
    assert v.display_name(None, "Player 3") == "Player 3"
    assert v.display_name("x" * 40, "d") == "x" * 40
    assert v.display_name("Zoë 🥁", "d") == "Zoë 🥁"
    for bad in ("", "   ", "x" * 41, "a\u0000b", "a\nb", "tab\there", 7, ["a"]):
        assert code_of(lambda b=bad: v.display_name(b, "d")) == ErrorCode.INVALID_NAME


def test_role_count_in_quantize_message():
    assert v.role("leader") == "leader"
    assert code_of(lambda: v.role("admin")) == ErrorCode.INVALID_ROLE
    assert v.optional_role(None) is None
    assert v.count_in_bars(4) == 4
    assert code_of(lambda: v.count_in_bars(5)) == ErrorCode.INVALID_COUNT_IN
    assert code_of(lambda: v.count_in_bars(1.5)) == ErrorCode.INVALID_COUNT_IN
    assert v.quantize(None, "beat") == "beat"
    assert v.quantize("bar", "beat") == "bar"
    assert code_of(lambda: v.quantize("soon", "beat")) == ErrorCode.INVALID_PAYLOAD
    assert v.message("line 1\nline 2") == "line 1\nline 2"
    assert code_of(lambda: v.message("x" * 501)) == ErrorCode.INVALID_MESSAGE
    assert code_of(lambda: v.message(3)) == ErrorCode.INVALID_MESSAGE


def test_payload_must_be_an_object():
    assert v.payload({"a": 1}) == {"a": 1}
    for bad in (None, [], "x", 3):
        assert code_of(lambda b=bad: v.payload(b)) == ErrorCode.INVALID_PAYLOAD


def test_client_id_and_leader_key():
    assert v.client_id(None) is None
    assert v.client_id("abc-123") == "abc-123"
    assert code_of(lambda: v.client_id("~console")) == ErrorCode.INVALID_PAYLOAD
    assert v.leader_key(None) is None
    assert code_of(lambda: v.leader_key("")) == ErrorCode.INVALID_PAYLOAD
    assert code_of(lambda: v.leader_key(123)) == ErrorCode.INVALID_PAYLOAD


def test_song_fields_and_short_text():
    assert v.title("  Intro ") == "Intro"
    assert code_of(lambda: v.title("")) == ErrorCode.INVALID_SONG
    assert v.chart(None) == ""
    assert v.chart("C | G\n\tAm") == "C | G\n\tAm"
    assert code_of(lambda: v.chart("x" * 20_001)) == ErrorCode.INVALID_SONG
    assert v.short_text("x" * 500, "device") == "x" * 200
    assert v.flag(None, "f", True) is True
    assert code_of(lambda: v.flag("yes", "f", True)) == ErrorCode.INVALID_PAYLOAD
    assert v.finite(2, "rttMs") == 2.0
