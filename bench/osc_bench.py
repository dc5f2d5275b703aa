"""OSC beats against the timeline: when each ``/bandsync/beat`` leaves, against its beat.

Parts, all real: the BandSync server in this process with the ``OscBridge`` actor (its
sender thread beside the server's loop, as in production) sending to a UDP receiver in its
own process, which keeps the kernel's receive timestamp of every datagram (``SO_TIMESTAMPNS``:
when the datagram reached the receiving socket, whatever that process was doing) mapped to
CLOCK_MONOTONIC, and the time its own thread read it. The band plays at ``--tempo``.

Two runs of ``--duration`` seconds each: idle, then loaded. Under load, phones in another
process (``--clients`` socket.io clients on 127.0.0.2+) run a session of their own: its
leader changes tempo 30 times a second and every phone syncs its clock 20 times a second,
while the console changes the band's stage message 10 times a second (a publication the
bridge hears each time): the server's loop is busy and the GIL contended (the same load as
bench/midi_clock_bench.py).

A beat's ideal instant is where the timeline reaches it, in closed form from the segment the
band played (``anchor + (count - beat) * 60000 / tempo``, independent of the bridge's own
arithmetic, which is checked against it through the server time each beat carries). Its
error is the kernel's receive stamp minus that instant, in server time (a constant shift of
CLOCK_MONOTONIC): the send time plus the loopback hop (a few microseconds).

    .venv/bin/python bench/osc_bench.py [--duration 60] [--tempo 240] [--clients 8]
        [--switch-interval SECONDS] [--no-realtime]

Prints p50/p99/max per run and writes bench/results/osc_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import socket
import struct
import subprocess
import sys
import time
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

from bandsync_desktop.actors.osc import OscBridge  # noqa: E402
from bandsync_desktop.config import Settings  # noqa: E402
from bandsync_desktop.core.timeline import Segment  # noqa: E402
from bandsync_desktop.server.app import ServerRunner, create_app  # noqa: E402
from bandsync_desktop.server.peers import ActorHost  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "osc_bench.json"
SO_TIMESTAMPNS = 35  # Linux


# -- the receiver process -------------------------------------------------------------------


def receiver_main() -> int:
    """Bind a UDP port, print it, record every ``/bandsync/beat`` until stdin closes."""
    from pythonosc.osc_packet import OscPacket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(0.2)
    best = (math.inf, 0.0)
    for _ in range(200):  # CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest bracket
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        if after - before < best[0]:
            best = (after - before, wall - (before + after) / 2)
    wall_minus_mono = best[1]
    print(sock.getsockname()[1], flush=True)
    records: list[list[Any]] = []
    done = False

    def watch_stdin() -> None:
        nonlocal done
        sys.stdin.read()
        done = True

    import threading

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not done:
        try:
            data, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except TimeoutError:
            continue
        read_at = time.monotonic()
        kernel_at = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("@qq", payload[:16])
                kernel_at = seconds + nanoseconds / 1e9 - wall_minus_mono
        for timed in OscPacket(data).messages:
            if timed.message.address == "/bandsync/beat":
                records.append([kernel_at, read_at, *timed.message.params])
    json.dump(records, sys.stdout)
    return 0


# -- the bench --------------------------------------------------------------------------------


async def play_for(host: ActorHost, seconds: float) -> tuple[Segment, float, float]:
    """Play for ``seconds``; the segment played, and the server times the run began and
    ended (beats between them are this run's)."""
    await host.submit("play", {})
    await asyncio.sleep(0.5)  # (past the play's lead: the segment is in force)
    timeline = host.timeline
    assert timeline is not None
    segment = timeline.segment_at(host.now_ms())
    begin = host.now_ms()
    await asyncio.sleep(seconds)
    end = host.now_ms()
    await host.submit("stop", {})
    await asyncio.sleep(0.3)
    return segment, begin, end


async def loaded(
    host: ActorHost, url: str, args: argparse.Namespace
) -> tuple[tuple[Segment, float, float], dict[str, float]]:
    async with under_load(host, url, args.clients, args.duration):
        run = await play_for(host, args.duration)
    return run, loop_lag(host)


def figures(
    records: list[list[Any]], run: tuple[Segment, float, float], offset: float
) -> dict[str, Any]:
    segment, begin, end = run
    errors, read_errors, arg_errors = [], [], []
    for kernel_at, read_at, _bar, _beat, count, count_in, server_time in records:
        if count_in or not begin <= server_time <= end:
            continue
        ideal = segment.anchor_ms + (count - segment.beat) * 60_000.0 / segment.tempo_bpm
        arg_errors.append(abs(server_time - ideal))
        if kernel_at is not None:
            errors.append(kernel_at * 1000.0 + offset - ideal)
        read_errors.append(read_at * 1000.0 + offset - ideal)
    expected = math.floor((end - begin) / segment.beat_ms)

    return {
        "beats": len(read_errors),
        "expectedBeats": expected,
        "sent": summary(errors, "Ms"),  # kernel receive stamp - ideal: the send time
        "read": summary(read_errors, "Ms"),  # the receiver's own thread reading it
        "serverTimeArgMaxErrorMs": round(max(arg_errors, default=0.0), 6),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    receiver = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
        [sys.executable, __file__, "--receive"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    runner: ServerRunner | None = None
    try:
        port = int(await readline(receiver))
        bridge = OscBridge([("127.0.0.1", port)], realtime=not args.no_realtime)
        settings = Settings(host="127.0.0.1", port=0).with_overrides(LOAD_OVERRIDES)
        runner = ServerRunner(create_app(settings, band_session=True, actors=[bridge]))
        await runner.start("127.0.0.1", 0)
        assert runner.actors is not None
        host = runner.actors.host
        await host.submit("set_tempo", {"tempo": args.tempo})
        await asyncio.sleep(0.3)
        idle = await play_for(host, args.duration)
        busy, lag = await loaded(host, runner.url, args) if args.clients > 0 else (None, None)
        offset = monotonic_offset_ms(host.now_ms)
        status = dict(bridge.status())
        assert receiver.stdin is not None and receiver.stdout is not None
        receiver.stdin.close()
        records = json.loads(await asyncio.to_thread(receiver.stdout.read))
    finally:
        if receiver.poll() is None:
            receiver.kill()
        if runner is not None:
            await runner.stop()
    result: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["bench/osc_bench.py", *sys.argv[1:]]),
        "durationS": args.duration,
        "tempoBpm": args.tempo,
        "clients": args.clients,
        "switchIntervalS": sys.getswitchinterval(),
        "scheduling": status.get("scheduling"),
        "idle": figures(records, idle, offset),
        "bridge": status,
    }
    if busy is not None:
        result["loaded"] = figures(records, busy, offset)
        result["loaded"]["loopLag"] = lag
    return result


def print_report(result: dict[str, Any]) -> None:
    print(
        f"OSC beats at {result['tempoBpm']:g} BPM, {result['durationS']:g} s per run, "
        f"switch interval {result['switchIntervalS'] * 1000:.2f} ms, "
        f"sender thread {result['scheduling']}"
    )
    for name in ("idle", "loaded"):
        if name not in result:
            continue
        run = result[name]
        sent, read = run["sent"], run["read"]
        print(
            f"  {name:7s} {run['beats']:5d} beats (of {run['expectedBeats']}): "
            f"sent - ideal p50 {sent['p50Ms']} p99 {sent['p99Ms']} max {sent['maxMs']} "
            f"(min {sent['minMs']}) ms; read by the receiver p99 {read['p99Ms']} ms"
        )
        if "loopLag" in run:
            lag = run["loopLag"]
            print(f"          loop lag p50 {lag['p50Ms']} p99 {lag['p99Ms']} max {lag['maxMs']} ms")
    print(
        "  server time argument vs the timeline: max "
        f"{result['idle']['serverTimeArgMaxErrorMs']} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--tempo", type=float, default=240.0, help="BPM (more beats: 280 max)")
    parser.add_argument(
        "--clients", type=int, default=8, help="phones loading the server (0: none)"
    )
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s)")
    parser.add_argument(
        "--no-realtime", action="store_true", help="the sender thread at normal priority"
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
