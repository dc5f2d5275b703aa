"""ChordPro songs into the set list and out again: files, folders, bad files, safe names.

The logic functions are driven directly; the panel is driven offscreen with pytest-qt, only
the file dialog's answer monkeypatched (the overwrite question is a real message box,
answered by clicking it).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from pytestqt.qtbot import QtBot

from bandsync_desktop.config import Settings
from bandsync_desktop.core import chordpro, validation
from bandsync_desktop.core.errors import ValidationError
from bandsync_desktop.gui.bridge import Bridge
from bandsync_desktop.gui.setlist import (
    SetLibrary,
    SetSong,
    chordpro_export_plan,
    import_chordpro,
    read_chordpro_file,
    safe_file_stem,
    write_chordpro,
)
from bandsync_desktop.gui.setlist_panel import SetListPanel

FIRST = "{title: First Light}\n{tempo: 96}\n{time: 4/4}\n{sov}\n| C | G |\n"
SECOND = "{t: Second Wind}\n{tempo: 138}\n{time: 3/4}\n{x_count_in: 0}\n| D | G | A |\n"
LAST = "{title: Last Call}\n{tempo: 72.5}\n{time: 6/8}\n[Chorus]\n[Em]Last [C]call\n"
WINDOWS = "\ufeff{title: Windows Song}\r\n{tempo: 100}\r\nG\tC\tD\r\n"


def folder_of_songs(root: Path) -> Path:
    """A folder as a musician has one: songs, a text file, a macOS resource file, a bad
    encoding, a bad directive, a huge file, one without a title, and a subfolder."""
    songs = root / "songs"
    (songs / "old").mkdir(parents=True)
    (songs / "10 Last.cho").write_text(LAST, encoding="utf-8")
    (songs / "2 Second.CHOPRO").write_text(SECOND, encoding="utf-8")
    (songs / "1 First.cho").write_text(FIRST, encoding="utf-8")
    (songs / "Windows.chordpro").write_bytes(WINDOWS.encode("utf-8"))
    (songs / "no_title.pro").write_text("| Am | F |\n", encoding="utf-8")
    (songs / "notes.txt").write_text("not a song", encoding="utf-8")
    (songs / "._1 First.cho").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (songs / "latin1.crd").write_bytes("{title: Déjà vu}\n| C |\n".encode("latin-1"))
    (songs / "too-fast.cho").write_text("{title: Too fast}\n{tempo: 400}\n", encoding="utf-8")
    (songs / "huge.cho").write_bytes(b"| C |\n" * (chordpro.MAX_FILE_BYTES // 6 + 10))
    (songs / "old" / "Old.cho").write_text("{title: Old}\n", encoding="utf-8")
    return songs


def test_a_folder_imports_its_chordpro_songs_in_name_order(tmp_path: Path) -> None:
    result = import_chordpro([folder_of_songs(tmp_path)])
    assert [path.name for path, _ in result.songs] == [
        "1 First.cho",
        "2 Second.CHOPRO",
        "10 Last.cho",  # numbers by value: 10 after 2
        "no_title.pro",
        "Windows.chordpro",
    ]
    songs = [song for _, song in result.songs]
    assert songs[0] == SetSong("First Light", 96.0, 4, 4, 1, FIRST.rstrip("\n"))
    assert songs[1] == SetSong("Second Wind", 138.0, 3, 4, 0, SECOND.rstrip("\n"))
    assert (songs[2].title, songs[2].tempo_bpm, songs[2].meter_text) == ("Last Call", 72.5, "6/8")
    assert songs[3] == SetSong("no_title", 120.0, 4, 4, 1, "| Am | F |")  # the defaults
    assert songs[4].chart == "{title: Windows Song}\n{tempo: 100}\nG\tC\tD"
    failures = {path.name: reason for path, reason in result.failures}
    assert set(failures) == {"latin1.crd", "too-fast.cho", "huge.cho"}
    assert "line 1 is not UTF-8 text" in failures["latin1.crd"]
    assert "line 2: tempo must be between 20 and 280" in failures["too-fast.cho"]
    assert "a chart is at most 20000 characters" in failures["huge.cho"]


def test_chosen_files_import_as_given_sorted_by_name(tmp_path: Path) -> None:
    songs = folder_of_songs(tmp_path)
    chosen = [songs / "10 Last.cho", songs / "notes.txt", songs / "1 First.cho"]
    result = import_chordpro(chosen)
    # a file the leader picked is read whatever its name: this one is a one-line chart
    assert [path.name for path, _ in result.songs] == ["1 First.cho", "10 Last.cho", "notes.txt"]
    missing = import_chordpro([tmp_path / "gone.cho"])
    assert missing.songs == [] and "cannot read it" in missing.failures[0][1]


def test_a_song_from_chordpro_takes_its_directives_or_the_defaults() -> None:
    bare = SetSong.from_chordpro("C G Am F", fallback_title="  file   name ")
    assert bare == SetSong("file name", 120.0, 4, 4, 1, "C G Am F")
    long_title = SetSong.from_chordpro("{title: " + "x" * 200 + "}", fallback_title="f")
    assert len(long_title.title) == validation.TITLE_MAX and long_title.title.endswith("…")
    with pytest.raises(ValidationError, match="beatUnit"):
        SetSong.from_chordpro("{time: 5/3}", fallback_title="f")


def test_export_and_import_again_is_a_fixed_point(tmp_path: Path) -> None:
    songs = [song for _, song in import_chordpro([folder_of_songs(tmp_path)]).songs]
    songs.append(SetSong("Console song", 96.33333333333333, 7, 8, 2, "| C | G |"))
    out = tmp_path / "out"
    plan = chordpro_export_plan(songs, out, numbered=True)
    for song, path in plan:
        write_chordpro(song, path)
    again = [song for _, song in import_chordpro([out]).songs]
    assert [(s.title, s.tempo_bpm, s.meter_text, s.count_in_bars) for s in again] == [
        (s.title, s.tempo_bpm, s.meter_text, s.count_in_bars) for s in songs
    ]
    assert again[:3] == songs[:3]  # files that had their directives come back unchanged
    texts = {path.name: path.read_text(encoding="utf-8") for _, path in plan}
    for song, path in chordpro_export_plan(again, out, numbered=True):
        write_chordpro(song, path)
    assert {path.name: path.read_text(encoding="utf-8") for _, path in plan} == texts
    assert texts["06 Console song.cho"] == (
        "{title: Console song}\n{tempo: 96.33333333333333}\n{time: 7/8}\n{x_count_in: 2}\n"
        "| C | G |\n"
    )
    assert read_chordpro_file(out / "01 First Light.cho") == songs[0]


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("Autumn Leaves", "Autumn Leaves"),
        ("AC/DC: Back in Black?", "AC-DC- Back in Black-"),
        ('a<b>c"d|e*f\\g', "a-b-c-d-e-f-g"),
        ("Café Ünïcode 日本", "Café Ünïcode 日本"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("..hidden", "hidden"),
        ("trailing dots...", "trailing dots"),
        ("   ", "song"),
        ("gnos\u202eohc.exe", "gnosohc.exe"),  # no text-direction tricks in a file name
        ("tab\tand\nnewline", "tabandnewline"),
        ("x" * 200, "x" * 80),
    ],
)
def test_file_names_from_titles_are_safe(title: str, stem: str) -> None:
    assert safe_file_stem(title) == stem


def test_export_plan_numbers_a_set_and_never_shares_a_file(tmp_path: Path) -> None:
    songs = [SetSong("Waltz"), SetSong("waltz"), SetSong("Waltz"), SetSong("A/B")]
    plan = chordpro_export_plan(songs, tmp_path, numbered=False)
    assert [path.name for _, path in plan] == [
        "Waltz.cho",
        "waltz (2).cho",
        "Waltz (3).cho",
        "A-B.cho",
    ]
    many = chordpro_export_plan([SetSong(f"S{i}") for i in range(120)], tmp_path, numbered=True)
    assert many[0][1].name == "001 S0.cho" and many[-1][1].name == "120 S119.cho"


# -- the panel ---------------------------------------------------------------------------------


@pytest.fixture
def panel(qtbot: QtBot, tmp_path: Path) -> Iterator[SetListPanel]:
    """The set-list panel on its own (no server: importing and exporting need none)."""
    bridge = Bridge(Settings(host="127.0.0.1", port=0))
    widget = SetListPanel(bridge, SetLibrary(tmp_path / "sets"))
    qtbot.addWidget(widget)
    widget.open_set("Gig")
    widget.show()
    yield widget


def answer_dialogs(monkeypatch: pytest.MonkeyPatch, **answers: Any) -> list[str]:
    """The file dialog answers as the leader would; returns the dialogs' titles asked."""
    asked: list[str] = []

    def dialog(name: str) -> Callable[..., Any]:
        def ask(parent: Any, caption: str = "", *args: Any, **kwargs: Any) -> Any:
            asked.append(caption)
            return answers[name]

        return ask

    for name in answers:
        monkeypatch.setattr(QFileDialog, name, staticmethod(dialog(name)))
    return asked


