"""Tempo and transport: the big tempo, tap tempo, meter, count-in, play/pause/stop/seek and
the visual metronome. Everything shown is computed from the session's timeline, the same
one the phones use, at the server's clock."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QValidator
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.clock import Clock
from ..core.session import Session, Song
from ..core.timeline import Boundary, bar_beat
from ..core.validation import (
    BEATS_PER_BAR_MAX,
    BEATS_PER_BAR_MIN,
    COUNT_IN_MAX_BARS,
    TEMPO_MAX,
    TEMPO_MIN,
)
from . import theme
from .bridge import Bridge, bar_start, format_position
from .plaintext import plain_label
from .sizing import SteadyLabel
from .taptempo import TapTempo

PENDING_TEXT = "BPM · not sent yet"  # taps or arrow presses still settling

FRAME_MS = 16  # metronome/position refresh while playing (about 60 Hz)
SEEK_RANGE_MIN_S = 300  # the seek slider spans at least five minutes when the length is unknown
BEAT_UNITS = (2, 4, 8, 16)
SETTLE_MS = 600  # taps and arrow presses this close together make one tempo change
# Where a settled tap/arrow change lands while playing: the next beat. A bar would wait up to
# a whole bar after the leader stopped tapping (2 s at 120 BPM in 4/4); the next beat keeps
# the change close to the leader's hands, and the click never stutters mid-beat.
SETTLED_BOUNDARY: Boundary = "beat"


def _button(text: str, name: str = "", tip: str = "") -> QPushButton:
    button = QPushButton(text)
    if name:
        button.setObjectName(name)
    if tip:
        button.setToolTip(tip)
    # Buttons never take keyboard focus: Space, Up/Down and T belong to the window shortcuts.
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return button


def tempo_text(bpm: float) -> str:
    """A tempo as the console shows it: whole BPM as is, else one decimal."""
    return f"{round(bpm, 1):g}"


def count_in_text(bars: int) -> str:
    """ "no count-in", "1-bar count-in", "2-bar count-in"."""
    return "no count-in" if bars == 0 else f"{bars}-bar count-in"


def chart_bars(chart: str) -> int:
    """Bars in a chart, counted by its bar lines: ``| Am | F |`` is two bars.

    Until songs carry a length of their own, the bar lines are the only length a chart
    has; a chart without them has no known length (0).
    """
    bars = 0
    for line in chart.splitlines():
        if "|" in line:
            bars += sum(1 for cell in line.split("|") if cell.strip())
    return bars


def song_length_ms(session: Session) -> float | None:
    """The song's length at its current tempo and meter, where its chart tells it."""
    song = session.song
    bars = chart_bars(song.chart) if song is not None else 0
    if bars == 0:
        return None
    latest = session.timeline.latest
    return bars * latest.beats_per_bar * latest.beat_ms


