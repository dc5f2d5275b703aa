"""Set lists: songs with tempo, meter, count-in and chart, saved per set as JSON.

Plain Python, no Qt: the set-list widget edits a ``SetList`` and asks a ``SetLibrary`` to
save it. Every song is checked with the same ``core.validation`` rules a phone's ``set_song``
goes through, so a file with a bad song is refused as a whole and changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..actors.console import SongSpec
from ..core import validation
from ..core.errors import ValidationError

FORMAT = 1


class SetListError(Exception):
    """A set-list file that cannot be read or does not hold a valid set."""


@dataclass(frozen=True, slots=True)
class SetSong:
    """One song of a set."""

    title: str
    tempo_bpm: float = 120.0
    beats_per_bar: int = 4
    beat_unit: int = 4
    count_in_bars: int = 1
    chart: str = ""

    def validated(self) -> SetSong:
        """The same song with every field checked (raises ``ValidationError``)."""
        beats, unit = validation.meter(self.beats_per_bar, self.beat_unit)
        return SetSong(
            title=validation.title(self.title),
            tempo_bpm=validation.tempo(self.tempo_bpm),
            beats_per_bar=beats,
            beat_unit=unit,
            count_in_bars=validation.count_in_bars(self.count_in_bars),
            chart=validation.chart(self.chart),
        )

    def spec(self) -> SongSpec:
        """What the console sends to the session when this song is chosen."""
        return SongSpec(
            title=self.title,
            chart=self.chart,
            tempo_bpm=self.tempo_bpm,
            beats_per_bar=self.beats_per_bar,
            beat_unit=self.beat_unit,
            count_in_bars=self.count_in_bars,
        )

    @property
    def meter_text(self) -> str:
        return f"{self.beats_per_bar}/{self.beat_unit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "tempo": self.tempo_bpm,
            "beatsPerBar": self.beats_per_bar,
            "beatUnit": self.beat_unit,
            "countInBars": self.count_in_bars,
            "chart": self.chart,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SetSong:
        item = validation.payload(data)
        return cls(
            title=item.get("title"),  # type: ignore[arg-type]  # checked by validated()
            tempo_bpm=item.get("tempo", 120.0),
            beats_per_bar=item.get("beatsPerBar", 4),
            beat_unit=item.get("beatUnit", 4),
            count_in_bars=item.get("countInBars", 1),
            chart=item.get("chart", "") or "",
        ).validated()


@dataclass(slots=True)
class SetList:
    """A named, ordered list of songs."""

    name: str
    songs: list[SetSong] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "songs": [s.to_dict() for s in self.songs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], fallback_name: str = "Imported set") -> SetList:
        if not isinstance(data, Mapping):
            raise SetListError("a set list is a JSON object with a list of songs")
        if data.get("format", FORMAT) != FORMAT:
            raise SetListError(f"unknown set-list format {data.get('format')!r}")
        songs = data.get("songs")
        if not isinstance(songs, list):
            raise SetListError("a set list needs a 'songs' list")
        parsed = []
        for index, item in enumerate(songs, start=1):
            try:
                parsed.append(SetSong.from_dict(item))
            except ValidationError as exc:
                raise SetListError(f"song {index}: {exc}") from exc
        name = data.get("name")
        return cls(
            name=name.strip() if isinstance(name, str) and name.strip() else fallback_name,
            songs=parsed,
        )

    def move(self, index: int, offset: int) -> int:
        """Move a song up (-1) or down (+1); returns its new index."""
        target = index + offset
        if not (0 <= index < len(self.songs) and 0 <= target < len(self.songs)):
            return index
        self.songs[index], self.songs[target] = self.songs[target], self.songs[index]
        return target

    def replace_song(self, index: int, song: SetSong) -> None:
        self.songs[index] = replace(song.validated())


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return slug[:60] or "set"


def read_set_file(path: Path) -> SetList:
    """A set list from a JSON file (import)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SetListError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SetListError(f"{path.name} is not valid JSON: {exc}") from exc
    return SetList.from_dict(data, fallback_name=path.stem)


def write_set_file(setlist: SetList, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves half a set behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(setlist.to_dict(), indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".set-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class SetLibrary:
    """The sets saved in a directory (the user's data directory), one JSON file per set."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, name: str) -> Path:
        return self.directory / f"{_slug(name)}.json"

    def names(self) -> list[str]:
        """Names of the saved sets, sorted; unreadable files are skipped."""
        if not self.directory.is_dir():
            return []
        names = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                names.append(read_set_file(path).name)
            except SetListError:
                continue
        return sorted(set(names), key=str.casefold)

    def load(self, name: str) -> SetList:
        path = self.path_of(name)
        if not path.exists():
            return SetList(name)
        return read_set_file(path)

    def save(self, setlist: SetList) -> Path:
        path = self.path_of(setlist.name)
        write_set_file(setlist, path)
        return path

    def delete(self, name: str) -> None:
        path = self.path_of(name)
        if path.exists():
            path.unlink()
