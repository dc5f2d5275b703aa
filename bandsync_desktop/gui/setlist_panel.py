"""The set list: songs with tempo, meter, count-in and chart; choosing one sets them for
everyone. Sets are saved per set as JSON in the user's data directory; songs come in from
ChordPro files (several, or a folder) and go out as ChordPro files into a folder."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..actors.console import stage_song
from ..core.errors import ValidationError
from ..core.session import SegueAt, Session, Song
from ..core.stageset import SET_SONGS_MAX, StageSet
from ..core.validation import (
    BEATS_PER_BAR_MAX,
    BEATS_PER_BAR_MIN,
    COUNT_IN_MAX_BARS,
    TEMPO_MAX,
    TEMPO_MIN,
)
from .bridge import Bridge
from .plaintext import message_box, plain_label, plain_row, plain_tooltip
from .setlist import (
    CHORDPRO_FILTER,
    SetLibrary,
    SetList,
    SetListError,
    SetSong,
    chordpro_export_plan,
    import_chordpro,
    read_set_file,
    write_chordpro,
    write_set_file,
)
from .transport_panel import count_in_text, tempo_text

DEFAULT_SET = "My set"
ON_STANDS = "▶ "  # marks the entry whose song the phones have

#: A set's songs as the phones list them, each read once (a timed one parses its chart).
_stage_song = functools.lru_cache(maxsize=512)(stage_song)


def stage_set(setlist: SetList, current: int | None, *, timed: bool) -> StageSet | None:
    """``setlist`` as every phone sees it, with the song on the stands at ``current``;
    ``None`` for an empty set. A set longer than the phones take shows the part that starts
    at the current song (now and next are what the band reads)."""
    songs = setlist.songs
    if not songs:
        return None
    start = 0
    if len(songs) > SET_SONGS_MAX:
        start = min(current or 0, len(songs) - SET_SONGS_MAX)
    shown = songs[start : start + SET_SONGS_MAX]
    return StageSet(
        name=setlist.name,
        songs=tuple(_stage_song(song.spec(), timed=timed) for song in shown),
        current=None if current is None else current - start,
    )


def song_text(number: int, song: SetSong, *, on_stands: bool = False) -> str:
    """A set-list line: "1. Title   96 BPM · 4/4 · 1-bar count-in"."""
    mark = ON_STANDS if on_stands else ""
    return (
        f"{mark}{number}. {song.title}   {tempo_text(song.tempo_bpm)} BPM · {song.meter_text}"
        f" · {count_in_text(song.count_in_bars)}"
    )


def _same_song(entry: SetSong, song: Song | None) -> bool:
    return song is not None and entry.title == song.title and entry.chart == song.chart


class SongDialog(QDialog):
    """Add or edit a song; OK only with a valid song (the same rules as a phone's)."""

    def __init__(self, song: SetSong | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Song")
        song = song or SetSong(title="")
        self.title = QLineEdit(song.title)
        self.tempo = QSpinBox()
        self.tempo.setRange(int(TEMPO_MIN), int(TEMPO_MAX))
        self.tempo.setValue(round(song.tempo_bpm))
        self.beats = QSpinBox()
        self.beats.setRange(BEATS_PER_BAR_MIN, BEATS_PER_BAR_MAX)
        self.beats.setValue(song.beats_per_bar)
        self.unit = QComboBox()
        for unit in (2, 4, 8, 16):
            self.unit.addItem(str(unit), unit)
        self.unit.setCurrentIndex(max(0, self.unit.findData(song.beat_unit)))
        self.count_in = QSpinBox()
        self.count_in.setRange(0, COUNT_IN_MAX_BARS)
        self.count_in.setValue(song.count_in_bars)
        self.chart = QPlainTextEdit(song.chart)
        self.chart.setPlaceholderText("Chords and lyrics, e.g.\n[Verse]\nC  G  Am  F")
        self.error = plain_label("")
        self.error.setStyleSheet("color: #ff5c5c;")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        meter = QHBoxLayout()
        meter.addWidget(self.beats)
        meter.addWidget(plain_label("/"))
        meter.addWidget(self.unit)
        form = QFormLayout()
        plain_row(form, "Title", self.title)
        plain_row(form, "Tempo (BPM)", self.tempo)
        plain_row(form, "Meter", meter)
        plain_row(form, "Count-in (bars)", self.count_in)
        plain_row(form, "Chart", self.chart)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(520, 520)

    def song(self) -> SetSong:
        """The song as entered (raises ``ValidationError`` if it is not valid)."""
        return SetSong(
            title=self.title.text(),
            tempo_bpm=float(self.tempo.value()),
            beats_per_bar=self.beats.value(),
            beat_unit=int(self.unit.currentData()),
            count_in_bars=self.count_in.value(),
            chart=self.chart.toPlainText(),
        ).validated()

    def accept(self) -> None:
        try:
            self.song()
        except ValidationError as exc:
            self.error.setText(str(exc))
            return
        super().accept()


class SetListPanel(QGroupBox):
    """Songs of the current set, their editing, and the chart on the stands.

    The entry whose song is on the stands is marked (``ON_STANDS``, bold) and selected
    whenever the song on the stands changes, whoever changed it, so the list never
    highlights a song the phones do not have. A tempo change while a song loaded from this
    list is on the stands is saved to its entry: the next time it loads, it has that tempo.

    Import and Export are menus: a set list as JSON, or ChordPro songs (files, a folder;
    the whole set or the selected song into a folder).

    Signals:
        problem(str): something the leader should read (a file that could not be imported).
        saved(str): the set changed from outside the panel's editing (a tempo saved to the
            song, songs imported) or was written out (songs exported).
    """

    problem = Signal(str)
    saved = Signal(str)

    def __init__(self, bridge: Bridge, library: SetLibrary, parent: QWidget | None = None) -> None:
        super().__init__("SET LIST", parent)
        self._bridge = bridge
        self.library = library
        self.setlist = SetList(DEFAULT_SET)
        self._stands: Song | None = None  # the song on the stands, as the session has it
        self._stands_tempo: float | None = None  # its tempo when last seen
        self._loaded: Song | None = None  # the song this panel last put on the stands
        self._seen = False  # no session shown yet
        self._published: StageSet | None = None  # the set this panel last showed the phones
        bridge.server_state_changed.connect(self._on_server_state)

        self.set_combo = QComboBox()
        self.set_combo.setToolTip("Saved sets")
        self.set_combo.activated.connect(self._on_set_chosen)
        self.new_set_button = QPushButton("New set")
        self.new_set_button.clicked.connect(self._on_new_set_clicked)
        self.songs = QListWidget()
        self.songs.setToolTip("Double-click (or Enter) to put a song on the stands; PgUp/PgDn")
        self.songs.itemActivated.connect(lambda _item: self.load_current())
        # A long title is elided (its tooltip has the chart) rather than scrolled sideways.
        self.songs.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.songs.setTextElideMode(Qt.TextElideMode.ElideRight)

        self.add_button = QPushButton("Add")
        self.edit_button = QPushButton("Edit")
        self.up_button = QPushButton("↑")
        self.down_button = QPushButton("↓")
        self.delete_button = QPushButton("Delete")
        self.load_button = QPushButton("▶ Load song")
        self.segue_button = QPushButton("▶▶ Segue")
        self.segue_button.setToolTip(
            "The next song straight on, with its count-in, when this one ends (N);"
            " at the next bar (Shift+N). Again takes it back."
        )
        self.import_button = QPushButton("Import")
        self.export_button = QPushButton("Export")
        self.import_menu = QMenu(self)
        self.import_set_action = self.import_menu.addAction("Set list (JSON)…")
        self.import_chordpro_action = self.import_menu.addAction("ChordPro songs…")
        self.import_folder_action = self.import_menu.addAction("Folder of ChordPro songs…")
        self.export_menu = QMenu(self)
        self.export_set_action = self.export_menu.addAction("Set list (JSON)…")
        self.export_chordpro_action = self.export_menu.addAction("Set as ChordPro songs…")
        self.export_song_action = self.export_menu.addAction("Selected song as ChordPro…")
        self.import_button.setMenu(self.import_menu)
        self.export_button.setMenu(self.export_menu)
        self._chordpro_folder = ""  # where the last ChordPro dialog was
        self.add_button.clicked.connect(self._on_add_clicked)
        self.edit_button.clicked.connect(self._on_edit_clicked)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.load_button.clicked.connect(self.load_current)
        self.segue_button.clicked.connect(lambda: self.segue_next())
        self.import_set_action.triggered.connect(self._on_import_clicked)
        self.import_chordpro_action.triggered.connect(self._on_import_chordpro_clicked)
        self.import_folder_action.triggered.connect(self._on_import_folder_clicked)
        self.export_set_action.triggered.connect(self._on_export_clicked)
        self.export_chordpro_action.triggered.connect(self._on_export_set_chordpro_clicked)
        self.export_song_action.triggered.connect(self._on_export_song_chordpro_clicked)
        for button in (
            self.new_set_button,
            self.add_button,
            self.edit_button,
            self.up_button,
            self.down_button,
            self.delete_button,
            self.load_button,
            self.segue_button,
            self.import_button,
            self.export_button,
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        # The title on the stands may be set by a phone that leads: plain text only.
        self.song_title = plain_label("no song on the stands", outside=True)
        self.song_title.setObjectName("songtitle")
        self.chart_view = QPlainTextEdit()
        self.chart_view.setReadOnly(True)
        self.chart_view.setPlaceholderText("The chart of the chosen song shows here.")
        self.chart_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        top = QHBoxLayout()
        top.addWidget(self.set_combo, 1)
        top.addWidget(self.new_set_button)
        edit = QHBoxLayout()
        for button in (
            self.add_button,
            self.edit_button,
            self.up_button,
            self.down_button,
            self.delete_button,
        ):
            edit.addWidget(button)
        stands = QHBoxLayout()  # what goes on the stands: now, or straight on after this one
        stands.addWidget(self.load_button, 1)
        stands.addWidget(self.segue_button, 1)
        files = QHBoxLayout()
        files.addWidget(self.import_button, 1)
        files.addWidget(self.export_button, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.songs, 2)
        layout.addLayout(edit)
        layout.addLayout(stands)
        layout.addLayout(files)
        layout.addWidget(self.song_title)
        layout.addWidget(self.chart_view, 2)

    # -- sets -----------------------------------------------------------------------------

    def open_set(self, name: str) -> None:
        try:
            self.setlist = self.library.load(name)
        except SetListError as exc:
            self.problem.emit(str(exc))
            self.setlist = SetList(name)
        self._refresh_sets()
        self._refresh_songs()

    def _refresh_sets(self) -> None:
        names = self.library.names()
        if self.setlist.name not in names:
            names.append(self.setlist.name)
        self.set_combo.blockSignals(True)
        self.set_combo.clear()
        self.set_combo.addItems(sorted(names, key=str.casefold))
        self.set_combo.setCurrentText(self.setlist.name)
        self.set_combo.blockSignals(False)

    def _refresh_songs(self, select: int | None = None) -> None:
        current = self.songs.currentRow() if select is None else select
        self.songs.clear()
        for song in self.setlist.songs:
            item = QListWidgetItem()  # an item view draws its text plain
            # A set file may come from anyone: its chart is escaped for the tooltip.
            item.setToolTip(plain_tooltip(song.chart[:400] or "(no chart)"))
            self.songs.addItem(item)
        self._mark_stands()
        if self.setlist.songs and (current >= 0 or select is not None):
            self.songs.setCurrentRow(max(0, min(current, len(self.setlist.songs) - 1)))

    def stands_row(self) -> int | None:
        """The entry whose song is on the stands (the one loaded from here first), if any."""
        if self._stands is None:
            return None
        rows = [i for i, e in enumerate(self.setlist.songs) if _same_song(e, self._stands)]
        return rows[0] if rows else None

    def _mark_stands(self) -> None:
        """Mark the entry on the stands; every other entry reads as usual."""
        stands = self.stands_row()
        for row, song in enumerate(self.setlist.songs):
            item = self.songs.item(row)
            if item is None:
                continue
            on_stands = row == stands
            item.setText(song_text(row + 1, song, on_stands=on_stands))
            font = item.font()
            font.setBold(on_stands)
            item.setFont(font)
        self.publish_set()

    def publish_set(self) -> None:
        """Show this set on the phones when it changed here: an edit, another set, another
        song on the stands, the form played or not (lengths). A set a phone leader sent
        stays until then."""
        shown = stage_set(self.setlist, self.stands_row(), timed=self._bridge.play_form)
        if shown == self._published or self._bridge.console is None:
            return  # (a stopped server gets the set when it starts)
        self._published = shown
        self._bridge.show_set(shown)

    def _on_server_state(self, running: bool) -> None:
        self._published = None
        if running:
            self.publish_set()

    def _save(self) -> None:
        try:
            self.library.save(self.setlist)
        except OSError as exc:
            self.problem.emit(f"Cannot save the set {self.setlist.name!r}: {exc}")

    def _on_set_chosen(self, index: int) -> None:
        self.open_set(self.set_combo.itemText(index))

    def _on_new_set_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "New set", "Name of the set:")
        if not ok or not name.strip():
            return
        if name.strip() in self.library.names():
            self.open_set(name.strip())  # never overwrite a saved set with an empty one
            return
        self.setlist = SetList(name.strip())
        self._save()
        self._refresh_sets()
        self._refresh_songs()

    # -- songs ----------------------------------------------------------------------------

    def add_song(self, song: SetSong) -> None:
        self.setlist.songs.append(song.validated())
        self._save()
        self._refresh_songs(select=len(self.setlist.songs) - 1)

    def _on_add_clicked(self) -> None:
        dialog = SongDialog(parent=self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add_song(dialog.song())

    def _on_edit_clicked(self) -> None:
        row = self.songs.currentRow()
        if row < 0:
            return
        dialog = SongDialog(self.setlist.songs[row], parent=self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.setlist.replace_song(row, dialog.song())
            self._save()
            self._refresh_songs(select=row)

    def _move(self, offset: int) -> None:
        row = self.songs.currentRow()
        if row < 0:
            return
        new_row = self.setlist.move(row, offset)
        if new_row != row:
            self._save()
            self._refresh_songs(select=new_row)

    def _on_delete_clicked(self) -> None:
        row = self.songs.currentRow()
        if row < 0:
            return
        del self.setlist.songs[row]
        self._save()
        self._refresh_songs(select=max(0, row - 1))

    def load_current(self) -> None:
        """Put the selected song on the stands: tempo, meter, count-in and chart for all."""
        row = self.songs.currentRow()
        if 0 <= row < len(self.setlist.songs):
            entry = self.setlist.songs[row]
            if self._bridge.set_song(entry.spec()) is not None:
                self._loaded = Song(entry.title, entry.chart)

    def segue_next(self, at: SegueAt | None = None) -> None:
        """Segue to the song after the one on the stands (or after the selected one): when
        the song playing ends as written (``at=None``: its end with a form, else the next
        bar), or at ``at``. With a segue waiting already, takes it back."""
        session = self._bridge.session
        if session is not None and session.segue is not None:
            self._bridge.segue(None)
            return
        row = self.stands_row()
        row = self.songs.currentRow() if row is None else row
        target = row + 1
        if not 0 <= target < len(self.setlist.songs):
            self.problem.emit("No song after this one in the set to segue to")
            return
        if at is None:
            at = "end" if session is not None and session.form is not None else "bar"
        entry = self.setlist.songs[target]
        if self._bridge.segue(entry.spec(), at) is not None:
            self._loaded = Song(entry.title, entry.chart)

    def step(self, offset: int) -> None:
        """Previous (-1) or next (+1) song, put on the stands at once (PgUp/PgDn)."""
        if not self.setlist.songs:
            return
        row = self.songs.currentRow()
        target = 0 if row < 0 else max(0, min(len(self.setlist.songs) - 1, row + offset))
        self.songs.setCurrentRow(target)
        self.load_current()

    def _save_tempo(self, tempo: float) -> None:
        """The tempo of the song on the stands changed: its entry keeps the new tempo, if
        this panel put the song there (a phone's song of the same name is not this entry)."""
        row = self.stands_row()
        if row is None or self._loaded != self._stands:
            return
        entry = self.setlist.songs[row]
        if entry.tempo_bpm == tempo:
            return
        self.setlist.replace_song(row, replace(entry, tempo_bpm=tempo))
        self._save()
        self._mark_stands()
        self.saved.emit(f"Tempo {tempo_text(tempo)} BPM saved to {entry.title}")

    # -- import / export ------------------------------------------------------------------

    def import_file(self, path: Path) -> None:
        """Import a set from JSON; a bad file is refused whole and changes nothing."""
        try:
            imported = read_set_file(path)
        except SetListError as exc:
            self.problem.emit(f"Cannot import {path.name}: {exc}")
            return
        self.setlist = imported
        self._save()
        self._refresh_sets()
        self._refresh_songs(select=0)

    def export_file(self, path: Path) -> None:
        try:
            write_set_file(self.setlist, path)
        except OSError as exc:
            self.problem.emit(f"Cannot export to {path}: {exc}")

    def _on_import_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import a set", "", "Set lists (*.json)")
        if name:
            self.import_file(Path(name))

    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export the set", f"{self.setlist.name}.json", "Set lists (*.json)"
        )
        if name:
            self.export_file(Path(name))

    # -- ChordPro -------------------------------------------------------------------------

    def import_chordpro_files(self, paths: list[Path]) -> int:
        """Add the songs of ChordPro files and folders to the end of the set, in name order.

        A file that fails is reported by name (``problem``) and adds nothing; the others
        still import. Returns how many songs were added.
        """
        result = import_chordpro(paths)
        for path, reason in result.failures:
            self.problem.emit(f"Cannot import {path.name}: {reason}")
        if not result.songs:
            if not result.failures:
                self.problem.emit("No ChordPro songs there (.cho, .chopro, .crd, .pro, .chordpro)")
            return 0
        first = len(self.setlist.songs)
        self.setlist.songs.extend(song for _, song in result.songs)
        self._save()
        self._refresh_songs(select=first)
        count = len(result.songs)
        self.saved.emit(f"Imported {count} song{'s' if count != 1 else ''} from ChordPro")
        return count

    def export_chordpro_files(
        self, songs: list[SetSong], folder: Path, *, numbered: bool
    ) -> list[Path]:
        """Write ``songs`` as ChordPro files into ``folder`` (numbered in set order when
        ``numbered``); files already there are overwritten only if the leader says so.
        Returns the files written."""
        plan = chordpro_export_plan(songs, folder, numbered=numbered)
        existing = [path for _, path in plan if path.exists()]
        if existing and not self._overwrite_allowed(folder, existing):
            return []
        written = []
        for song, path in plan:
            try:
                write_chordpro(song, path)
            except OSError as exc:
                self.problem.emit(f"Cannot write {path.name}: {exc.strerror or exc}")
                continue
            written.append(path)
        if written:
            count = len(written)
            self.saved.emit(f"Exported {count} song{'s' if count != 1 else ''} to {folder}")
        return written

    def _overwrite_allowed(self, folder: Path, existing: list[Path]) -> bool:
        names = "\n".join(path.name for path in existing[:10])
        more = f"\n… and {len(existing) - 10} more" if len(existing) > 10 else ""
        box = message_box(
            self,
            QMessageBox.Icon.Question,
            "Overwrite songs?",
            f"{len(existing)} of these files are already in {folder}:\n{names}{more}\n\n"
            "Replace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return box.exec() == QMessageBox.StandardButton.Yes

    def _on_import_chordpro_clicked(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self,
            "Import ChordPro songs",
            self._chordpro_folder,
            f"{CHORDPRO_FILTER};;All files (*)",
        )
        if names:
            self._chordpro_folder = str(Path(names[0]).parent)
            self.import_chordpro_files([Path(name) for name in names])

    def _on_import_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Import a folder of ChordPro songs", self._chordpro_folder
        )
        if folder:
            self._chordpro_folder = folder
            self.import_chordpro_files([Path(folder)])

    def _choose_export_folder(self, title: str) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, title, self._chordpro_folder)
        if not folder:
            return None
        self._chordpro_folder = folder
        return Path(folder)

    def _on_export_set_chordpro_clicked(self) -> None:
        if not self.setlist.songs:
            self.problem.emit("The set has no songs to export")
            return
        folder = self._choose_export_folder(f"Export {self.setlist.name} as ChordPro songs")
        if folder is not None:
            self.export_chordpro_files(list(self.setlist.songs), folder, numbered=True)

    def _on_export_song_chordpro_clicked(self) -> None:
        row = self.songs.currentRow()
        if not 0 <= row < len(self.setlist.songs):
            self.problem.emit("Select the song to export")
            return
        song = self.setlist.songs[row]
        folder = self._choose_export_folder(f"Export {song.title} as ChordPro")
        if folder is not None:
            self.export_chordpro_files([song], folder, numbered=False)

    # -- the session ----------------------------------------------------------------------

    def show_session(self, session: Session) -> None:
        song = session.song
        tempo = session.timeline.latest.end_tempo_bpm
        if song != self._stands or not self._seen:
            # Another song on the stands (or none), from here, a phone or a restart: the
            # list shows the phones' song, selected, and no other.
            self._seen = True
            self._stands = song
            self._stands_tempo = tempo
            self._mark_stands()
            row = self.stands_row()
            self.songs.setCurrentRow(-1 if row is None else row)
        elif tempo != self._stands_tempo:
            self._stands_tempo = tempo
            self._save_tempo(tempo)
        title = song.title if song else "no song on the stands"
        if self.song_title.text() != title:
            self.song_title.setText(title)
        chart = song.chart if song else ""
        if self.chart_view.toPlainText() != chart:
            self.chart_view.setPlainText(chart)
