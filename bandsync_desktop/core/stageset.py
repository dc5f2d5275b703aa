"""The set the band plays tonight, as every phone sees it: the songs in order, which one is
on the stands, and what each is (tempo, meter, length when its form says).

This is the phones' view of the leader's set list, not the set list itself: no charts (the
song on the stands carries its own), so the whole set fits in every snapshot. The console
sends it whenever its set list or the song on the stands changes (``set_setlist``); a phone
leader may send one too. The page shows now and next, the whole set on demand, and the time
left in the set (``web/setlist.js``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import validation
from .errors import ErrorCode, ValidationError

#: More songs than any night's set; it keeps a snapshot's set under ~15 KB.
SET_SONGS_MAX: Final = 60
#: A song's length as the set may state it: four hours is more than any song.
SONG_LENGTH_MAX_MS: Final = 4 * 3600 * 1000.0

_CODE: Final = ErrorCode.INVALID_SETLIST


def _refused(where: str, error: ValidationError) -> ValidationError:
    return ValidationError(f"{where}: {error.message}", _CODE)


@dataclass(frozen=True, slots=True)
class StageSong:
    """One song of the set as the phones list it. ``None``: the set does not say."""

    title: str
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    beat_unit: int | None = None
    length_ms: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "tempo": self.tempo_bpm,
            "beatsPerBar": self.beats_per_bar,
            "beatUnit": self.beat_unit,
            "lengthMs": self.length_ms,
        }

    @classmethod
    def from_wire(cls, data: Any) -> StageSong:
        """A song of a ``set_setlist`` payload, checked (raises ``ValidationError``)."""
        song = validation.payload(data)
        title = validation.title(song.get("title"))
        tempo = song.get("tempo")
        tempo_bpm = None if tempo is None else validation.tempo(tempo)
        beats, unit = song.get("beatsPerBar"), song.get("beatUnit")
        meter = None if beats is None and unit is None else validation.meter(beats, unit or 4)
        length = song.get("lengthMs")
        length_ms = None if length is None else _length(length)
        return cls(
            title=title,
            tempo_bpm=tempo_bpm,
            beats_per_bar=meter[0] if meter else None,
            beat_unit=meter[1] if meter else None,
            length_ms=length_ms,
        )


def _length(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("lengthMs must be a number", _CODE)
    if not 0 < value <= SONG_LENGTH_MAX_MS:
        raise ValidationError(f"lengthMs must be above 0 and at most {SONG_LENGTH_MAX_MS:g}", _CODE)
    return float(value)


@dataclass(frozen=True, slots=True)
class StageSet:
    """The set: its name, its songs in order and the index of the one on the stands."""

    name: str
    songs: tuple[StageSong, ...]
    current: int | None = None

    @property
    def next(self) -> StageSong | None:
        """The song after the one on the stands (the first while none is)."""
        index = 0 if self.current is None else self.current + 1
        return self.songs[index] if index < len(self.songs) else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "current": self.current,
            "songs": [song.to_wire() for song in self.songs],
        }

    @classmethod
    def from_wire(cls, data: Any) -> StageSet:
        """A ``set_setlist`` payload's ``setlist``, checked as a whole: one bad song refuses
        the set (``INVALID_SETLIST``, the message naming the song) and changes nothing."""
        if not isinstance(data, Mapping):
            raise ValidationError("setlist must be an object or null", _CODE)
        raw_name = data.get("name")
        if raw_name is None or raw_name == "":
            name = ""
        else:
            try:
                name = validation.title(raw_name)
            except ValidationError as error:
                raise _refused("name", error) from None
        songs = data.get("songs")
        if isinstance(songs, str | bytes) or not isinstance(songs, Sequence):
            raise ValidationError("songs must be a list", _CODE)
        if not 1 <= len(songs) <= SET_SONGS_MAX:
            raise ValidationError(f"songs must hold 1 to {SET_SONGS_MAX} songs", _CODE)
        read: list[StageSong] = []
        for index, song in enumerate(songs):
            try:
                read.append(StageSong.from_wire(song))
            except ValidationError as error:
                raise _refused(f"song {index + 1}", error) from None
        current = data.get("current")
        if current is not None and (
            isinstance(current, bool)
            or not isinstance(current, int)
            or not 0 <= current < len(read)
        ):
            raise ValidationError(f"current must be null or 0 to {len(read) - 1}", _CODE)
        return cls(name=name, songs=tuple(read), current=current)
