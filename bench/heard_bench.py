"""What is heard: the click of a follower page in each engine, recorded on one sample clock.

One PulseAudio daemon (private, started here) has a null sink ``band`` with one channel per
engine; a mono remap sink per engine feeds its channel. A browser of each engine plays the
follower page into its own remap sink (``PULSE_SINK``), each headed under its own Xvfb
(headless Chromium plays nothing to PulseAudio): Chromium through Playwright, Firefox and
WebKit through ``tests/helpers/engines.py``. All pages join one session on a loopback server
(``sync_server.py``), the leader plays at a steady tempo, each page's click is turned on by a
trusted click on its toggle (a user gesture, as the autoplay policies want). ``parec`` then
records the sink's monitor: every engine's output on the same sample clock, so the instants
at which clicks are heard can be compared across engines without any clock mapping.

Onsets: per channel, the first sample whose magnitude passes a threshold (a fifth of the
channel's loudest sample) after at least 100 ms below it. Per beat, the onsets of all engines
within 100 ms of each other make one beat; its *audible spread* is max - min. Each engine's
mean onset relative to the other engines' mean is reported too (a constant output-path offset
shows there, a jittery one in the spread). What the recording holds is each engine's whole
audio path up to PulseAudio's mixer (the page's audio-clock map, the engine's buffering and
its reported output latency), not the sound card or the air.

Usage: ``.venv/bin/python bench/heard_bench.py [--record-s 20 --tempo 120]``; writes
``bench/results/heard_bench.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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
CHANNELS = ("front-left", "front-right", "front-center")


def percentiles(values: list[float]) -> dict[str, float | int]:
    if len(values) < 2:
        return {"n": len(values)}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "max": round(max(values), 3),
    }


class Pulse:
    """A private PulseAudio daemon with the ``band`` sink and one remap sink per engine."""

    def __init__(self, engines: tuple[str, ...]) -> None:
        self.runtime = tempfile.mkdtemp(prefix="bandsync-heard-")
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.runtime, HOME=self.runtime)
        channel_map = ",".join(CHANNELS[: len(engines)])
        self.process = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm",
                "--load=module-native-protocol-unix",
                f"--load=module-null-sink sink_name=band channels={len(engines)} "
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
        for engine, channel in zip(engines, CHANNELS, strict=False):
            self.pactl(
                "load-module",
                "module-remap-sink",
                f"sink_name={engine}",
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

    def record(self, seconds: float, channels: int) -> array[int]:
        """``seconds`` of the band sink's monitor, interleaved signed 16-bit samples."""
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
                "--latency-msec=20",
            ],
            env=self.env,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        wanted = int(seconds * RATE) * channels * 2
        data = bytearray()
        while len(data) < wanted:
            chunk = process.stdout.read(min(65536, wanted - len(data)))
            if not chunk:
                break
            data.extend(chunk)
        process.terminate()
        process.wait(5)
        samples = array("h")
        samples.frombytes(bytes(data[: len(data) // (2 * channels) * 2 * channels]))
        return samples

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        shutil.rmtree(self.runtime, ignore_errors=True)


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
                found.append(i / RATE)
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
    pulse = Pulse(engines)
    services = Services()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "bench/sync_server.py", stdout=asyncio.subprocess.PIPE, cwd=str(ROOT)
    )
    assert server.stdout is not None
    ready = (await asyncio.wait_for(server.stdout.readline(), 20)).decode()
    info = json.loads(ready.split(" ", 1)[1])
    url = f"http://127.0.0.1:{info['port']}"
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
            await asyncio.sleep(1.0)
            samples = await asyncio.to_thread(pulse.record, args.record_s, len(engines))
            result["pageClocks"] = {
                e: await p.js(
                    "({offsetUncertaintyMs: bandsync.offsetUncertaintyMs,"
                    " clicks: bandsync.clickTimes().length})"
                )
                for e, p in pages.items()
            }
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
    per_engine = {e: onsets(samples, len(engines), i) for i, e in enumerate(engines)}
    grouped = beats(per_engine)
    spreads = [1000 * (max(b.values()) - min(b.values())) for b in grouped]
    relative = {}
    for e in engines:
        others = [o for o in engines if o != e]
        relative[e] = percentiles(
            [1000 * (b[e] - statistics.fmean(b[o] for o in others)) for b in grouped]
        )
    result.update(
        {
            "recordedS": round(len(samples) / len(engines) / RATE, 3),
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
        }
    )
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description="audible click spread across engines")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--record-s", type=float, default=20.0)
    parser.add_argument("--tempo", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "heard_bench.json")
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
    print(f"load average {result['loadAverage']}, {result['runSeconds']} s; wrote {args.out}")


if __name__ == "__main__":
    cli()
