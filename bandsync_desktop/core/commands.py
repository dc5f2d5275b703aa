"""The leader's commands, each written once: its name, its payload parser and its rule.

A command's ``parse`` validates a protocol payload (the JSON object a phone sends, or the same
object built by the console or any other in-process caller) and returns the ``Session`` rule
bound to the clean values: ``action(session, actor, now_ms) -> notices``. The socket handlers
and the console both dispatch through ``COMMANDS``, so a command is validated the same way
and obeys the same rule whoever sends it; who may send it is the rule's to check (every
command here is the leader's, or the console's: ``Session._require_leader``).

Commands with publication of their own (joins, leaves, ``set_role``, ``remove_member``) are
not in the table: they change who is in the session, not what it plays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from . import validation
from .conductor import CallAt
from .errors import ErrorCode, ValidationError
from .session import Notice, Rules, Session, Song
from .song import SECTION_NAME_MAX, SongMap
from .stageset import StageSet

#: A command bound to its arguments: ``action(session, actor, now_ms)``.
Action = Callable[[Session, str, float], list[Notice]]
Parser = Callable[[Mapping[str, Any], Rules], Action]


@dataclass(frozen=True, slots=True)
class Command:
    """One protocol command: ``parse(payload, rules)`` validates and binds its rule."""

    name: str
    parse: Parser
    summary: str


def parse_song(
    data: Any,
) -> tuple[Song | None, float | None, tuple[int, int] | None, int | None]:
    """A ``set_song`` song object: title and chart, with optional tempo/meter/count-in."""
    if data is None:
        return None, None, None, None
    song = validation.payload(data)
    tempo = validation.tempo(song["tempo"]) if song.get("tempo") is not None else None
    meter = None
    if song.get("beatsPerBar") is not None or song.get("beatUnit") is not None:
        meter = validation.meter(song.get("beatsPerBar", 4), song.get("beatUnit", 4))
    count_in = (
        validation.count_in_bars(song["countInBars"])
        if song.get("countInBars") is not None
        else None
    )
    sections = song.get("sections")
    form = None if sections is None else SongMap.from_dict({"sections": sections})
    return (
        Song(validation.title(song.get("title")), validation.chart(song.get("chart")), form),
        tempo,
        meter,
        count_in,
    )


def _set_tempo(payload: Mapping[str, Any], rules: Rules) -> Action:
    bpm = validation.tempo(payload.get("tempo", payload.get("tempoBpm")))
    boundary = validation.quantize(payload.get("quantize"), "beat")
    return lambda s, actor, now: s.set_tempo(now, actor, bpm, boundary, rules)


def _set_meter(payload: Mapping[str, Any], rules: Rules) -> Action:
    beats, unit = validation.meter(payload.get("beatsPerBar"), payload.get("beatUnit", 4))
    boundary = validation.quantize(payload.get("quantize"), "bar")
    return lambda s, actor, now: s.set_meter(now, actor, beats, unit, boundary, rules)


def _set_count_in(payload: Mapping[str, Any], rules: Rules) -> Action:
    bars = validation.count_in_bars(payload.get("bars", payload.get("countInBars")))
    return lambda s, actor, now: s.set_count_in(now, actor, bars)


def _play(payload: Mapping[str, Any], rules: Rules) -> Action:
    raw = payload.get("countInBars")
    bars = None if raw is None else validation.count_in_bars(raw)
    return lambda s, actor, now: s.play(now, actor, rules, bars)


def _pause(payload: Mapping[str, Any], rules: Rules) -> Action:
    return lambda s, actor, now: s.pause(now, actor)


def _stop(payload: Mapping[str, Any], rules: Rules) -> Action:
    return lambda s, actor, now: s.stop(now, actor)


def _seek(payload: Mapping[str, Any], rules: Rules) -> Action:
    position = validation.position(payload.get("position", payload.get("positionMs")))
    return lambda s, actor, now: s.seek(now, actor, position, rules)


def _update_message(payload: Mapping[str, Any], rules: Rules) -> Action:
    if "message" not in payload:
        raise ValidationError("message is required", ErrorCode.INVALID_MESSAGE)
    text = validation.message(payload.get("message"))
    return lambda s, actor, now: s.set_message(now, actor, text)


def _set_song(payload: Mapping[str, Any], rules: Rules) -> Action:
    song, tempo, meter, count_in = parse_song(payload.get("song"))
    return lambda s, actor, now: s.set_song(now, actor, song, tempo, meter, count_in, rules)


def _cue(payload: Mapping[str, Any], rules: Rules) -> Action:
    if "text" not in payload:
        raise ValidationError("text is required", ErrorCode.INVALID_CUE)
    text = validation.cue_text(payload.get("text"))
    in_bars = validation.cue_in_bars(payload.get("inBars"))
    hold_bars = validation.cue_hold_bars(payload.get("holdBars"))
    return lambda s, actor, now: s.set_cue(now, actor, text, in_bars, hold_bars, rules)


def _clear_cue(payload: Mapping[str, Any], rules: Rules) -> Action:
    return lambda s, actor, now: s.clear_cue(now, actor)


def _call_at(payload: Mapping[str, Any]) -> CallAt:
    at = payload.get("at", "bar")
    if at == "bar":
        return "bar"
    if at == "section":
        return "section"
    raise ValidationError("at must be 'bar' or 'section'", ErrorCode.INVALID_CALL)


def _jump(payload: Mapping[str, Any], rules: Rules) -> Action:
    section = payload.get("section")
    if isinstance(section, str) and len(section) > 10 * SECTION_NAME_MAX:
        raise ValidationError("no section has so long a name", ErrorCode.INVALID_CALL)
    if not isinstance(section, (int, str)) or isinstance(section, bool):
        raise ValidationError("section must be a section's index or name", ErrorCode.INVALID_CALL)
    at = _call_at(payload)
    return lambda s, actor, now: s.call(now, actor, "jump", at, section, rules)


def _end(payload: Mapping[str, Any], rules: Rules) -> Action:
    at = _call_at(payload)
    return lambda s, actor, now: s.call(now, actor, "end", at, None, rules)


def _vamp(payload: Mapping[str, Any], rules: Rules) -> Action:
    on = payload.get("on", True)
    if not isinstance(on, bool):
        raise ValidationError("on must be true or false", ErrorCode.INVALID_CALL)
    return lambda s, actor, now: s.set_vamp(now, actor, on, rules)


def _segue(payload: Mapping[str, Any], rules: Rules) -> Action:
    if "song" not in payload:
        raise ValidationError(
            "song is required (null takes the segue back)", ErrorCode.INVALID_CALL
        )
    song, tempo, meter, count_in = parse_song(payload.get("song"))
    at = payload.get("at", "end")
    if at not in ("bar", "section", "end"):
        raise ValidationError("at must be 'bar', 'section' or 'end'", ErrorCode.INVALID_CALL)
    return lambda s, actor, now: s.set_segue(now, actor, song, tempo, meter, count_in, at, rules)


def _set_setlist(payload: Mapping[str, Any], rules: Rules) -> Action:
    if "setlist" not in payload:
        raise ValidationError("setlist is required (null takes it off)", ErrorCode.INVALID_SETLIST)
    raw = payload.get("setlist")
    setlist = None if raw is None else StageSet.from_wire(raw)
    return lambda s, actor, now: s.set_setlist(now, actor, setlist)


def _hand_over(payload: Mapping[str, Any], rules: Rules) -> Action:
    target = payload.get("to")
    if not isinstance(target, str) or not target:
        raise ValidationError("to must be a member's memberId or socketId")
    return lambda s, actor, now: s.hand_over(now, actor, target)


def _settled(parse: Parser) -> Parser:
    """``parse`` whose rule first lets what is due land (``Session.settle``: the next song
    of a segue whose instant has come goes on the stands), so no command acts on a song the
    band has already left."""

    def bind(payload: Mapping[str, Any], rules: Rules) -> Action:
        action = parse(payload, rules)

        def run(session: Session, actor: str, now_ms: float) -> list[Notice]:
            due = session.settle(now_ms)
            return due + action(session, actor, now_ms)

        return run

    return bind


COMMANDS: Final[Mapping[str, Command]] = {
    command.name: replace(command, parse=_settled(command.parse))
    for command in (
        Command("set_tempo", _set_tempo, "tempo (20-280 BPM), on the next beat by default"),
        Command("set_meter", _set_meter, "beats per bar and beat unit, on the next bar"),
        Command("set_count_in", _set_count_in, "count-in bars (0-4) for the next play"),
        Command("play", _play, "start after the count-in"),
        Command("pause", _pause, "pause at once"),
        Command("stop", _stop, "pause and back to the top"),
        Command("seek", _seek, "go to a song position (ms)"),
        Command("update_message", _update_message, "the stage message (500 characters)"),
        Command("set_song", _set_song, "put a song on the stands (or clear it)"),
        Command("hand_over", _hand_over, "pass the lead to a member"),
        Command("cue", _cue, "a stage cue (40 characters) on every phone, on the next bar"),
        Command("clear_cue", _clear_cue, "take the stage cue off the phones"),
        Command("jump", _jump, "go to a section of the song, at the next bar or section"),
        Command("vamp", _vamp, "repeat the section playing until released"),
        Command("end", _end, "end the song after this bar or this section"),
        Command("segue", _segue, "the next song straight on, when this one stops"),
        Command("set_setlist", _set_setlist, "the set on the phones (60 songs), its current one"),
    )
}