class CountInBox(QSpinBox):
    """Count-in bars (0-4) that read as words: "no count-in", "1-bar count-in"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0, COUNT_IN_MAX_BARS)

    def textFromValue(self, value: int) -> str:
        return count_in_text(value)

    def valueFromText(self, text: str) -> int:
        digits = "".join(ch for ch in text if ch.isdigit())
        return int(digits) if digits else 0

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        words = {count_in_text(bars) for bars in range(self.maximum() + 1)}
        stripped = text.strip()
        if stripped in words or (stripped.isdigit() and int(stripped) <= self.maximum()):
            return QValidator.State.Acceptable, text, pos
        if not stripped or any(word.startswith(stripped) for word in words):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos


class TempoPanel(QGroupBox):
    """The tempo: a big number, -/+ (shift for 5), a slider, typed entry and tap tempo.

    Taps, arrow keys and -/+ change the tempo shown at once (a pending tempo) and send one
    change to the band once they settle (``SETTLE_MS`` after the last), at the next beat.

    Signals:
        entry_done(): Enter committed a typed tempo; the keyboard goes back to the window.
    """

    entry_done = Signal()

    def __init__(self, bridge: Bridge, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__("TEMPO", parent)
        self._bridge = bridge
        self.tap_tempo = TapTempo(clock)
        self._updating = False
        self._pending: float | None = None
        self._tapped: float | None = None
        self._song: Song | None = None
        self._settle_timer = QTimer(self)
        self._settle_timer.setSingleShot(True)
        self._settle_timer.setInterval(SETTLE_MS)
        self._settle_timer.timeout.connect(self._send_pending)

        self.value_label = SteadyLabel("120", ["288.8"])
        self.value_label.setObjectName("tempo")
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.bpm_label = SteadyLabel("BPM", ["BPM", PENDING_TEXT])
        self.bpm_label.setObjectName("bpm")
        self.bpm_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.minus_button = _button("−", "nudge", "Slower by 1 BPM (Shift: 5) — Down arrow")
        self.plus_button = _button("+", "nudge", "Faster by 1 BPM (Shift: 5) — Up arrow")
        self.tap_button = _button("TAP", "tap", "Tap the beat (T); a pause starts over")
        self.minus_button.clicked.connect(lambda: self._on_nudge_clicked(-1))
        self.plus_button.clicked.connect(lambda: self._on_nudge_clicked(+1))
        self.tap_button.clicked.connect(self.tap)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(TEMPO_MIN), int(TEMPO_MAX))
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.sliderReleased.connect(self._on_slider_released)
        self.slider.valueChanged.connect(self._on_slider_moved)

        self.entry = QSpinBox()
        self.entry.setRange(int(TEMPO_MIN), int(TEMPO_MAX))
        self.entry.setKeyboardTracking(False)
        self.entry.setSuffix(" BPM")
        self.entry.setToolTip("Type a tempo and press Enter")
        self.entry.editingFinished.connect(self._on_entry_finished)
        self.entry.lineEdit().returnPressed.connect(self.entry_done)

        self.tap_info = SteadyLabel("", ["tap again…", "tapped 288 BPM (8 taps)"])
        self.tap_info.setObjectName("muted")
        self.tap_info.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # The number alone on its line (it is what the band leader reads from a distance);
        # the controls that change it on one line below.
        controls = QHBoxLayout()
        controls.addWidget(self.minus_button)
        controls.addWidget(self.entry)
        controls.addWidget(self.plus_button)
        controls.addWidget(self.tap_button, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.value_label)
        layout.addWidget(self.bpm_label)
        layout.addWidget(self.slider)
        layout.addLayout(controls)
        layout.addWidget(self.tap_info)

    @property
    def pending(self) -> float | None:
        """The tempo shown but not sent yet (taps or arrows still settling), if any."""
        return self._pending

    def show_session(self, session: Session) -> None:
        tempo = session.timeline.latest.end_tempo_bpm
        if session.song != self._song:
            # Another song is on the stands: its tempo wins over taps meant for the last one.
            self._song = session.song
            self._cancel_pending()
            self.tap_tempo.reset()
            self._forget_tap()
        elif self._tapped is not None and self._pending is None:
            # The tempo moved on (typed, a phone's): the tapped figure is stale. (A tapped
            # tempo on its way to the server is the requested one, not yet the session's.)
            requested = self._bridge.current_tempo()
            if (requested if requested is not None else tempo) != self._tapped:
                self._forget_tap()
        self._updating = True
        try:
            if self._pending is None:
                self.value_label.setText(tempo_text(tempo))
            if not self.slider.isSliderDown():
                self.slider.setValue(round(self._pending if self._pending is not None else tempo))
            if not self.entry.hasFocus():
                self.entry.setValue(round(tempo))
        finally:
            self._updating = False

    def tap(self) -> None:
        """One tap; from the second on, the tapped tempo shows, and goes to everyone once
        the taps settle."""
        bpm = self.tap_tempo.tap()
        if bpm is None:
            self.tap_info.setText("tap again…")
            return
        self._tapped = bpm
        self.tap_info.setText(f"tapped {tempo_text(bpm)} BPM ({self.tap_tempo.count} taps)")
        self.propose(bpm)

    def nudge(self, delta: float) -> None:
        """The shown tempo plus ``delta`` BPM; sent once the presses settle."""
        base = self._pending if self._pending is not None else self._bridge.current_tempo()
        if base is None:
            self._bridge.nudge_tempo(delta)  # says why nothing changes (server stopped)
            return
        self.propose(max(TEMPO_MIN, min(TEMPO_MAX, round(base + delta, 1))))

    def propose(self, bpm: float) -> None:
        """Show ``bpm`` now; send it ``SETTLE_MS`` after the last proposal."""
        self._pending = bpm
        self.value_label.setText(tempo_text(bpm))
        self.bpm_label.setText(PENDING_TEXT)
        self._updating = True
        try:
            self.slider.setValue(round(bpm))
        finally:
            self._updating = False
        self._settle_timer.start()  # a restart: the last press counts

    def _send_pending(self) -> None:
        bpm = self._pending
        self._cancel_pending()
        if bpm is None:
            return
        current = self._bridge.current_tempo()
        if current is None or bpm != current:
            self._bridge.set_tempo(bpm, SETTLED_BOUNDARY)
        session = self._bridge.session
        if session is not None:
            self.show_session(session)  # the session's tempo until the change is published

    def _cancel_pending(self) -> None:
        self._settle_timer.stop()
        self._pending = None
        self.bpm_label.setText("BPM")

    def _forget_tap(self) -> None:
        self._tapped = None
        self.tap_info.setText("")

    def _on_nudge_clicked(self, direction: int) -> None:
        shift = bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.nudge(direction * (5 if shift else 1))

    def _on_slider_moved(self, value: int) -> None:
        if self._updating:
            return
        if self.slider.isSliderDown():
            self.value_label.setText(str(value))  # a preview; sent on release
        else:
            self.propose(float(value))  # clicks on the groove settle like taps

    def _on_slider_released(self) -> None:
        self._cancel_pending()
        self._bridge.set_tempo(float(self.slider.value()))

    def _on_entry_finished(self) -> None:
        if self._updating:
            return
        value = float(self.entry.value())
        if value != self._bridge.current_tempo():
            self._cancel_pending()  # a typed tempo wins over taps still settling
            self._bridge.set_tempo(value)


class MetronomeWidget(QWidget):
    """One light per beat of the bar; the current one flashes, the downbeat is accented."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.beats_per_bar = 4
        self.current: int | None = None  # 0-based beat in the bar being lit
        self.flash = 0.0  # 1 at the beat, fading to 0 over the beat
        self.counting_in = False
        self.setMinimumHeight(72)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # It paints its own background: a flash repaints this widget only, not the styled
        # panel behind it (style-sheet painting of the parent cost more than the lights).
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_state(
        self, beats_per_bar: int, current: int | None, flash: float, counting_in: bool
    ) -> None:
        flash = round(flash * 8) / 8  # repaint only when the light visibly changes
        state = (beats_per_bar, current, flash, counting_in)
        if state != (self.beats_per_bar, self.current, self.flash, self.counting_in):
            self.beats_per_bar, self.current, self.flash, self.counting_in = state
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.PANEL))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        count = max(1, self.beats_per_bar)
        gap = 12.0
        size = min(self.height() - 10.0, (self.width() - gap * (count - 1)) / count)
        total = count * size + (count - 1) * gap
        x = (self.width() - total) / 2
        y = (self.height() - size) / 2
        for index in range(count):
            downbeat = index == 0
            base = QColor(theme.ACCENT if downbeat else theme.BEAT)
            lit = index == self.current
            colour = QColor(base)
            if lit:
                colour = colour.lighter(100 + int(60 * self.flash))
            else:
                colour.setAlpha(45)
            if self.counting_in and lit:
                colour = QColor(theme.TEXT)
            painter.setBrush(colour)
            painter.setPen(Qt.PenStyle.NoPen if not downbeat else QColor(theme.ACCENT))
            shrink = 0.0 if downbeat else size * 0.15
            rect = QRectF(x + shrink / 2, y + shrink / 2, size - shrink, size - shrink)
            painter.drawEllipse(rect)
            x += size + gap
        painter.end()


