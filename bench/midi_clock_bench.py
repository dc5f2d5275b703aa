"""MIDI clock out against a real receiver: jitter, drift, SPP after seeks, idle and loaded.

Parts, all real: a private JACK server with the dummy driver (``jackd -d dummy``, period
``--period`` frames at ``--rate`` Hz), the BandSync server in this process with the
``MidiClockOut`` actor on a virtual port (its sender in a process of its own, as in
production, or with ``--thread`` a thread beside the server's loop), and a MIDI receiver
in its own process (an rtmidi JACK input connected to "BandSync:BandSync") that keeps
JACK's receive stamp of every message. Under load, phones in
another process (``--clients`` socket.io clients on 127.0.0.2+) run a session of their own:
its leader changes tempo 30 times a second and every phone syncs its clock 20 times a second,
while the console updates the band's stage message 10 times a second (each change a
publication handed to the MIDI actor): the server's loop is busy, the GIL contended. Last,
the worst case for the GIL (``--hog-duration``): a thread of this process runs pure Python
without pause, so a sender thread gets the GIL only when the interpreter forces a switch
(every ``sys.getswitchinterval()``, 5 ms by default; ``--switch-interval`` changes it); a
sender process has a GIL of its own.

Three instants per clock pulse, all in server time (a constant shift of CLOCK_MONOTONIC):

* ideal: when the timeline reaches the pulse's beat, in closed form (anchor + n * 60000 /
  (tempo * 24)), independent of the actor's own arithmetic (which is checked against it);
* sent: the sender's clock right after ``send_message`` returned (the actor's trace hook);
* received: JACK's stamp at the receiving client (rtmidi gives ``jack_get_time()`` deltas
  when the receiver's process cycle reads the message; summed and anchored to
  CLOCK_MONOTONIC by the lower envelope of the instants the receiver read them).

Jitter is |received - ideal - its median| (the median is the constant latency); drift is
the slope of received - ideal over the run, through the medians of ten stretches (robust to
a few stalled JACK cycles; the least-squares slope is in the JSON too). JACK hands MIDI
from one client to the next once a period, at the period's start, so received - sent is
spread over one period by construction: the report splits the jitter into our scheduling
(sent - ideal) and JACK's delivery (received - sent).

Seeks: ``--seeks`` seeks to random positions, alternately paused (SPP at once) and playing
(Stop, SPP, Continue at the seek's instant); the first SPP the receiver gets after each
seek's instant must be the position in sixteenths, and the first counted clock after each
Continue must land on the band's beat.

    .venv/bin/python bench/midi_clock_bench.py [--duration 60] [--load-duration 30]
        [--seeks 20] [--hog-duration 10] [--period 64] [--clients 8] [--thread]
        [--normal-priority] [--jack-realtime] [--switch-interval SECONDS]

Prints the figures and writes bench/results/midi_clock_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import random
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchstats import (  # noqa: E402
    LOAD_OVERRIDES,
    loop_lag,
    monotonic_offset_ms,
    readline,
    summary,
    under_load,
    write_results,
)

from bandsync_desktop.actors.midiclock import (  # noqa: E402
    CLOCK,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
    ClockEvent,
    MidiClockOut,
)
from bandsync_desktop.config import Settings  # noqa: E402
from bandsync_desktop.server.app import ServerRunner, create_app  # noqa: E402
from bandsync_desktop.server.peers import ActorHost  # noqa: E402
from tests.helpers.jack import JackServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "midi_clock_bench.json"
PORT = "BandSync:BandSync"
TEMPO = 120.0
PULSE_MS = 60_000.0 / (TEMPO * 24)
SIXTEENTH_MS = 60_000.0 / (TEMPO * 4)
BYTES = {"clock": CLOCK, "start": START, "continue": CONTINUE, "stop": STOP, "spp": SONG_POSITION}


# -- the receiver process -----------------------------------------------------------------


def receiver_main() -> int:
    """Record every message from BandSync's port until stdin closes, then print them."""
    from tests.helpers.jack import MidiReceiver

    receiver = MidiReceiver("bench-receiver")
    receiver.connect_from(PORT)
    print("ready", flush=True)
    sys.stdin.read()
    messages = receiver.messages
    receiver.close()
    json.dump([[list(m.data), m.jack_s, m.read_s] for m in messages], sys.stdout)
    return 0


