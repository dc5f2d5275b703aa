"""The band's gear: Ableton Link, MIDI clock and OSC, each off until the leader turns it on,
with what each is doing now (Link peers, the MIDI port, OSC targets).

The choices live in a dialog (Server > Gear, or the JOIN panel's Gear button): they are set
before a gig, not during a song. What the gear is doing stays in view as one line of the JOIN
panel (``summary``), so the show's own panels keep the window's room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..actors import GearOptions, host_port
from .gear import KINDS, TITLES, GearControl
from .plaintext import message_box, plain_label, plain_row, set_plain_tooltip
from .sizing import SteadyLabel

LINK_CHOICES = (("Off", None), ("Lead", "lead"), ("Follow", "follow"))
VIRTUAL_PORT = "virtual"
#: The JOIN panel's line names each bridge by these.
SHORT_NAMES = {"link": "Link", "midi-clock": "MIDI", "osc": "OSC"}
#: The widest status the dialog's status column shows (longer ones wrap).
STATUS_WIDEST = ("running · 12 peers · 240.0 BPM",)


def midi_output_ports() -> list[str]:
    """The MIDI output ports this machine has (none when python-rtmidi is missing)."""
    try:
        from ..actors.midiclock import MidiClockOut
    except ImportError:
        return []
    try:
        return list(MidiClockOut.output_ports())
    except Exception:  # no MIDI system at all (no ALSA sequencer, no JACK): nothing to list
        return []


def describe(kind: str, status: Mapping[str, Any]) -> str:
    """One short line of what a bridge is doing, from its ``status()``."""
    state = str(status.get("state", "off"))
    if status.get("error"):
        return f"{state}: {status['error']}" if state != "failed" else f"failed: {status['error']}"
    if state == "off":
        return "off"
    parts: list[str] = []
    if kind == "link":
        peers = status.get("peers")
        if isinstance(peers, int):
            parts.append("1 peer" if peers == 1 else f"{peers} peers")
        tempo = status.get("tempo")
        if isinstance(tempo, (int, float)):
            parts.append(f"{tempo:.1f} BPM")
    elif kind == "midi-clock":
        if status.get("port"):
            parts.append(str(status["port"]))
    elif kind == "osc":
        targets = status.get("targets")
        if isinstance(targets, list):
            parts.append("1 target" if len(targets) == 1 else f"{len(targets)} targets")
        if status.get("listening"):
            parts.append(f"in on {status['listening']}")
    return " · ".join(parts) if parts else state


def brief(kind: str, status: Mapping[str, Any]) -> str:
    """A word or two of ``describe`` for the panel's narrow status column."""
    state = str(status.get("state", "off"))
    if status.get("error"):
        return "failed"
    if kind == "link" and state != "off" and isinstance(status.get("peers"), int):
        peers = int(status["peers"])
        return "1 peer" if peers == 1 else f"{peers} peers"
    return state


def chosen(options: GearOptions, kind: str) -> bool:
    """Whether the leader turned ``kind`` on (it runs while the server does)."""
    if kind == "link":
        return options.link is not None
    if kind == "midi-clock":
        return options.midi_clock is not None
    return bool(options.osc_targets or options.osc_listen)


def summary(options: GearOptions, statuses: Mapping[str, Mapping[str, Any]]) -> str:
    """The JOIN panel's line: "Link 2 peers · MIDI running · OSC off". A bridge chosen while
    the server is stopped reads "at start"."""
    parts = []
    for kind, name in SHORT_NAMES.items():
        status = statuses.get(kind, {"state": "off"})
        word = brief(kind, status)
        if word == "off" and chosen(options, kind):
            word = "at start"
        parts.append(f"{name} {word}")
    return " · ".join(parts)


def summary_tooltip(statuses: Mapping[str, Mapping[str, Any]]) -> str:
    """Every bridge's full status, a line each (the summary's tooltip)."""
    return "\n".join(
        f"{TITLES[kind]}: {describe(kind, statuses.get(kind, {'state': 'off'}))}"
        for kind in SHORT_NAMES
    )


def parse_targets(text: str) -> tuple[tuple[str, int], ...]:
    """``"10.0.0.5:7000, 10.0.0.6:8000"`` as pairs. Raises ``ValueError`` naming a bad one."""
    targets = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            targets.append(host_port(item))
        except Exception as exc:
            raise ValueError(str(exc)) from None
    return tuple(dict.fromkeys(targets))


