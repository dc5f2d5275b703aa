"""What is heard: the click of a follower page in each engine, recorded on one sample clock.

One PulseAudio daemon (private, started here, every rate 48 kHz) has a null sink ``band`` with
one channel per engine and one for a reference; a mono remap sink per channel feeds it. A
browser of each engine plays the follower page into its own remap sink (``PULSE_SINK``), each
headed under its own Xvfb (headless Chromium plays nothing to PulseAudio): Chromium through
Playwright, Firefox and WebKit through ``tests/helpers/engines.py``. All pages join one session
on a loopback server (``sync_server.py``), the leader plays at a steady tempo, each page's
click is turned on by a trusted click on its toggle (a user gesture, as the autoplay policies
want). ``parec`` then records the sink's monitor: every channel on the same sample clock.

Onsets: per channel, a sample above a fifth of the channel's loudest after at least 100 ms
below it, moved back to where the click starts (the first sample above 5 % of that click's own
peak: between clicks a null sink's channel is digital silence). Per beat, the onsets of all
engines within 100 ms of each other make one beat; its *audible spread* is max - min, and each
engine's onset against the mean of the others is reported too.

**Absolute lateness.** The reference channel carries the page's own beat click, written by
this process through libpulse (``ReferenceClicks``) on the beats' instants, with the stream's
latency asked after every 10 ms written: so each reference click's frame is known to play at
a known CLOCK_MONOTONIC instant (as PulseAudio's timing says, the same accounting a browser's
back end reads). A line fitted through (recorded at, played at) of the reference clicks maps
the recording to CLOCK_MONOTONIC, and so to the server's clock (``sync_server.py`` prints
server = monotonic + offset). Each engine's click is then heard ``lateMs`` after the server
instant it was placed for. How exact: the reference clicks' residuals from the line (p95
~0.3 ms), and the line's rate checked against parec's chunk arrivals (two independent rates;
on this VM the null sink runs ~300 ppm fast of CLOCK_MONOTONIC and both see it). Where a
page's click entries carry what it believed (``audioReading``: currentTime, outputLatency,
baseLatency, getOutputTimestamp; the map and its source; the page on main does not send them
yet, the per-engine accounting in docs/timing.md does), ``accounting`` shows per engine the
latency its API states and the one it really had (``trueLatencyMs``: currentTime less the
context time heard at the same instant); otherwise only the map's source. What is measured
is each engine's whole path up to PulseAudio's mixer, not a sound card or the air.

Usage: ``.venv/bin/python bench/heard_bench.py [--record-s 20 --tempo 120] [--engines ...]``;
writes ``bench/results/heard_bench.json`` (``--raw FILE``: the recording too).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from itertools import pairwise
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.helpers.engines import (  # noqa: E402
    ENGINES,
    ChromiumPage,
    FirefoxBrowser,
    Page,
    Services,
    ThreadedBrowser,
    ThreadedPage,
    WebKitBrowser,
    missing_reason,
)

RATE = 48_000
QUIET_S = 0.100  # an onset needs this much quiet before it
MATCH_S = 0.100  # onsets of one beat lie within this of each other
CHANNELS = ("front-left", "front-right", "front-center", "rear-left")
#: The sink (and the recording's channel, after the engines') of the reference clicks.
REFERENCE = "reference"


def percentiles(
    values: list[float], keys: tuple[str, ...] = ("p50", "p95", "max")
) -> dict[str, float | int]:
    """``keys`` of ``values``: "pN" is the N-th percentile, "max" the largest."""
    if len(values) < 2:
        return {"n": len(values)}
    q = statistics.quantiles(values, n=100, method="inclusive")
    out: dict[str, float | int] = {"n": len(values)}
    for key in keys:
        out[key] = round(max(values) if key == "max" else q[int(key[1:]) - 1], 3)
    return out


def signed(values: list[float]) -> dict[str, float | int]:
    """A signed quantity's p5 / p50 / p95 (where it sits, and how far it scatters)."""
    return percentiles(values, ("p5", "p50", "p95"))


