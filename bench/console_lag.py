"""Console responsiveness: event-loop lag of the leader console with many followers playing.

The console runs as it does for a band leader: a ``QApplication`` (offscreen) on a qasync
loop, the server in that loop, the main window shown and refreshing (metronome at ~60 Hz,
member table, connection panel). A second process connects N real ``socketio.AsyncClient``
followers (``bandsync_desktop.gui.demo.SimulatedFollower``): they join the band session, run
clock-sync exchanges and report their link figures every few seconds, and answer the
server's heartbeats, as the follower page does. Then the console plays and changes the tempo
every two seconds while the lag is sampled:

* asyncio lag: how late a coroutine sleeping 50 ms wakes up on the console's loop;
* Qt lag: how late a 50 ms ``QTimer`` fires (what a click or a repaint waits for).

Figures are printed and written to ``bench/results/console_lag.json``.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/console_lag.py [--followers 200]
        [--seconds 30] [--legacy-share 0.0]

``--legacy-share`` is the fraction of followers that join as legacy clients and receive
``scroll_tick`` at 10 Hz (the original app); the follower page computes beats itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchstats import percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "console_lag.json"
SAMPLE_S = 0.05


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "samples": len(values),
        "p50Ms": None if not values else round(statistics.median(values), 2),
        "p99Ms": None if not values else round(percentile(values, 0.99) or 0.0, 2),
        "maxMs": None if not values else round(max(values), 2),
    }


# -- the followers' process ---------------------------------------------------------------


async def run_followers(
    url: str, count: int, legacy_share: float, hold_s: float, sync_every: float, nice: int
) -> None:
    """Connect ``count`` followers, keep them syncing, report their counters as JSON."""
    sys.path.insert(0, str(ROOT))
    from bandsync_desktop.gui.demo import DEMO_MEMBERS, SimulatedFollower

    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    if nice:
        # The followers stand in for phones, which do not share the console's CPU: on a
        # 2-core machine they yield to it instead of competing at equal priority.
        os.nice(nice)
    rng = random.Random(7)
    legacy = round(count * legacy_share)
    members = [
        SimulatedFollower(
            url,
            f"Player {index + 1}",
            DEMO_MEMBERS[index % len(DEMO_MEMBERS)][1],
            timeline=index >= legacy,
        )
        for index in range(count)
    ]
    for start in range(0, count, 20):  # connect in small waves, as a band arriving
        batch = members[start : start + 20]
        await asyncio.gather(*(m.join() for m in batch))
        await asyncio.gather(*(m.sync(3) for m in batch))
    print(json.dumps({"joined": count}), flush=True)

    async def keep_syncing(member: SimulatedFollower) -> None:
        await asyncio.sleep(rng.uniform(0, 5))
        while sync_every > 0:
            await member.sync(2)
            await asyncio.sleep(sync_every * rng.uniform(0.8, 1.2))

    def totals() -> dict[str, int]:
        return {
            "ticks": sum(m.stats.ticks for m in members),
            "plays": sum(m.stats.plays for m in members),
            "tempoChanges": sum(m.stats.tempo_changes for m in members),
            "snapshots": sum(m.stats.snapshots for m in members),
            "followersThatSawPlay": sum(1 for m in members if m.stats.plays),
        }

    async def report() -> None:
        # What they received so far, every second: the console keeps the latest, so it
        # never depends on this (busy, maybe starved) process answering at the end.
        while True:
            await asyncio.sleep(1.0)
            print(json.dumps({"totals": totals()}), flush=True)

    tasks = [asyncio.create_task(keep_syncing(m)) for m in members]
    tasks.append(asyncio.create_task(report()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), hold_s)  # until the console says stop
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"totals": totals()}), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(m.close() for m in members)), 10)


# -- the console's process ----------------------------------------------------------------


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from bandsync_desktop.gui.main_window import MainWindow

    window: MainWindow = args.window
    bridge = window.bridge
    await window.start_server()
    assert bridge.runner is not None
    window.resize(1600, 1000)
    window.show()
    url = f"http://127.0.0.1:{bridge.runner.port}"
    hold_s = args.seconds + 60.0
    followers = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--followers-of",
        url,
        "--followers",
        str(args.followers),
        "--legacy-share",
        str(args.legacy_share),
        "--hold",
        str(hold_s),
        "--sync-every",
        str(args.sync_every),
        "--followers-nice",
        str(args.followers_nice),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        return await play_and_measure(args, window, followers)
    finally:
        if followers.returncode is None:  # whatever happened, leave no followers behind
            followers.kill()
            await followers.wait()


async def play_and_measure(
    args: argparse.Namespace, window: Any, followers: asyncio.subprocess.Process
) -> dict[str, Any]:
    from PySide6.QtCore import QElapsedTimer, QTimer

    bridge = window.bridge
    assert followers.stdout is not None
    started = time.monotonic()
    line = await asyncio.wait_for(followers.stdout.readline(), timeout=120)
    if not line:
        raise RuntimeError("the followers' process ended before they all joined (its stderr)")
    joined = json.loads(line)["joined"]
    print(f"{joined} followers joined in {time.monotonic() - started:.1f} s", file=sys.stderr)
    latest: dict[str, Any] = {}

    async def read_reports() -> None:
        assert followers.stdout is not None
        while text := await followers.stdout.readline():
            latest.update(json.loads(text))

    reader = asyncio.create_task(read_reports())
    join_s = time.monotonic() - started
    session = bridge.session
    assert session is not None and len(session.members) == joined, "not everyone joined"
    await asyncio.sleep(2.0)  # let the joins' snapshots and first reports settle
    if args.gc_freeze:
        from bandsync_desktop.app import freeze_startup_objects

        freeze_startup_objects()  # as the console does once its window is up

    gc_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_start: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_ms[info["generation"]].append((time.perf_counter() - gc_start[0]) * 1000.0)

    gc.callbacks.append(on_gc)
    slot_ms: dict[str, list[float]] = args.slot_ms
    for values in slot_ms.values():
        values.clear()  # only what happens while measuring
    loop_lag: list[float] = []
    qt_lag: list[float] = []
    stop = asyncio.Event()

    async def sample_loop() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(SAMPLE_S)
            loop_lag.append(max(0.0, (loop.time() - before - SAMPLE_S) * 1000.0))

    elapsed = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(int(SAMPLE_S * 1000))

    def on_timer() -> None:
        if elapsed.isValid():
            qt_lag.append(max(0.0, elapsed.nsecsElapsed() / 1e6 - SAMPLE_S * 1000.0))
        elapsed.restart()

    timer.timeout.connect(on_timer)
    bridge.set_count_in(1)
    bridge.play()
    sampler = asyncio.create_task(sample_loop())
    timer.start()
    t_end = time.monotonic() + args.seconds
    step = 1
    while time.monotonic() < t_end:
        await asyncio.sleep(args.tempo_every or 1.0)
        if args.tempo_every:
            bridge.nudge_tempo(step)
            step = -step
    stop.set()
    timer.stop()
    await sampler
    gc.callbacks.remove(on_gc)
    status = bridge.status()
    rows = bridge.member_rows()
    bridge.pause()
    await asyncio.sleep(0.5)
    await asyncio.sleep(1.5)  # their last report includes the end of the run
    reader.cancel()
    totals = latest.get("totals", {})
    await bridge.stop()  # the followers' process is killed on the way out
    return {
        "followers": joined,
        "legacyShare": args.legacy_share,
        "seconds": args.seconds,
        "joinSeconds": round(join_s, 2),
        "asyncioLag": summary(loop_lag),
        "qtTimerLag": summary(qt_lag),
        "serverLoopLag": {"p50Ms": status.lag_p50_ms, "p99Ms": status.lag_p99_ms},
        "tempoEverySeconds": args.tempo_every,
        "heartbeatSeconds": args.heartbeat_s,
        "syncEverySeconds": args.sync_every,
        "followersNice": args.followers_nice,
        "gcFreeze": args.gc_freeze,
        "guiSlotMs": {name: summary(values) for name, values in slot_ms.items()},
        "gcPauseMs": {f"gen{g}": summary(values) for g, values in gc_ms.items()},
        "membersInTable": len(rows),
        "membersWithRtt": sum(1 for r in rows if r.rtt_ms is not None),
        "followerTotals": totals,
    }


def instrument_slots() -> dict[str, list[float]]:
    """Time the console's own GUI work (slots that run on the loop), patched on the classes
    before the window is built so that its signal connections use the timed versions."""
    from bandsync_desktop.gui.bridge import Bridge
    from bandsync_desktop.gui.connection_panel import ConnectionPanel
    from bandsync_desktop.gui.main_window import MainWindow
    from bandsync_desktop.gui.transport_panel import TransportPanel

    timings: dict[str, list[float]] = {}
    targets = {
        "members table": (MainWindow, "_on_members_changed"),
        "session view": (MainWindow, "_on_session_changed"),
        "metronome frame": (TransportPanel, "refresh_position"),
        "connection panel": (ConnectionPanel, "show_status"),
        "member rows": (Bridge, "member_rows"),
    }
    for name, (owner, attribute) in targets.items():
        original = getattr(owner, attribute)
        samples = timings.setdefault(name, [])

        def timed(
            self: Any, *a: Any, _original: Any = original, _samples: list[float] = samples
        ) -> Any:
            start = time.perf_counter()
            try:
                return _original(self, *a)
            finally:
                _samples.append((time.perf_counter() - start) * 1000.0)

        setattr(owner, attribute, timed)
    return timings


def console_main(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    import qasync
    from PySide6.QtWidgets import QApplication

    from bandsync_desktop.config import Settings
    from bandsync_desktop.gui.bridge import Bridge
    from bandsync_desktop.gui.main_window import MainWindow
    from bandsync_desktop.gui.setlist import SetLibrary
    from bandsync_desktop.gui.theme import STYLESHEET
    from bandsync_desktop.gui.user_settings import UserSettings

    qapp = QApplication([sys.argv[0]])
    qapp.setStyleSheet(STYLESHEET)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        args.slot_ms = instrument_slots()
        settings = Settings(
            host="127.0.0.1",
            port=0,
            max_members=max(64, args.followers + 8),
            heartbeat_interval_s=args.heartbeat_s,
        )
        bridge = Bridge(settings)
        args.window = MainWindow(
            bridge,
            UserSettings(Path(scratch) / "settings.json"),
            SetLibrary(Path(scratch) / "sets"),
            interactive=False,
        )
        try:
            result = loop.run_until_complete(measure(args))
        finally:
            loop.run_until_complete(bridge.shutdown())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadAverage1mAtEnd": round(os.getloadavg()[0], 2),
        "note": "shared 2-core machine; the followers run in a second process on it",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    ok = (result["asyncioLag"]["p99Ms"] or 0) < 20.0
    print(
        f"event-loop lag p99 {result['asyncioLag']['p99Ms']} ms: "
        f"{'under' if ok else 'OVER'} the 20 ms target"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--legacy-share", type=float, default=0.0)
    parser.add_argument(
        "--tempo-every", type=float, default=2.0, help="seconds between tempo changes (0: none)"
    )
    parser.add_argument(
        "--heartbeat-s", type=float, default=10.0, help="server heartbeat interval (seconds)"
    )
    parser.add_argument(
        "--sync-every", type=float, default=5.0, help="followers' clock-sync period (0: none)"
    )
    parser.add_argument(
        "--followers-nice",
        type=int,
        default=0,
        help="niceness of the followers' process (they stand in for phones, which have their "
        "own CPUs; 0: they compete with the console at equal priority)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="leave start-up objects to the garbage collector (the console freezes them)",
    )
    parser.add_argument("--followers-of", help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.followers_of:
        asyncio.run(
            run_followers(
                args.followers_of,
                args.followers,
                args.legacy_share,
                args.hold,
                args.sync_every,
                args.followers_nice,
            )
        )
        return 0
    return console_main(args)


if __name__ == "__main__":
    sys.exit(main())