class TransportPanel(QGroupBox):
    """Play/pause/stop, count-in, meter, bar:beat and mm:ss, seek slider, metronome."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__("TRANSPORT", parent)
        self._bridge = bridge
        self._updating = False

        self.metronome = MetronomeWidget()
        self.bar_beat_label = SteadyLabel("1 : 1", ["count-in 4", "888 : 16"])
        self.bar_beat_label.setObjectName("barbeat")
        self.bar_beat_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.clock_label = SteadyLabel("00:00.0", ["88:88.8"])
        self.clock_label.setObjectName("clock")
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.phase_label = SteadyLabel("stopped", ["counting in"])
        self.phase_label.setObjectName("muted")
        self.phase_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

        self.play_button = _button("▶  Play", "play", "Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(self._on_play_clicked)
        self.stop_button = _button("■  Stop", "stop", "Stop and go to the top (Esc)")
        self.stop_button.clicked.connect(self._bridge.stop_transport)

        self.count_in = CountInBox()
        self.count_in.setToolTip("Count-in before play starts (0-4 bars)")
        self.count_in.valueChanged.connect(self._on_count_in_changed)
        self.beats = QSpinBox()
        self.beats.setRange(BEATS_PER_BAR_MIN, BEATS_PER_BAR_MAX)
        self.beats.setToolTip("Meter: beats per bar")
        self.beats.valueChanged.connect(self._on_meter_changed)
        self.unit = QComboBox()
        for unit in BEAT_UNITS:
            self.unit.addItem(str(unit), unit)
        self.unit.setCurrentIndex(1)
        self.unit.setToolTip("Meter: beat unit")
        self.unit.currentIndexChanged.connect(self._on_meter_changed)

        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, SEEK_RANGE_MIN_S * 10)
        self.seek_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.seek_slider.setToolTip("Drag to seek (to the nearest bar line)")
        self.seek_slider.sliderReleased.connect(self._on_seek_released)
        self.seek_slider.sliderMoved.connect(self._on_seek_moved)
        self._length_ms: float | None = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button, 2)
        buttons.addWidget(self.stop_button, 1)
        # "4 / 4" needs no label for a musician (the tooltips say it), and the count-in box
        # says what it is ("1-bar count-in"): the row fits a laptop's narrow column.
        settings = QHBoxLayout()
        settings.addWidget(self.beats)
        settings.addWidget(plain_label("/"))
        settings.addWidget(self.unit)
        settings.addStretch(1)
        settings.addWidget(self.count_in)
        layout = QVBoxLayout(self)
        layout.addWidget(self.metronome)
        layout.addWidget(self.bar_beat_label)
        position = QHBoxLayout()
        position.addWidget(self.phase_label, 1)
        position.addWidget(self.clock_label)
        layout.addLayout(position)
        layout.addWidget(self.seek_slider)
        layout.addLayout(buttons)
        layout.addLayout(settings)

        self._frame_timer = QTimer(self)
        self._frame_timer.setInterval(FRAME_MS)
        self._frame_timer.timeout.connect(self.refresh_position)

    def add_row(self, widget: QWidget) -> None:
        """Another row under the transport's own (the leader's calls on the song's form)."""
        layout = self.layout()
        assert layout is not None
        layout.addWidget(widget)

    def show_session(self, session: Session) -> None:
        latest = session.timeline.latest
        self._updating = True
        try:
            self.play_button.setChecked(latest.playing)
            self.play_button.setText("❚❚  Pause" if latest.playing else "▶  Play")
            if not self.count_in.hasFocus():
                self.count_in.setValue(session.count_in_bars)
            if not self.beats.hasFocus():
                self.beats.setValue(latest.beats_per_bar)
            index = self.unit.findData(latest.beat_unit)
            if index >= 0:
                self.unit.setCurrentIndex(index)
            self._set_length(song_length_ms(session))
        finally:
            self._updating = False
        if latest.playing and not self._frame_timer.isActive():
            self._frame_timer.start()
        self.refresh_position()

    def refresh_position(self) -> None:
        """Bar:beat, mm:ss, seek slider and metronome at the server's now."""
        session = self._bridge.session
        now = self._bridge.now_ms()
        if session is None or now is None:
            self._frame_timer.stop()
            return
        timeline = session.timeline
        segment = timeline.segment_at(now)
        beat = segment.beat_at(now)
        position = timeline.position_at(now)
        counting_in = timeline.counting_in_at(now)
        playing = segment.playing
        bb = bar_beat(beat, segment.beats_per_bar)
        dragging = self.seek_slider.isSliderDown()  # the labels show where the drag lands
        if counting_in:
            remaining = math.ceil((segment.anchor_ms - now) / segment.beat_ms - 1e-6)
            if not dragging:
                self.bar_beat_label.setText(f"count-in {remaining}")
            self.phase_label.setText("counting in")
        else:
            if not dragging:
                self.bar_beat_label.setText(f"{bb.bar} : {bb.beat}")
            self.phase_label.setText("playing" if playing else "stopped")
        if not self.seek_slider.isSliderDown():
            self.clock_label.setText(format_position(position))
            tenths = int(position // 100)
            if self._length_ms is None:
                top = max(self.seek_slider.maximum(), tenths + 600)  # room to seek ahead
            else:
                top = max(self.seek_slider.maximum(), tenths)  # past the end: keep it in view
            if top != self.seek_slider.maximum():
                self.seek_slider.setMaximum(top)
            self.seek_slider.setValue(tenths)
        if playing:
            self.metronome.set_state(
                segment.beats_per_bar, bb.beat - 1, 1.0 - bb.fraction, counting_in
            )
        else:
            self.metronome.set_state(segment.beats_per_bar, None, 0.0, False)
            if not timeline.latest.playing:
                self._frame_timer.stop()

    def _set_length(self, length_ms: float | None) -> None:
        """The slider spans the song where its length is known, else five minutes (or more)."""
        if length_ms == self._length_ms:
            return
        self._length_ms = length_ms
        if self.seek_slider.isSliderDown():
            return
        if length_ms is None:
            self.seek_slider.setMaximum(SEEK_RANGE_MIN_S * 10)
            self.seek_slider.setToolTip("Drag to seek (to the nearest bar line)")
        else:
            self.seek_slider.setMaximum(max(1, math.ceil(length_ms / 100.0)))
            self.seek_slider.setToolTip(
                f"Drag to seek to a bar line (the song: {format_position(length_ms)})"
            )

    def _on_play_clicked(self) -> None:
        self._bridge.toggle_play()
        session = self._bridge.session
        # The button shows the session's state, not the click, until the change is published.
        self.play_button.setChecked(bool(session and session.timeline.latest.playing))

    def _on_count_in_changed(self, bars: int) -> None:
        if not self._updating:
            self._bridge.set_count_in(bars)

    def _on_meter_changed(self, *_: object) -> None:
        if not self._updating:
            self._bridge.set_meter(self.beats.value(), int(self.unit.currentData()))

    def seek_target(self, tenths: int) -> float | None:
        """Where a seek to slider value ``tenths`` lands: the nearest bar line (ms)."""
        session = self._bridge.session
        now = self._bridge.now_ms()
        if session is None or now is None:
            return None
        return bar_start(tenths * 100.0, session, now)

    def _on_seek_moved(self, tenths: int) -> None:
        """While dragging: the bar and time the band will jump to, not the raw position."""
        target = self.seek_target(tenths)
        session = self._bridge.session
        now = self._bridge.now_ms()
        if target is None or session is None or now is None:
            self.clock_label.setText(format_position(tenths * 100.0))
            return
        segment = session.timeline.segment_at(now)
        bar = round(target / (segment.beats_per_bar * segment.beat_ms)) + 1
        self.bar_beat_label.setText(f"{bar} : 1")
        self.clock_label.setText(format_position(target))

    def _on_seek_released(self) -> None:
        self._bridge.seek(self.seek_slider.value() * 100.0)  # the bridge snaps to the bar
