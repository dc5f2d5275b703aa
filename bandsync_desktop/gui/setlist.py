"""Set lists: songs with tempo, meter, count-in and chart, saved per set as JSON.

Plain Python, no Qt: the set-list widget edits a ``SetList`` and asks a ``SetLibrary`` to
save it. Every song is checked with the same ``core.validation`` rules a phone's ``set_song``
goes through, so a file with a bad song is refused as a whole and changes nothing.

Songs also come from and go to ChordPro files (``.cho`` and its kin, read by
``core.chordpro``): ``import_chordpro`` reads files and folders, one song a file, a bad file
reported by name while the rest still import; ``chordpro_export_plan`` and
``write_chordpro`` write songs back with safe file names, never over a file unasked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ..actors.console import SongSpec
from ..core import chordpro, validation
from ..core.errors import ValidationError

FORMAT = 1
#: The file names ChordPro songs go by (matched in any case).
CHORDPRO_SUFFIXES: Final = (".cho", ".chopro", ".crd", ".pro", ".chordpro")
CHORDPRO_FILTER: Final = "ChordPro songs (" + " ".join(f"*{s}" for s in CHORDPRO_SUFFIXES) + ")"
#: Written songs keep their names this short (before the suffix), whatever the title.
FILE_STEM_MAX: Final = 80
_WINDOWS_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
)
#: Characters no file name may hold on Windows, macOS or Linux.
_UNSAFE_IN_NAMES: Final = re.compile(r'[<>:"/\\|?*]')


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

    def to_chordpro(self) -> str:
        """This song as a ChordPro file's text: its chart with ``{title}``, ``{tempo}``,
        ``{time}`` (and ``{x_count_in}`` unless 1) set to this song's."""
        return chordpro.export_chordpro(
            self.chart,
            title=self.title,
            tempo_bpm=self.tempo_bpm,
            beats_per_bar=self.beats_per_bar,
            beat_unit=self.beat_unit,
            count_in_bars=self.count_in_bars,
        )

    @classmethod
    def from_chordpro(cls, text: str, fallback_title: str) -> SetSong:
        """A song from a ChordPro chart: title, tempo, meter and count-in from its
        directives (``fallback_title`` and this class's defaults where it has none), the
        chart its text.

        Raises:
            ValidationError: the chart or a directive is not valid (the message says where).
        """
        read = chordpro.parse_chordpro(text)
        defaults = cls(title="")
        title = " ".join((read.title or fallback_title).split()) or "Untitled"
        if len(title) > validation.TITLE_MAX:
            title = title[: validation.TITLE_MAX - 1].rstrip() + "…"
        beats, unit = read.meter or (defaults.beats_per_bar, defaults.beat_unit)
        return cls(
            title=title,
            tempo_bpm=read.tempo_bpm if read.tempo_bpm is not None else defaults.tempo_bpm,
            beats_per_bar=beats,
            beat_unit=unit,
            count_in_bars=(
                read.count_in_bars if read.count_in_bars is not None else defaults.count_in_bars
            ),
            chart=read.chart,
        ).validated()

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


