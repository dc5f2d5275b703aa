"""Tempo and transport: the big tempo, tap tempo, meter, count-in, play/pause/stop/seek and
the visual metronome. Everything shown is computed from the session's timeline, the same
one the phones use, at the server's clock."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.clock import Clock
from ..core.session import Session
from ..core.timeline import bar_beat
from . import theme
from .bridge import TEMPO_MAX, TEMPO_MIN, Bridge, format_position
from .taptempo import TapTempo

FRAME_MS = 16  # metronome/position refresh while playing (about 60 Hz)
SEEK_RANGE_MIN_S = 300  # the seek slider spans at least five minutes
BEAT_UNITS = (2, 4, 8, 16)


def _button(text: str, name: str = "", tip: str = "") -> QPushButton:
    button = QPushButton(text)
    if name:
        button.setObjectName(name)
    if tip:
        button.setToolTip(tip)
    # Buttons never take keyboard focus: Space, Up/Down and T belong to the window shortcuts.
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return button


class TempoPanel(QGroupBox):
    """The tempo: a big number, -/+ (shift for 5), a slider, typed entry and tap tempo."""

    def __init__(self, bridge: Bridge, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__("TEMPO", parent)
        self._bridge = bridge
        self.tap_tempo = TapTempo(clock)
        self._updating = False

        self.value_label = QLabel("120")
        self.value_label.setObjectName("tempo")
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bpm = QLabel("BPM")
        bpm.setObjectName("bpm")
        bpm.setAlignment(Qt.AlignmentFlag.AlignCenter)

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

        self.tap_info = QLabel("")
        self.tap_info.setObjectName("muted")

        top = QHBoxLayout()
        top.addWidget(self.minus_button)
        top.addWidget(self.value_label, 1)
        top.addWidget(self.plus_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.entry)
        bottom.addWidget(self.tap_button, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(bpm)
        layout.addWidget(self.slider)
        layout.addLayout(bottom)
        layout.addWidget(self.tap_info)

    def show_session(self, session: Session) -> None:
        tempo = session.timeline.latest.tempo_bpm
        self._updating = True
        try:
            self.value_label.setText(f"{tempo:g}")
            if not self.slider.isSliderDown():
                self.slider.setValue(round(tempo))
            if not self.entry.hasFocus():
                self.entry.setValue(round(tempo))
        finally:
            self._updating = False

    def tap(self) -> None:
        """One tap; from the second on, the tapped tempo goes to everyone."""
        bpm = self.tap_tempo.tap()
        if bpm is None:
            self.tap_info.setText("tap again…")
            return
        self.tap_info.setText(f"tapped {bpm:g} BPM ({self.tap_tempo.count} taps)")
        self._bridge.set_tempo(bpm)

    def _on_nudge_clicked(self, direction: int) -> None:
        shift = bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        self._bridge.nudge_tempo(direction * (5 if shift else 1))

    def _on_slider_moved(self, value: int) -> None:
        if self._updating:
            return
        if self.slider.isSliderDown():
            self.value_label.setText(str(value))  # a preview; sent on release
        else:
            self._bridge.set_tempo(float(value))

    def _on_slider_released(self) -> None:
        self._bridge.set_tempo(float(self.slider.value()))

    def _on_entry_finished(self) -> None:
        if self._updating:
            return
        value = float(self.entry.value())
        if value != self._bridge.current_tempo():
            self._bridge.set_tempo(value)


class MetronomeWidget(QWidget):
    """One light per beat of the bar; the current one flashes, the downbeat is accented."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.beats_per_bar = 4
        self.current: int | None = None  # 0-based beat in the bar being lit
        self.flash = 0.0  # 1 at the beat, fading to 0 over the beat
        self.counting_in = False
        self.setMinimumHeight(86)
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
        self.bar_beat_label = QLabel("1 : 1")
        self.bar_beat_label.setObjectName("barbeat")
        self.bar_beat_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.clock_label = QLabel("00:00.0")
        self.clock_label.setObjectName("clock")
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.phase_label = QLabel("stopped")
        self.phase_label.setObjectName("muted")
        self.phase_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.play_button = _button("▶  Play", "play", "Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(self._on_play_clicked)
        self.stop_button = _button("■  Stop", "stop", "Stop and go to the top (Esc)")
        self.stop_button.clicked.connect(self._bridge.stop_transport)

        self.count_in = QSpinBox()
        self.count_in.setRange(0, 4)
        self.count_in.setSuffix(" bars")
        self.count_in.setToolTip("Count-in before play starts (0-4 bars)")
        self.count_in.valueChanged.connect(self._on_count_in_changed)
        self.beats = QSpinBox()
        self.beats.setRange(1, 16)
        self.beats.setToolTip("Beats per bar")
        self.beats.valueChanged.connect(self._on_meter_changed)
        self.unit = QComboBox()
        for unit in BEAT_UNITS:
            self.unit.addItem(str(unit), unit)
        self.unit.setCurrentIndex(1)
        self.unit.setToolTip("Beat unit")
        self.unit.currentIndexChanged.connect(self._on_meter_changed)

        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, SEEK_RANGE_MIN_S * 10)
        self.seek_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.seek_slider.setToolTip("Drag to seek")
        self.seek_slider.sliderReleased.connect(self._on_seek_released)
        self.seek_slider.sliderMoved.connect(
            lambda v: self.clock_label.setText(format_position(v * 100.0))
        )

        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button, 2)
        buttons.addWidget(self.stop_button, 1)
        settings = QGridLayout()
        settings.addWidget(QLabel("Meter"), 0, 0)
        meter = QHBoxLayout()
        meter.addWidget(self.beats)
        meter.addWidget(QLabel("/"))
        meter.addWidget(self.unit)
        settings.addLayout(meter, 0, 1)
        settings.addWidget(QLabel("Count-in"), 0, 2)
        settings.addWidget(self.count_in, 0, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.metronome)
        position = QHBoxLayout()
        position.addWidget(self.bar_beat_label, 3)
        position.addWidget(self.clock_label, 2)
        layout.addLayout(position)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.seek_slider)
        layout.addLayout(buttons)
        layout.addLayout(settings)

        self._frame_timer = QTimer(self)
        self._frame_timer.setInterval(FRAME_MS)
        self._frame_timer.timeout.connect(self.refresh_position)

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
        if counting_in:
            remaining = math.ceil((segment.anchor_ms - now) / segment.beat_ms - 1e-6)
            self.bar_beat_label.setText(f"count-in {remaining}")
            self.phase_label.setText("counting in")
        else:
            self.bar_beat_label.setText(f"{bb.bar} : {bb.beat}")
            self.phase_label.setText("playing" if playing else "stopped")
        if not self.seek_slider.isSliderDown():
            self.clock_label.setText(format_position(position))
            tenths = int(position // 100)
            top = max(self.seek_slider.maximum(), tenths + 600)
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

    def _on_seek_released(self) -> None:
        self._bridge.seek(self.seek_slider.value() * 100.0)