def click_in_next_message_box(qtbot: QtBot, button: QMessageBox.StandardButton) -> list[str]:
    """Answer the next message box by clicking ``button``; returns what it said."""
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        assert box.textFormat() == Qt.TextFormat.PlainText  # names from disk, shown plain
        seen.append(box.text())
        qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, answer)
    return seen


def test_the_import_menu_adds_chosen_files_and_reports_bad_ones_by_name(
    panel: SetListPanel, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    songs = folder_of_songs(tmp_path)
    panel.add_song(SetSong("Already there"))
    chosen = [str(songs / n) for n in ("10 Last.cho", "latin1.crd", "1 First.cho")]
    asked = answer_dialogs(monkeypatch, getOpenFileNames=(chosen, ""))
    problems: list[str] = []
    saved: list[str] = []
    panel.problem.connect(problems.append)
    panel.saved.connect(saved.append)
    panel.import_chordpro_action.trigger()
    assert asked == ["Import ChordPro songs"]
    assert [s.title for s in panel.setlist.songs] == ["Already there", "First Light", "Last Call"]
    assert problems == [
        "Cannot import latin1.crd: line 1 is not UTF-8 text (byte 0xE9): save the file as UTF-8"
    ]
    assert saved == ["Imported 2 songs from ChordPro"]
    assert panel.songs.currentRow() == 1  # the first imported song is selected
    assert panel.songs.item(1).text().startswith("2. First Light   96 BPM · 4/4")
    assert panel.library.load("Gig").songs == panel.setlist.songs  # saved at once


def test_a_folder_imports_whole_and_a_set_of_bad_files_adds_nothing(
    panel: SetListPanel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    songs = folder_of_songs(tmp_path)
    answer_dialogs(monkeypatch, getExistingDirectory=str(songs))
    panel.import_folder_action.trigger()
    assert [s.title for s in panel.setlist.songs] == [
        "First Light",
        "Second Wind",
        "Last Call",
        "no_title",
        "Windows Song",
    ]
    before = list(panel.setlist.songs)
    saved_before = panel.library.path_of("Gig").read_bytes()
    problems: list[str] = []
    panel.problem.connect(problems.append)
    bad = [str(songs / n) for n in ("latin1.crd", "too-fast.cho", "huge.cho")]
    answer_dialogs(monkeypatch, getOpenFileNames=(bad, ""))
    panel.import_chordpro_action.trigger()
    assert panel.setlist.songs == before and panel.songs.count() == 5
    assert panel.library.path_of("Gig").read_bytes() == saved_before
    assert [p.split(":")[0] for p in problems] == [
        "Cannot import huge.cho",
        "Cannot import latin1.crd",
        "Cannot import too-fast.cho",
    ]
    answer_dialogs(monkeypatch, getExistingDirectory="")  # the leader cancels
    panel.import_folder_action.trigger()
    assert panel.setlist.songs == before


def test_titles_from_files_show_as_plain_text(
    panel: SetListPanel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = tmp_path / "hostile.cho"
    title = '<img src="file:///dev/zero"><b>HACKED</b>'
    hostile.write_text(f"{{title: {title}}}\n<i>chart</i> | C |\n", encoding="utf-8")
    answer_dialogs(monkeypatch, getOpenFileNames=([str(hostile)], ""))
    panel.import_chordpro_action.trigger()
    item = panel.songs.item(0)
    assert title in item.text()
    assert "&lt;i&gt;chart&lt;/i&gt;" in item.toolTip()  # the chart escaped in its tooltip


def test_export_writes_the_set_into_a_folder_and_asks_before_overwriting(
    panel: SetListPanel, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel.add_song(SetSong("Opener", 96.0, 4, 4, 1, "C G Am F"))
    panel.add_song(SetSong("<b>Waltz</b>", 138.0, 3, 4, 0, "| D | G | A |"))
    out = tmp_path / "export"
    out.mkdir()
    asked = answer_dialogs(monkeypatch, getExistingDirectory=str(out))
    saved: list[str] = []
    panel.saved.connect(saved.append)
    panel.export_chordpro_action.trigger()
    assert asked == ["Export Gig as ChordPro songs"]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["01 Opener.cho", "02 -b-Waltz--b-.cho"]
    assert (out / "01 Opener.cho").read_text(encoding="utf-8") == (
        "{title: Opener}\n{tempo: 96}\n{time: 4/4}\nC G Am F\n"
    )
    assert saved == [f"Exported 2 songs to {out}"]

    # the leader edited one file since: a second export asks, and "No" keeps it
    (out / "01 Opener.cho").write_text("{title: Opener}\nmy edits\n", encoding="utf-8")
    said = click_in_next_message_box(qtbot, QMessageBox.StandardButton.No)
    panel.export_chordpro_action.trigger()
    assert said and "2 of these files are already in" in said[0]
    assert "02 -b-Waltz--b-.cho" in said[0]
    assert (out / "01 Opener.cho").read_text(encoding="utf-8") == "{title: Opener}\nmy edits\n"
    assert len(saved) == 1

    said = click_in_next_message_box(qtbot, QMessageBox.StandardButton.Yes)
    panel.export_chordpro_action.trigger()
    assert said
    assert (out / "01 Opener.cho").read_text(encoding="utf-8").endswith("C G Am F\n")
    assert sorted(p.name for p in out.iterdir()) == files  # no temporary files left


def test_export_the_selected_song(
    panel: SetListPanel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems: list[str] = []
    panel.problem.connect(problems.append)
    panel.export_song_action.trigger()
    assert problems == ["Select the song to export"]
    panel.add_song(SetSong("Opener", 96.0, 4, 4, 1, "C G Am F"))
    panel.add_song(SetSong("Closer", 120.0, 2, 2, 1, "| C |"))
    panel.songs.setCurrentRow(1)
    answer_dialogs(monkeypatch, getExistingDirectory=str(tmp_path))
    panel.export_song_action.trigger()
    assert (tmp_path / "Closer.cho").read_text(encoding="utf-8") == (
        "{title: Closer}\n{tempo: 120}\n{time: 2/2}\n| C |\n"
    )
    assert not (tmp_path / "Opener.cho").exists()


def test_the_buttons_open_the_menus(panel: SetListPanel) -> None:
    assert panel.import_button.menu() is panel.import_menu
    assert [a.text() for a in panel.import_menu.actions()] == [
        "Set list (JSON)…",
        "ChordPro songs…",
        "Folder of ChordPro songs…",
    ]
    assert [a.text() for a in panel.export_menu.actions()] == [
        "Set list (JSON)…",
        "Set as ChordPro songs…",
        "Selected song as ChordPro…",
    ]


def test_a_utf16_file_with_a_bom_imports(tmp_path: Path) -> None:
    path = tmp_path / "notepad.cho"
    path.write_bytes(codecs.BOM_UTF16_LE + "{title: Notepad}\r\n| C |\r\n".encode("utf-16-le"))
    assert read_chordpro_file(path) == SetSong("Notepad", 120.0, 4, 4, 1, "{title: Notepad}\n| C |")