def _write_atomically(path: Path, text: str, prefix: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) so that a crash mid-write never leaves
    half a file behind: a temporary file beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_set_file(setlist: SetList, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves half a set behind."""
    _write_atomically(path, json.dumps(setlist.to_dict(), indent=2, ensure_ascii=False), ".set-")


# -- ChordPro files ----------------------------------------------------------------------------


def is_chordpro_file(path: Path) -> bool:
    """A ChordPro file by its name (hidden files, such as macOS's ``._song.cho``, are not)."""
    return path.suffix.lower() in CHORDPRO_SUFFIXES and not path.name.startswith(".")


def _name_order(path: Path) -> tuple[list[Any], str, str]:
    """Files as a file manager lists them: by name, numbers by value ("2 …" before "10 …")."""
    parts: list[Any] = [
        int(part) if index % 2 else part.casefold()
        for index, part in enumerate(re.split(r"(\d+)", path.name, flags=re.ASCII))
    ]
    return parts, path.name, str(path)


@dataclass(slots=True)
class ChordProImport:
    """What an import read: the songs in order (with their files) and the files that failed
    (with the reason, for the leader)."""

    songs: list[tuple[Path, SetSong]] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)


def read_chordpro_file(path: Path) -> SetSong:
    """One song from a ChordPro file (its title from ``{title}``, else the file's name).

    Raises:
        SetListError: the file cannot be read, is too big, is not UTF-8 text, or holds a
            bad directive; the message says which and where.
    """
    try:
        with path.open("rb") as source:
            data = source.read(chordpro.MAX_FILE_BYTES + 1)  # a huge file is not read whole
    except OSError as exc:
        raise SetListError(f"cannot read it: {exc.strerror or exc}") from exc
    try:
        return SetSong.from_chordpro(chordpro.decode_chordpro(data), fallback_title=path.stem)
    except ValidationError as exc:
        raise SetListError(exc.message) from exc


def chordpro_paths(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files to import from ``paths``: a file as given, a folder's ChordPro files (not
    its subfolders'), all sorted by name; and the folders that could not be listed."""
    files: list[Path] = []
    failures: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            try:
                files.extend(p for p in path.iterdir() if is_chordpro_file(p) and p.is_file())
            except OSError as exc:
                failures.append((path, f"cannot list the folder: {exc.strerror or exc}"))
        else:
            files.append(path)
    return sorted(dict.fromkeys(files), key=_name_order), failures


def import_chordpro(paths: Iterable[Path]) -> ChordProImport:
    """Read every ChordPro file in ``paths`` (files and folders), in name order.

    A file that fails is listed with its reason and adds nothing; the others still import.
    """
    files, failures = chordpro_paths(paths)
    result = ChordProImport(failures=failures)
    for path in files:
        try:
            result.songs.append((path, read_chordpro_file(path)))
        except SetListError as exc:
            result.failures.append((path, str(exc)))
    return result


def safe_file_stem(title: str) -> str:
    """A file name (without suffix) from a song title, valid on Windows, macOS and Linux.

    Letters of any script stay; characters no system allows, control and invisible
    formatting characters (text-direction overrides could disguise a name) go; reserved
    Windows names get a leading ``_``; never empty, never hidden, at most 80 characters.
    """
    text = unicodedata.normalize("NFC", title)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    text = _UNSAFE_IN_NAMES.sub("-", text)
    text = " ".join(text.split()).strip(" .")
    text = text[:FILE_STEM_MAX].rstrip(" .")
    if not text:
        return "song"
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = f"_{text}"
    return text


def chordpro_export_plan(
    songs: Sequence[SetSong], folder: Path, *, numbered: bool
) -> list[tuple[SetSong, Path]]:
    """Where each song goes: ``<Title>.cho`` in ``folder``, or ``01 <Title>.cho`` when
    ``numbered`` (a set: the files sort, and import again, in the set's order). Two songs
    never share a file (`` (2)`` is added, case-insensitively)."""
    width = max(2, len(str(len(songs))))
    taken: set[str] = set()
    plan = []
    for number, song in enumerate(songs, start=1):
        stem = safe_file_stem(song.title)
        if numbered:
            stem = f"{number:0{width}d} {stem}"
        candidate, copy = stem, 1
        while candidate.casefold() in taken:
            copy += 1
            candidate = f"{stem} ({copy})"
        taken.add(candidate.casefold())
        plan.append((song, folder / f"{candidate}.cho"))
    return plan


def write_chordpro(song: SetSong, path: Path) -> None:
    """Write ``song`` as a ChordPro file (UTF-8, atomically; over ``path`` if it exists)."""
    _write_atomically(path, song.to_chordpro(), ".song-")


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