class OscInDialog(QDialog):
    """Where OSC commands come in, and from which addresses they are accepted."""

    def __init__(self, options: GearOptions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("OSC in")
        self.listen_edit = QLineEdit(
            f"{options.osc_listen[0]}:{options.osc_listen[1]}" if options.osc_listen else ""
        )
        self.listen_edit.setPlaceholderText("off, or e.g. 0.0.0.0:9000")
        self.allow_edit = QLineEdit(", ".join(options.osc_allow))
        self.allow_edit.setPlaceholderText("e.g. 192.168.1.30 (none: every command refused)")
        form = QFormLayout()
        plain_row(form, "Listen on", self.listen_edit)
        plain_row(form, "Accept from", self.allow_edit)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> tuple[tuple[str, int] | None, tuple[str, ...]]:
        """The listen address and the allowed addresses. Raises ``ValueError``."""
        text = self.listen_edit.text().strip()
        listen = host_port(text) if text else None
        allow = tuple(
            dict.fromkeys(a.strip() for a in self.allow_edit.text().split(",") if a.strip())
        )
        return listen, allow


class GearDialog(QDialog):
    """Link, MIDI clock and OSC: a choice and a status line each. Not modal: the leader can
    keep it open beside the show; closing it only hides it (the bridges run on).

    Args:
        gear: the console's gear control (it starts and stops the bridges).
        interactive: False when nobody can answer a dialog (tests, screenshots).
    """

    def __init__(
        self, gear: GearControl, parent: QWidget | None = None, *, interactive: bool = True
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Gear: Ableton Link, MIDI clock, OSC")
        self.setModal(False)
        self._gear = gear
        self._interactive = interactive
        options = gear.options

        self.link_box = QComboBox()
        for text, value in LINK_CHOICES:
            self.link_box.addItem(text, value)
        self.link_box.setCurrentIndex(self.link_box.findData(options.link))
        self.link_box.activated.connect(self._on_link_chosen)
        set_plain_tooltip(
            self.link_box,
            "Ableton Link: lead (Link apps take the band's tempo, beat and bar) or follow "
            "(a Link app such as Live sets the band's tempo)",
        )

        # The ports are listed when the dialog opens: asking ALSA and JACK at every start
        # of the console would cost time (and log noise) for a leader without MIDI gear.
        self.midi_box = QComboBox()
        self.midi_box.setMinimumContentsLength(16)
        self.midi_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self._list_midi_ports(())
        self.midi_box.activated.connect(self._on_midi_chosen)
        set_plain_tooltip(
            self.midi_box, "MIDI clock out: 24 pulses per quarter note, start/stop, song position"
        )

        self.osc_edit = QLineEdit(", ".join(f"{h}:{p}" for h, p in options.osc_targets))
        self.osc_edit.setPlaceholderText("OSC out: host:port, …")
        self.osc_edit.editingFinished.connect(self._on_osc_edited)
        self.osc_in_button = QPushButton("Commands in…")
        self.osc_in_button.setToolTip("Where OSC commands come in, and from whom")
        self.osc_in_button.clicked.connect(self.edit_osc_in)

        self.status_labels = {kind: SteadyLabel("off", STATUS_WIDEST) for kind in KINDS}
        for label in self.status_labels.values():
            label.setObjectName("muted")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setColumnStretch(1, 1)
        osc_row = QHBoxLayout()
        osc_row.addWidget(self.osc_edit, 1)
        osc_row.addWidget(self.osc_in_button)
        rows: tuple[tuple[str, QWidget | QHBoxLayout], ...] = (
            ("Ableton Link", self.link_box),
            ("MIDI clock out", self.midi_box),
            ("OSC", osc_row),
        )
        for number, ((title, field), kind) in enumerate(zip(rows, KINDS, strict=True)):
            grid.addWidget(plain_label(title), number, 0)
            if isinstance(field, QWidget):
                grid.addWidget(field, number, 1)
            else:
                grid.addLayout(field, number, 1)
            grid.addWidget(self.status_labels[kind], number, 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(buttons)
        gear.status_changed.connect(self.show_status)
        self.show_status(gear.statuses())

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh_midi_ports()
        super().showEvent(event)

    def refresh_midi_ports(self) -> None:
        """List Off, the virtual port and this machine's output ports (the choice kept)."""
        self._list_midi_ports(midi_output_ports())

    def _list_midi_ports(self, ports: Sequence[str]) -> None:
        current = self._gear.options.midi_clock
        self.midi_box.clear()
        self.midi_box.addItem("Off", None)
        self.midi_box.addItem("Virtual “BandSync”", VIRTUAL_PORT)
        for port in ports:
            self.midi_box.addItem(port, port)
        if current is not None and self.midi_box.findData(current) < 0:
            self.midi_box.addItem(f"{current} (not found)", current)
        self.midi_box.setCurrentIndex(max(0, self.midi_box.findData(current)))

    def show_status(self, statuses: Mapping[str, Mapping[str, Any]]) -> None:
        for kind, label in self.status_labels.items():
            status = statuses.get(kind, {"state": "off"})
            text = describe(kind, status)
            if text == "off" and chosen(self._gear.options, kind):
                text = "starts with the server"
            if label.text() != text:
                label.setText(text)

    def edit_osc_in(self) -> None:
        dialog = OscInDialog(self._gear.options, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            listen, allow = dialog.values()
        except Exception as exc:
            self._refuse(str(exc))
            return
        self._gear.choose(osc_listen=listen, osc_allow=allow)

    def _on_link_chosen(self, index: int) -> None:
        self._gear.set_link(self.link_box.itemData(index))

    def _on_midi_chosen(self, index: int) -> None:
        self._gear.choose(midi_clock=self.midi_box.itemData(index))

    def _on_osc_edited(self) -> None:
        try:
            targets = parse_targets(self.osc_edit.text())
        except ValueError as exc:
            self._refuse(str(exc))
            return
        if targets != self._gear.options.osc_targets:
            self._gear.choose(osc_targets=targets)

    def _refuse(self, text: str) -> None:
        self._gear.problem.emit(f"OSC: {text}")
        if self._interactive:
            message_box(self, QMessageBox.Icon.Warning, "Not an address", text).exec()