# -- the bench ----------------------------------------------------------------------------


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def robust_slope(xs: list[float], ys: list[float], windows: int = 10) -> float:
    """The slope through the medians of ``windows`` consecutive stretches: a JACK cycle that
    ran 100 ms late (a busy machine) moves one median a little, a least-squares line a lot."""
    size = max(1, len(xs) // windows)
    mids, medians = [], []
    for start in range(0, len(xs) - size + 1, size):
        mids.append(statistics.median(xs[start : start + size]))
        medians.append(statistics.median(ys[start : start + size]))
    return slope(mids, medians) if len(mids) > 1 else 0.0


class Run:
    """The bench's state: the server, the trace of sent messages, the phases' timelines."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.trace: list[tuple[ClockEvent, float]] = []
        self.phases: dict[str, dict[str, Any]] = {}
        self.seeks: list[dict[str, Any]] = []
        self.loop_lag: dict[str, Any] = {}

    def on_sent(self, event: ClockEvent, sent_ms: float) -> None:
        self.trace.append((event, sent_ms))  # (list.append: safe from the sender thread)

    async def play_for(self, host: ActorHost, name: str, seconds: float) -> None:
        asked = host.now_ms()
        session = await host.submit("play", {"countInBars": 0})
        segment = session.timeline.latest
        await asyncio.sleep(seconds)
        paused = await host.submit("pause", {})
        self.phases[name] = {
            "anchorMs": segment.anchor_ms,
            "beat": segment.beat,
            "askedMs": asked,
            "startMs": segment.start_ms,
            "endMs": paused.timeline.latest.start_ms,
            "seconds": seconds,
        }
        await asyncio.sleep(0.2)

    async def seek_phase(self, host: ActorHost, count: int) -> None:
        rng = random.Random(13)
        for i in range(count):
            position = round(rng.uniform(0.0, 90_000.0), 3)
            playing = i % 2 == 1
            if playing:
                await host.submit("play", {"countInBars": 0})
                await asyncio.sleep(0.5)
            session = await host.submit("seek", {"position": position})
            segment = session.timeline.latest
            self.seeks.append(
                {
                    "positionMs": position,
                    "playing": playing,
                    "atMs": segment.start_ms,
                    "expected": math.ceil(position / SIXTEENTH_MS - 1e-9),
                }
            )
            await asyncio.sleep(0.6 if playing else 0.15)
            if playing:
                await host.submit("pause", {})
                await asyncio.sleep(0.1)

    async def hogged(self, host: ActorHost, seconds: float) -> None:
        """The worst case for the GIL: another thread runs pure Python without pause (it
        never releases the GIL but when the interpreter makes it, every switch interval)."""
        await host.submit("stop", {})
        done = threading.Event()

        def hog() -> None:
            x = 0
            while not done.is_set():
                for _ in range(1000):
                    x += 1

        thread = threading.Thread(target=hog, name="gil-hog", daemon=True)
        thread.start()
        try:
            await self.play_for(host, "gil-hog", seconds)
        finally:
            done.set()
            thread.join()

    async def loaded(self, host: ActorHost, url: str) -> None:
        seconds = self.args.load_duration
        async with under_load(host, url, self.args.clients, seconds):
            await host.submit("stop", {})
            await self.play_for(host, "loaded", seconds)
        self.loop_lag = loop_lag(host)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    bench = Run(args)
    jack = JackServer(rate=args.rate, period=args.period, realtime=args.jack_realtime).start()
    runner: ServerRunner | None = None
    receiver: subprocess.Popen[str] | None = None
    try:
        actor = MidiClockOut(
            None,
            api="jack",
            own_process=not args.thread,
            realtime=not args.normal_priority,
            trace=bench.on_sent,
        )
        settings = Settings(host="127.0.0.1", port=0).with_overrides(LOAD_OVERRIDES)
        runner = ServerRunner(create_app(settings, band_session=True, actors=[actor]))
        await runner.start("127.0.0.1", 0)
        assert runner.actors is not None
        host = runner.actors.host
        receiver = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
            [sys.executable, __file__, "--receive"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        await readline(receiver)
        await asyncio.sleep(0.3)
        await bench.play_for(host, "idle", args.duration)
        await bench.seek_phase(host, args.seeks)
        if args.load_duration > 0:
            await bench.loaded(host, runner.url)
        if args.hog_duration > 0:
            await bench.hogged(host, args.hog_duration)
        await asyncio.sleep(0.3)
        offset = monotonic_offset_ms(host.now_ms)
        status = dict(actor.status())
        assert receiver.stdin is not None and receiver.stdout is not None
        receiver.stdin.close()
        raw = await asyncio.to_thread(receiver.stdout.read)
        received = json.loads(raw)
    finally:
        if receiver is not None and receiver.poll() is None:
            receiver.kill()
        if runner is not None:
            await runner.stop()
        jack.stop()
    return analyse(bench, received, offset, status, jack)


def analyse(
    bench: Run, received: list[Any], offset: float, status: dict[str, Any], jack: JackServer
) -> dict[str, Any]:
    # The receiver connected after the actor's first message(s), stopped listening before its
    # last, and JACK may have dropped one (a client that missed its cycle): align what it got
    # with what was sent (``align``), then read every pair's three instants.
    sent = bench.trace
    base = min(read - js for _, js, read in received)
    tenth = max(1, len(received) // 10)
    base_early = min(read - js for _, js, read in received[:tenth])
    base_late = min(read - js for _, js, read in received[-tenth:])
    span_s = received[-1][1] - received[0][1]
    received_ms = [(base + js) * 1000.0 + offset for _, js, _ in received]
    matched = align(
        [(BYTES[e.kind], sent_ms) for e, sent_ms in sent],
        [(m[0][0], at) for m, at in zip(received, received_ms, strict=True)],
    )
    pairs = [(sent[j], received_ms[i]) for i, j in enumerate(matched)]
    lost = (matched[-1] - matched[0] + 1) - len(matched)

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "bench/midi_clock_bench.py " + " ".join(sys.argv[1:]),
        "jack": {
            "rate": jack.rate,
            "period": jack.period,
            "periodMs": round(jack.period_ms, 4),
            "realtime": jack.realtime,
        },
        "switchIntervalS": sys.getswitchinterval(),
        "tempoBpm": TEMPO,
        "messagesSent": len(sent),
        "messagesReceived": len(received),
        "lostInTransit": lost,
        "jackClockVsMonotonicPpm": round((base_late - base_early) / span_s * 1e6, 3)
        if span_s > 0
        else None,
        "status": status,
        "phases": {},
    }
    for name, phase in bench.phases.items():
        rows = []
        for (event, sent_ms), recv_ms in pairs:
            if event.kind != "clock" or event.pulse is None:
                continue
            if not phase["askedMs"] <= event.at_ms < phase["endMs"]:
                continue
            ideal = phase["anchorMs"] + (event.pulse - phase["beat"] * 24) * PULSE_MS
            rows.append((ideal, event.at_ms, sent_ms, recv_ms))
        latency = [r[3] - r[0] for r in rows]
        median = statistics.median(latency)
        minutes = [(r[0] - rows[0][0]) / 60_000.0 for r in rows]
        transport = [r[3] - r[2] for r in rows]
        result["phases"][name] = {
            "seconds": phase["seconds"],
            "pulses": len(rows),
            "scheduleVsClosedFormMaxMs": max(abs(r[1] - r[0]) for r in rows),
            "latencyMedianMs": round(median, 4),
            "jitterMs": summary([abs(x - median) for x in latency]),
            "sendLateMs": summary([r[2] - r[0] for r in rows]),
            "jackDeliveryMs": summary(transport),
            "driftMsPerMinute": round(robust_slope(minutes, latency), 5),
            "driftPpm": round(robust_slope(minutes, latency) / 60_000.0 * 1e6, 4),
            "driftLeastSquaresMsPerMinute": round(slope(minutes, latency), 5),
            "sendDriftMsPerMinute": round(robust_slope(minutes, [r[2] - r[0] for r in rows]), 5),
        }
    result["seeks"] = seek_report(bench, pairs, result["phases"].get("idle", {}))
    result["loopLagUnderLoad"] = bench.loop_lag
    return result


def align(
    sent: list[tuple[int, float]], received: list[tuple[int, float]], max_skips: int = 24
) -> list[int]:
    """For each received ``(status, ms)``, the index of the sent one it is.

    The received list is the sent one less a prefix, a suffix and the odd lost message, and
    no message arrives before it was sent: of the monotone matchings with equal statuses and
    latency >= -0.3 ms (the clocks' mapping error), the one with the least total latency is
    the true one (pairing a message with a later one would put its arrival before its
    sending; with an earlier one, costs a pulse period of latency per message).
    """
    inf = math.inf
    width = max_skips + 1
    cost = [inf] * width  # cost[k]: received[0..i] matched, received[i] to sent[i + k]
    back: list[list[int]] = []
    for i, (status, at) in enumerate(received):
        row_cost = [inf] * width
        row_back = [0] * width
        best, best_k = inf, 0
        for k in range(width):
            if i > 0 and cost[k] < best:
                best, best_k = cost[k], k
            j = i + k
            if j >= len(sent) or sent[j][0] != status or at - sent[j][1] < -0.3:
                continue
            before = 0.0 if i == 0 else best
            if before < inf:
                row_cost[k] = before + (at - sent[j][1])
                row_back[k] = best_k
        cost = row_cost
        back.append(row_back)
    k = min(range(width), key=lambda x: cost[x])
    if cost[k] == inf:
        raise RuntimeError("what the receiver got does not match what was sent")
    matched = [0] * len(received)
    for i in range(len(received) - 1, -1, -1):
        matched[i] = i + k
        k = back[i][k]
    return matched


def seek_report(
    bench: Run, pairs: list[tuple[tuple[ClockEvent, float], float]], idle: dict[str, Any]
) -> dict[str, Any]:
    """Each seek: the first SPP received at or after its instant, and where the receiver's
    first counted clock after the Continue landed against the band's beat."""
    spps = [(recv, e.value) for (e, _), recv in pairs if e.kind == "spp"]
    continues = [(recv, e.pulse) for (e, _), recv in pairs if e.kind == "continue"]
    clocks = [(recv, e.pulse) for (e, _), recv in pairs if e.kind == "clock"]
    latency = idle.get("latencyMedianMs", 0.0)
    correct, landing = 0, []
    for seek in bench.seeks:
        got = next((v for t, v in spps if t >= seek["atMs"] - 1.0), None)
        seek["received"] = got
        correct += got == seek["expected"]
        if not seek["playing"]:
            continue
        cont = next(((t, n) for t, n in continues if t >= seek["atMs"] - 1.0), None)
        if cont is None:
            continue
        first = next(((t, n) for t, n in clocks if t > cont[0]), None)
        if first is None or first[1] != seek["expected"] * 6:
            seek["landingMs"] = None
            continue
        ideal = seek["atMs"] + seek["expected"] * SIXTEENTH_MS - seek["positionMs"]
        seek["landingMs"] = round(first[0] - ideal - latency, 4)
        landing.append(abs(seek["landingMs"]))
    return {
        "count": len(bench.seeks),
        "sppCorrect": correct,
        "landingErrorMaxMs": round(max(landing), 4) if landing else None,
        "each": bench.seeks,
    }


def print_report(result: dict[str, Any]) -> None:
    jack = result["jack"]
    print(
        f"JACK dummy {jack['rate']} Hz, period {jack['period']} frames ({jack['periodMs']} ms); "
        f"switch interval {result['switchIntervalS'] * 1000:.2f} ms; sender in "
        f"{'its own process' if result['status'].get('ownProcess') else 'a thread'}, real-time "
        f"{result['status'].get('realtime')}; jackd real-time {jack['realtime']}; "
        f"{result['messagesReceived']}/{result['messagesSent']} received, "
        f"{result['lostInTransit']} lost; JACK clock vs monotonic "
        f"{result['jackClockVsMonotonicPpm']} ppm"
    )
    for name, p in result["phases"].items():
        j, s, d = p["jitterMs"], p["sendLateMs"], p["jackDeliveryMs"]
        print(
            f"{name:7s} {p['seconds']:6.0f} s {p['pulses']:6d} pulses  "
            f"jitter p50 {j['p50']:.3f} p99 {j['p99']:.3f} max {j['max']:.3f} ms  "
            f"drift {p['driftMsPerMinute']:+.5f} ms/min ({p['driftPpm']:+.3f} ppm)"
        )
        print(
            f"{'':16s}send late p50 {s['p50']:.3f} p99 {s['p99']:.3f} max {s['max']:.3f} ms  "
            f"JACK delivery p50 {d['p50']:.3f} p99 {d['p99']:.3f} max {d['max']:.3f} ms  "
            f"(latency {p['latencyMedianMs']:.3f} ms)"
        )
    seeks = result["seeks"]
    print(
        f"seeks   SPP correct {seeks['sppCorrect']}/{seeks['count']}, first clock after "
        f"Continue within {seeks['landingErrorMaxMs']} ms of the band's beat"
    )
    if result["loopLagUnderLoad"]:
        lag = result["loopLagUnderLoad"]
        print(f"loop lag under load p50 {lag['p50Ms']} p99 {lag['p99Ms']} max {lag['maxMs']} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="idle playing, seconds")
    parser.add_argument("--load-duration", type=float, default=30.0, help="0: no loaded run")
    parser.add_argument("--seeks", type=int, default=20)
    parser.add_argument(
        "--hog-duration", type=float, default=10.0, help="playing beside a GIL hog; 0: none"
    )
    parser.add_argument("--clients", type=int, default=8, help="phones loading the server")
    parser.add_argument("--period", type=int, default=64, help="JACK frames per period")
    parser.add_argument("--rate", type=int, default=48_000, help="JACK sample rate")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s)")
    parser.add_argument(
        "--normal-priority", action="store_true", help="the sender thread without SCHED_FIFO"
    )
    parser.add_argument("--jack-realtime", action="store_true", help="jackd --realtime")
    parser.add_argument(
        "--thread", action="store_true", help="the sender as a thread of the server's process"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        return receiver_main()
    result = asyncio.run(run(args))
    print_report(result)
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