class Pulse:
    """A private PulseAudio daemon with the ``band`` sink and one remap sink per engine."""

    def __init__(self, sinks: tuple[str, ...]) -> None:
        self.runtime = tempfile.mkdtemp(prefix="bandsync-heard-")
        self.env = dict(
            os.environ,
            XDG_RUNTIME_DIR=self.runtime,
            HOME=self.runtime,
            XDG_CONFIG_HOME=self.runtime,
        )
        # One rate everywhere: by default PulseAudio tells clients 44.1 kHz and switches an
        # idle sink to that "alternate" rate for the first such stream, so the sink, the
        # reference and the recording would each pass through a resampler of its own.
        config = Path(self.runtime) / "pulse"
        config.mkdir(parents=True, exist_ok=True)
        (config / "daemon.conf").write_text(
            f"default-sample-rate = {RATE}\nalternate-sample-rate = {RATE}\n"
        )
        channel_map = ",".join(CHANNELS[: len(sinks)])
        self.process = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm",
                "--load=module-native-protocol-unix",
                f"--load=module-null-sink sink_name=band channels={len(sinks)} "
                f"channel_map={channel_map} rate={RATE}",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        socket_path = Path(self.runtime) / "pulse" / "native"
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("pulseaudio did not start")
            time.sleep(0.05)
        self.server = f"unix:{socket_path}"
        for sink, channel in zip(sinks, CHANNELS, strict=False):
            self.pactl(
                "load-module",
                "module-remap-sink",
                f"sink_name={sink}",
                "master=band",
                "channels=1",
                f"master_channel_map={channel}",
                "channel_map=mono",
                "remix=no",
            )

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ["pactl", "-s", self.server, *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def sink_env(self, engine: str) -> dict[str, str]:
        return {"PULSE_SERVER": self.server, "PULSE_SINK": engine}

    def record(self, seconds: float, channels: int) -> tuple[array[int], list[tuple[float, int]]]:
        """``seconds`` of the band sink's monitor, interleaved signed 16-bit samples, and
        when each chunk arrived: (time.monotonic(), frames received by then)."""
        process = subprocess.Popen(
            [
                "parec",
                "-s",
                self.server,
                "-d",
                "band.monitor",
                "--raw",
                "--format=s16le",
                f"--rate={RATE}",
                f"--channels={channels}",
                # the sink's own map: PulseAudio's default map for 4 channels is quad
                # (front-left, front-right, rear-left, rear-right), and a mismatch is remixed
                f"--channel-map={','.join(CHANNELS[:channels])}",
                "--latency-msec=20",
            ],
            env=self.env,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        wanted = int(seconds * RATE) * channels * 2
        data = bytearray()
        arrivals: list[tuple[float, int]] = []
        while len(data) < wanted:
            chunk = process.stdout.read1(min(65536, wanted - len(data)))
            if not chunk:
                break
            data.extend(chunk)
            arrivals.append((time.monotonic(), len(data) // (2 * channels)))
        process.terminate()
        process.wait(5)
        samples = array("h")
        samples.frombytes(bytes(data[: len(data) // (2 * channels) * 2 * channels]))
        return samples, arrivals

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        shutil.rmtree(self.runtime, ignore_errors=True)


PA_STREAM_PLAYBACK = 1
PA_SAMPLE_S16LE = 3


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint32) for name in ("maxlength", "tlength", "prebuf", "minreq", "fragsize")
    ]


def click_wave(rate: int = RATE, freq: float = 1175.0, peak: float = 0.6) -> list[float]:
    """The page's beat click (audio.js playClick, the beep's beat voice), sample for sample:
    a sine from phase 0, its gain ramped linearly to ``peak`` over 1 ms, then exponentially
    to 0.001 at 40 ms, stopped at 50 ms. Same shape, same onset: the detector's small lag
    into the attack is the same for the reference as for the engines."""
    out = []
    for i in range(int(0.05 * rate)):
        t = i / rate
        gain = peak * t / 0.001 if t < 0.001 else peak * (0.001 / peak) ** ((t - 0.001) / 0.039)
        out.append(gain * math.sin(2 * math.pi * freq * t) if t < 0.04 else 0.0)
    return out


class ReferenceClicks(threading.Thread):
    """Clicks at known CLOCK_MONOTONIC instants, played into their own channel of the sink.

    A libpulse stream (pa_simple, through ctypes) is written 10 ms at a time; after every
    write the stream's latency is asked (``pa_simple_get_latency``: until the last written
    frame is played by the sink, as the server's timing info says, transport included), so
    frame ``f`` plays at ``base + f / rate`` with ``base = t + latency - written / rate``.
    Every reading of ``base`` is kept: their median places the clicks after the run, and
    their spread is how exact the reference is. This is the same accounting a browser's
    PulseAudio back end does, but done once, without any engine's buffering in between: the
    null sink plays on CLOCK_MONOTONIC (module-null-sink's timer), so "played" is exact.
    """

    BLOCK = 480  # frames per write: 10 ms

    def __init__(self, server: str, sink: str, targets: list[float]) -> None:
        super().__init__(daemon=True)
        self.server, self.sink = server, sink
        self.targets = sorted(targets)  # monotonic seconds
        self.placed: list[dict[str, float]] = []  # {"target", "frame"}
        # (t, base, latency_s, frames written by then)
        self.bases: list[tuple[float, float, float, int]] = []
        self.stop_event = threading.Event()
        self.error: str | None = None
        self.wave = click_wave()

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # reported in the JSON; the run goes on without a reference
            self.error = repr(err)

    def _run(self) -> None:
        lib = ctypes.CDLL("libpulse-simple.so.0")
        lib.pa_simple_new.restype = ctypes.c_void_p
        lib.pa_simple_new.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(_SampleSpec),
            ctypes.c_void_p,
            ctypes.POINTER(_BufferAttr),
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.pa_simple_write.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.pa_simple_get_latency.restype = ctypes.c_uint64
        lib.pa_simple_get_latency.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        lib.pa_simple_free.argtypes = [ctypes.c_void_p]
        spec = _SampleSpec(PA_SAMPLE_S16LE, RATE, 1)
        unset = 0xFFFFFFFF
        # 200 ms of buffer: room for a busy machine's scheduling, never lower than what
        # the browsers ask of the sink (the null sink runs at the lowest latency asked).
        # prebuf 0: a stream that runs dry plays silence and goes on (the server drops what
        # comes too late) rather than waiting to refill, so frame f keeps its instant.
        attr = _BufferAttr(unset, RATE * 2 * 2 // 10, 0, unset, unset)
        error = ctypes.c_int(0)
        handle = lib.pa_simple_new(
            self.server.encode(),
            b"heard_bench",
            PA_STREAM_PLAYBACK,
            self.sink.encode(),
            b"reference clicks",
            ctypes.byref(spec),
            None,
            ctypes.byref(attr),
            ctypes.byref(error),
        )
        if not handle:
            raise RuntimeError(f"pa_simple_new failed: error {error.value}")
        try:
            written = 0
            mix: list[float] = []  # frames from `written` on
            pending = list(self.targets)
            while not self.stop_event.is_set():
                recent = [b for _, b, _, _ in self.bases[-50:]]
                if len(recent) >= 10:
                    base = statistics.median(recent)
                    while pending:
                        frame = round((pending[0] - base) * RATE)
                        if frame >= written + 4 * self.BLOCK:
                            break
                        target = pending.pop(0)
                        if frame < written:
                            continue  # too late to play it where it belongs
                        at = frame - written
                        if len(mix) < at + len(self.wave):
                            mix.extend([0.0] * (at + len(self.wave) - len(mix)))
                        for i, v in enumerate(self.wave):
                            mix[at + i] += v
                        self.placed.append({"target": target, "frame": frame})
                block = mix[: self.BLOCK] + [0.0] * max(0, self.BLOCK - len(mix))
                del mix[: self.BLOCK]
                data = array("h", (max(-32767, min(32767, round(v * 32767))) for v in block))
                raw = data.tobytes()
                if lib.pa_simple_write(handle, raw, len(raw), ctypes.byref(error)) < 0:
                    raise RuntimeError(f"pa_simple_write failed: error {error.value}")
                written += self.BLOCK
                before = time.monotonic()
                latency_us = lib.pa_simple_get_latency(handle, ctypes.byref(error))
                after = time.monotonic()
                if after - before < 0.002:  # a slow answer brackets "now" too loosely
                    now = (before + after) / 2
                    latency = latency_us / 1e6
                    self.bases.append((now, now + latency - written / RATE, latency, written))
        finally:
            lib.pa_simple_free(handle)

    def played_at(self, frame: int) -> float | None:
        """When ``frame`` was played (monotonic s), from the readings taken while it was
        queued: written, not yet played. Frames queued together keep their order and spacing
        whatever happened before (a stream that ran dry, the sink's latency changing), so
        these readings are the ones about this frame."""
        about = [b for t, b, _, written in self.bases if written > frame and t <= b + frame / RATE]
        if not about:
            return None
        return statistics.median(about) + frame / RATE

    def summary(self) -> dict[str, Any]:
        """How single readings of the base spread about the median of their neighbours (the
        half second around them): the precision of one reading."""
        if not self.bases:
            return {"error": self.error or "no latency readings"}
        values = [b for _, b, _, _ in self.bases]
        deviations = []
        for i, b in enumerate(values):
            near = values[max(0, i - 25) : i + 25]
            deviations.append(abs(1000 * (b - statistics.median(near))))
        start = self.bases[0][0]
        return {
            "readings": len(values),
            "deviationMs": percentiles(deviations),
            "latencyMs": percentiles([1000 * lat for _, _, lat, _ in self.bases]),
            "placed": len(self.placed),
            "placedFrames": [int(p["frame"]) for p in self.placed],
            "error": self.error,
            "series": [
                [round(t - start, 3), round(1000 * (b - values[0]), 3), round(1000 * lat, 3)]
                for t, b, lat, _ in self.bases[::20]
            ],
        }


def refine(values: array[int] | list[int], coarse: int, fraction: float = 0.05) -> int:
    """The sample where a click starts, near the coarse onset ``coarse``: the first sample,
    up to 3 ms before it, at least ``fraction`` of the click's own peak (the next 5 ms). On a
    null sink a channel is digital silence between clicks, so this finds the gain ramp's
    start to within a sample or two whatever the click's level."""
    peak = max((abs(v) for v in values[coarse : coarse + RATE // 200]), default=0)
    threshold = max(1, peak * fraction)
    for i in range(max(0, coarse - 3 * RATE // 1000), coarse + 1):
        if abs(values[i]) >= threshold:
            return i
    return coarse


def onsets(samples: array[int], channels: int, channel: int) -> list[float]:
    """Onset instants (s from the recording's start) in one channel."""
    values = samples[channel::channels]
    loudest = max((abs(v) for v in values), default=0)
    if loudest < 200:  # nothing but silence (or dither)
        return []
    threshold = loudest / 5
    quiet_needed = int(QUIET_S * RATE)
    found: list[float] = []
    quiet = quiet_needed
    for i, v in enumerate(values):
        if abs(v) >= threshold:
            if quiet >= quiet_needed:
                found.append(refine(values, i) / RATE)
            quiet = 0
        else:
            quiet += 1
    return found


def beats(per_engine: dict[str, list[float]]) -> list[dict[str, float]]:
    """Group onsets of all engines into beats: each onset of the first engine with the
    nearest onset of every other engine within MATCH_S; beats some engine missed are left."""
    names = list(per_engine)
    grouped = []
    for t in per_engine[names[0]]:
        beat = {names[0]: t}
        for other in names[1:]:
            near = min(per_engine[other], key=lambda x: abs(x - t), default=None)
            if near is not None and abs(near - t) <= MATCH_S:
                beat[other] = near
        if len(beat) == len(names):
            grouped.append(beat)
    return grouped


def absolute_report(
    reference: ReferenceClicks,
    reference_onsets: list[float],
    arrivals: list[tuple[float, int]],
    per_engine: dict[str, list[float]],
    clicks: dict[str, list[dict[str, Any]]],
    page_clocks: dict[str, dict[str, Any]],
    clock_offset: float,
    beat_ms: float,
) -> dict[str, Any]:
    """Each engine's clicks against the instants they belong to, on CLOCK_MONOTONIC.

    The reference channel ties the recording to CLOCK_MONOTONIC: recording second ``s`` is
    monotonic ``s + A``, A the median over the reference clicks of (where PulseAudio says it
    played, minus where it was recorded). Then a click the page placed for server instant
    ``playServerTime`` and heard at recording second ``s`` is ``(s + A) * 1000 + clock_offset
    - playServerTime`` ms late. From the same click and the page's own reading of its audio
    clock when it placed it, the latency the engine *really* has (currentTime minus the
    context time being heard) is worked out, beside what its API says.
    """
    summary = reference.summary()
    out: dict[str, Any] = {"reference": summary}
    played = [
        (at, p["frame"])
        for p in reference.placed
        if (at := reference.played_at(int(p["frame"]))) is not None
    ]
    if len(played) < 3 or not reference_onsets or not arrivals:
        return out
    # A first guess from when parec's chunks came (tens of ms off), good enough to pair each
    # reference onset with its click (a beat apart).
    rough = statistics.median(t - n / RATE for t, n in arrivals)
    pairs: list[tuple[float, float]] = []  # (recording s, monotonic s played)
    for onset in reference_onsets:
        at = min((a for a, _ in played), key=lambda a: abs(a - (onset + rough)))
        if abs(at - (onset + rough)) < beat_ms / 2000:
            pairs.append((onset, at))
    if len(pairs) < 3:
        summary["pairs"] = len(pairs)
        return out
    # The recording against CLOCK_MONOTONIC from parec's side: the earliest arrival per
    # half second (a sample cannot reach parec before the sink has rendered it).
    buckets: dict[int, float] = {}
    for t, n in arrivals:
        key = int((t - arrivals[0][0]) * 2)
        buckets[key] = min(buckets.get(key, math.inf), t - n / RATE)
    envelope = _line([(k / 2, v) for k, v in sorted(buckets.items())])
    summary["arrivalEnvelopeRatePpm"] = round(1e6 * envelope[1], 1)
    # monotonic = recording s + a + rate * (recording s - mid): the sink plays on
    # CLOCK_MONOTONIC, so the rate should come out ~0 (it is fitted, and shown, to check).
    mid = statistics.fmean(o for o, _ in pairs)
    fit = _line([(o - mid, at - o) for o, at in pairs])
    residuals = [at - o - fit[0] - fit[1] * (o - mid) for o, at in pairs]
    kept = [p for p, r in zip(pairs, residuals, strict=True) if abs(r) < 0.001]
    if len(kept) >= 3:
        fit = _line([(o - mid, at - o) for o, at in kept])

    def to_monotonic(s: float) -> float:
        return s + fit[0] + fit[1] * (s - mid)

    summary.update(
        {
            "pairs": len(pairs),
            "rateErrorPpm": round(1e6 * fit[1], 1),
            "residualMs": percentiles([abs(1000 * r) for r in residuals]),
            "residualSeries": [
                [round(o, 3), round(1000 * r, 3)]
                for (o, _), r in zip(pairs, residuals, strict=True)
            ],
            # how long after PulseAudio plays a sample it reaches parec (the monitor holds
            # back what the sink might still rewind)
            "monitorArrivalMinusPlayMs": signed(
                [1000 * (t - to_monotonic(n / RATE)) for t, n in arrivals]
            ),
        }
    )
    anchor = fit[0]
    late: dict[str, Any] = {}
    kept_clicks: dict[str, list[dict[str, Any]]] = {}
    accounting: dict[str, Any] = {}
    for engine, heard in per_engine.items():
        offset = page_clocks[engine].get("offsetMs")
        errors, truths = [], []
        sources = set()
        believed: dict[str, list[float]] = {
            "outputLatencyMs": [],
            "baseLatencyMs": [],
            "stampLatencyMs": [],
            "stampSkewMs": [],
            "trueLatencyMs": [],
        }
        for click in clicks[engine]:
            if click["cancelled"] or click["late"] or click.get("peak") is None:
                continue
            expected = (click["playServerTime"] - clock_offset) / 1000 - anchor
            near = min(heard, key=lambda s: abs(s - expected), default=None)
            if near is None or abs(near - expected) > MATCH_S:
                continue
            heard_server = to_monotonic(near) * 1000 + clock_offset
            errors.append(heard_server - click["playServerTime"])
            click["heardLateMs"] = round(errors[-1], 3)
            kept_clicks.setdefault(engine, []).append(click)
            sources.add(click.get("audioClock"))
            reading = click.get("audioReading")
            if reading is None or offset is None:
                continue
            # the context time heard at the reading's instant, from this click
            heard_local = heard_server - offset  # performance.now() ms when it was heard
            heard_ctx = click["audioTime"] + (reading["perfNow"] - heard_local) / 1000
            believed["trueLatencyMs"].append(1000 * (reading["currentTime"] - heard_ctx))
            # the map that was true (context time heard = perfMs / 1000 + map), and where
            # the page's readings of it lay in its window, against it
            true_map = click["audioTime"] - heard_local / 1000
            spread = click.get("audioReadings") or {}
            for key in ("min", "q10", "q90", "max"):
                if spread.get(key) is not None:
                    believed.setdefault(f"readings_{key}Ms", []).append(
                        1000 * (spread[key] - true_map)
                    )
            if reading.get("outputLatency") is not None:
                believed["outputLatencyMs"].append(1000 * reading["outputLatency"])
            if reading.get("baseLatency") is not None:
                believed["baseLatencyMs"].append(1000 * reading["baseLatency"])
            if reading.get("stampContextTime"):
                believed["stampLatencyMs"].append(
                    1000 * (reading["currentTime"] - reading["stampContextTime"])
                )
                believed["stampSkewMs"].append(reading["stampPerformanceTime"] - reading["perfNow"])
            truths.append(reading.get("sampleRate"))
        late[engine] = signed(errors)
        accounting[engine] = {
            "source": sorted(s for s in sources if s),
            "sampleRate": truths[0] if truths else None,
            **{k: _median(v) for k, v in believed.items()},
        }
    out["lateMs"] = late
    out["accounting"] = accounting
    out["clicks"] = kept_clicks
    return out


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


async def open_page(
    engine: str, url: str, pulse: Pulse, playwright: Any, services: Services
) -> tuple[Page, Any]:
    """A headed page of ``engine`` playing into its own channel; its browser to close."""
    if engine == "chromium":
        services.start_xvfb()
        env = dict(os.environ, **services.env, **pulse.sink_env(engine))
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=user-gesture-required"],
            headless=False,
            env=env,
        )
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(url)
        return ChromiumPage(context, page), browser
    threaded: ThreadedBrowser
    if engine == "firefox":
        threaded = await asyncio.to_thread(
            FirefoxBrowser, headless=False, pulse_env=pulse.sink_env(engine)
        )
    else:
        threaded = await asyncio.to_thread(WebKitBrowser, pulse_env=pulse.sink_env(engine))
    driver = ThreadedPage(threaded)
    await driver.goto(url)
    return driver, threaded


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    engines: tuple[str, ...] = tuple(args.engines)
    pulse = Pulse((*engines, REFERENCE))
    channels = len(engines) + 1
    services = Services()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "bench/sync_server.py", stdout=asyncio.subprocess.PIPE, cwd=str(ROOT)
    )
    assert server.stdout is not None
    ready = (await asyncio.wait_for(server.stdout.readline(), 20)).decode()
    info = json.loads(ready.split(" ", 1)[1])
    url = f"http://127.0.0.1:{info['port']}"
    clock_offset = float(info["clockOffsetMs"])  # server ms = monotonic ms + this
    leader = socketio.AsyncClient(reconnection=False)
    browsers: list[Any] = []
    result: dict[str, Any] = {"engines": list(engines), "settings": vars(args)}
    try:
        await leader.connect(url, transports=["websocket"])
        ack = await leader.call(
            "join_session", {"sessionId": "heard", "displayName": "Leader", "role": "leader"}
        )
        assert ack["ok"], ack
        await leader.call("set_tempo", {"sessionId": "heard", "tempo": args.tempo})
        async with async_playwright() as pw:
            pages: dict[str, Page] = {}
            for engine in engines:
                page, browser = await open_page(
                    engine, f"{url}/s/heard?name={engine}", pulse, pw, services
                )
                browsers.append(browser)
                pages[engine] = page
            for page in pages.values():
                await page.wait("bandsync.connected && bandsync.syncSampleCount >= 5", 30)
                await page.click("#click-toggle")
            await leader.call("play", {"sessionId": "heard"})
            for engine, page in pages.items():
                try:
                    await page.wait("bandsync.clickTimes().some(c => !c.cancelled)", 10)
                except TimeoutError:
                    print(f"{engine}: no click scheduled within 10 s")
            # The beat grid, from any click placed: the reference clicks on the same beats.
            first = next(iter(pages.values()))
            placed = [c for c in await first.js("bandsync.clickTimes()") if not c["cancelled"]]
            beat_ms = 60_000 / args.tempo
            grid0 = placed[-1]["beatServerTime"]
            now = time.monotonic()
            targets = []
            for k in range(-8, int((args.record_s + 8) * 1000 / beat_ms)):
                at = (grid0 + k * beat_ms - clock_offset) / 1000
                if now + 0.5 < at < now + args.record_s + 5:
                    targets.append(at)
            reference = ReferenceClicks(pulse.server, REFERENCE, targets)
            reference.start()
            await asyncio.sleep(1.5)  # the stream fills and its latency readings settle
            result["sinks"] = pulse.pactl("list", "sinks", "short").splitlines()
            result["sinkInputs"] = pulse.pactl("list", "sink-inputs", "short").splitlines()
            samples, arrivals = await asyncio.to_thread(pulse.record, args.record_s, channels)
            if args.raw is not None:
                args.raw.write_bytes(samples.tobytes())
            reference.stop_event.set()
            await asyncio.to_thread(reference.join, 5)
            result["pageClocks"] = {
                e: await p.js(
                    "({offsetUncertaintyMs: bandsync.offsetUncertaintyMs,"
                    " offsetMs: bandsync.offsetMs, clicks: bandsync.clickTimes().length})"
                )
                for e, p in pages.items()
            }
            clicks = {e: await p.js("bandsync.clickTimes()") for e, p in pages.items()}
            for engine, browser in zip(engines, browsers, strict=True):
                if engine == "chromium":
                    await browser.close()
                else:
                    await asyncio.to_thread(browser.close)
            browsers.clear()
    finally:
        for browser in browsers:
            if isinstance(browser, ThreadedBrowser):
                await asyncio.to_thread(browser.close)
        if leader.connected:
            await leader.disconnect()
        server.send_signal(2)
        await server.wait()
        services.close()
        pulse.close()
    per_engine = {e: onsets(samples, channels, i) for i, e in enumerate(engines)}
    reference_onsets = onsets(samples, channels, len(engines))
    absolute = absolute_report(
        reference,
        reference_onsets,
        arrivals,
        per_engine,
        clicks,
        result["pageClocks"],
        clock_offset,
        beat_ms,
    )
    grouped = beats(per_engine)
    spreads = [1000 * (max(b.values()) - min(b.values())) for b in grouped]
    relative = {}
    for e in engines if len(engines) > 1 else ():
        others = [o for o in engines if o != e]
        relative[e] = percentiles(
            [1000 * (b[e] - statistics.fmean(b[o] for o in others)) for b in grouped]
        )
    result.update(
        {
            "recordedS": round(len(samples) / channels / RATE, 3),
            "onsets": {e: len(v) for e, v in per_engine.items()},
            # Each engine's clicks against the beat period: a check on the onset detection
            # (and the spacing of one engine's clicks, which no other engine affects).
            "interOnsetMs": {
                e: percentiles([1000 * (b - a) for a, b in pairwise(v)])
                for e, v in per_engine.items()
            },
            "onsetTimesS": {e: [round(t, 5) for t in v] for e, v in per_engine.items()},
            "beats": len(grouped),
            "audibleSpreadMs": percentiles(spreads),
            "relativeToOthersMs": relative,
            "loadAverage": list(os.getloadavg()),
            **absolute,
        }
    )
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description="audible click spread across engines")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--record-s", type=float, default=20.0)
    parser.add_argument("--tempo", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "heard_bench.json")
    parser.add_argument(
        "--raw",
        type=Path,
        help="also write the recording (s16le, one channel per engine, "
        "then the reference's) to this file",
    )
    args = parser.parse_args()
    for engine in args.engines:
        reason = missing_reason(engine)
        if reason is not None:
            parser.error(f"{engine}: {reason}")
    for tool in ("pulseaudio", "pactl", "parec", "Xvfb"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")
    started = time.monotonic()
    result = asyncio.run(main(args))
    result["runSeconds"] = round(time.monotonic() - started, 1)
    result["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"onsets per engine: {result['onsets']}, beats heard by every engine: {result['beats']}")
    print(f"audible spread across engines (ms): {result['audibleSpreadMs']}")
    for engine, rel in result["relativeToOthersMs"].items():
        print(f"{engine:9} onset - mean of the others (ms): {rel}")
        print(f"{'':9} between its own onsets (ms): {result['interOnsetMs'][engine]}")
    ref = result.get("reference", {})
    print(
        f"reference: {ref.get('pairs')} clicks, residual from the line (ms) "
        f"{ref.get('residualMs')}, recording rate vs CLOCK_MONOTONIC "
        f"{ref.get('rateErrorPpm')} ppm (parec arrivals: {ref.get('arrivalEnvelopeRatePpm')} "
        f"ppm), latency readings {ref.get('readings')} {ref.get('error') or ''}"
    )
    for engine, late in result.get("lateMs", {}).items():
        print(f"{engine:9} heard - its instant, absolute (ms): {late}")
        print(f"{'':9} what it says vs what it does: {result['accounting'][engine]}")
    print(f"load average {result['loadAverage']}, {result['runSeconds']} s; wrote {args.out}")


if __name__ == "__main__":
    cli()
