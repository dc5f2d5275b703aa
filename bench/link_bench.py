"""How closely an independent Ableton Link peer follows the band: phase error and drift.

The band's server runs here with the Link bridge (``bandsync_desktop/actors/link.py``); the
Link peer is another process (an ``aalink.Link`` of its own, ``tests/actors/test_link.py``
run as a program) that samples its beat every ~10 ms at instants it reads from
``time.monotonic()``, which this process maps to server time (the server clock is a
constant shift of it). Each sample's error is the peer's beat minus the band's timeline's
at that instant, modulo the quantum (the band's beats per bar), in milliseconds.

The band plays for ``--duration`` seconds; every ``--change-every`` seconds the tempo
changes, alternately from the console (the band's ``set_tempo``: Link must switch at the
band's instant) and, in follow mode, from the Link peer (the band takes it on a beat, and
Link's grid is the band's again from then on).

Figures: p50/p95/p99/max of |error| over the steady samples (all but the windows where Link
is told of a change: ``--settle-ms`` after each switch, and, for a Link-side change, from
the peer's change until the band's switch, when Link runs at the peer's tempo by design),
the slope of a linear fit of error against time (drift), and per change: which side, the
beat it took effect on, the largest error in the window after the switch and after it.

    .venv/bin/python bench/link_bench.py [--duration 60] [--mode follow|lead]
    .venv/bin/python bench/link_bench.py --duration 600      # the issue's 10 minutes

Prints the figures and writes bench/results/link_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchstats import percentile, write_results  # noqa: E402

from bandsync_desktop.actors.link import LinkBridge  # noqa: E402
from bandsync_desktop.config import Settings  # noqa: E402
from bandsync_desktop.core.timeline import bar_beat  # noqa: E402
from bandsync_desktop.server.app import ServerRunner, create_app  # noqa: E402
from tests.actors.test_link import LinkPeer, TimelineHistory, server_offset_ms  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "link_bench.json"
#: A sample whose instant the peer could not read within this is not a measurement.
MAX_WIDTH_US = 200.0
TEMPOS = (126.0, 120.0, 132.0, 117.5)


async def run(
    duration_s: float, mode: str, change_every_s: float, settle_ms: float, period_s: float
) -> dict[str, Any]:
    bridge = LinkBridge(mode)  # type: ignore[arg-type]
    app = create_app(Settings(host="127.0.0.1", port=0), band_session=True, actors=[bridge])
    runner = ServerRunner(app)
    await runner.start("127.0.0.1", 0)
    actors = runner.actors
    assert actors is not None
    host = actors.host
    history = TimelineHistory(host)
    peer = LinkPeer(server_offset_ms(host.now_ms), period_s=period_s, tempo=120)
    changes: list[dict[str, Any]] = []
    try:
        await peer.start()
        await peer.wait_for(lambda s: s.peers >= 1 and abs(s.tempo - 120) < 0.01, timeout=10)
        session = await host.submit("play", {"countInBars": 0})
        started = session.timeline.latest.start_ms
        end = started + duration_s * 1000.0
        index = 0
        next_change = started + change_every_s * 1000.0
        while host.now_ms() < end:
            await asyncio.sleep(max(0.0, (min(next_change, end) - host.now_ms()) / 1000.0))
            if host.now_ms() >= end:
                break
            tempo = TEMPOS[index % len(TEMPOS)]
            side = "link" if mode == "follow" and index % 2 else "console"
            asked = host.now_ms()
            before = host.timeline.latest  # type: ignore[union-attr]
            if side == "console":
                session = await host.submit("set_tempo", {"tempo": tempo})
                switch = session.timeline.latest
            else:
                await peer.send(tempo=tempo)
                switch = await _band_switch(host, before, tempo)
            changes.append(
                {
                    "side": side,
                    "from": before.tempo_bpm,
                    "to": tempo,
                    "asked": asked,
                    "at": switch.start_ms,
                    "beat": switch.beat,
                    "beatsPerBar": switch.beats_per_bar,
                }
            )
            index += 1
            next_change += change_every_s * 1000.0
        await asyncio.sleep(0.3)
    finally:
        await peer.close()
        await runner.stop()
    return _figures(peer, history, changes, started, end, mode, duration_s, settle_ms)


async def _band_switch(host: Any, before: Any, tempo: float) -> Any:
    """The band's segment that takes the peer's ``tempo`` (the bridge submits it)."""
    for _ in range(500):
        latest = host.timeline.latest
        if latest is not before and abs(latest.tempo_bpm - tempo) < 0.01:
            return latest
        await asyncio.sleep(0.01)
    raise RuntimeError(f"the band never took the Link peer's tempo {tempo}")


def _figures(
    peer: LinkPeer,
    history: TimelineHistory,
    changes: list[dict[str, Any]],
    started: float,
    end: float,
    mode: str,
    duration_s: float,
    settle_ms: float,
) -> dict[str, Any]:
    # Windows where Link is, by design, not (yet) on the band's grid.
    excluded = []
    for change in changes:
        begin = change["asked"] if change["side"] == "link" else change["at"]
        excluded.append((begin, change["at"] + settle_ms))
    steady: list[tuple[float, float]] = []
    wide = 0
    for sample in peer.samples:
        if not started + settle_ms <= sample.server_ms < end:
            continue
        if sample.width_us > MAX_WIDTH_US:
            wide += 1
            continue
        if any(a <= sample.server_ms < b for a, b in excluded):
            continue
        error = history.phase_error_ms(sample)
        if error is not None:
            steady.append((sample.server_ms, error))
    magnitudes = [abs(e) for _, e in steady]
    times_min = [(t - started) / 60000.0 for t, _ in steady]
    fit = statistics.linear_regression(times_min, [e for _, e in steady])

    per_change = []
    for change in changes:
        window = _errors(peer, history, change["at"], change["at"] + settle_ms)
        after = _errors(peer, history, change["at"] + settle_ms, change["at"] + 2000.0)
        before = _errors(peer, history, change["at"] - 2000.0, change["at"])
        pending: list[float] = []
        if change["side"] == "link":
            before = _errors(peer, history, change["asked"] - 2000.0, change["asked"])
            # Link runs at the peer's tempo until the band switches: its grid parts from
            # the band's, and is put back (a jump for the peers) at the switch.
            pending = _errors(peer, history, change["asked"], change["at"])
        position = bar_beat(change["beat"], change["beatsPerBar"])
        on_beat = bool(after) and max(map(abs, after)) <= 1.0 and max(map(abs, before)) <= 1.0
        per_change.append(
            {
                "side": change["side"],
                "tempo": f"{change['from']:g} -> {change['to']:g}",
                "bandSwitchAfterAskMs": round(change["at"] - change["asked"], 1),
                "onBeat": f"{position.bar}:{position.beat}"
                + ("" if position.fraction < 1e-6 else f"+{position.fraction:.3f}"),
                "maxAbsErrorBeforeMs": _round(max(map(abs, before), default=None)),
                "maxAbsErrorSwitchWindowMs": _round(max(map(abs, window), default=None)),
                "maxAbsErrorPendingMs": _round(max(map(abs, pending), default=None)),
                "maxAbsErrorAfterMs": _round(max(map(abs, after), default=None)),
                "sameBeat": on_beat,
            }
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "bench/link_bench.py " + " ".join(sys.argv[1:]),
        "mode": mode,
        "durationS": duration_s,
        "loadAverage1m": round(os.getloadavg()[0], 2),
        "samples": len(steady),
        "samplesDroppedWideInstant": wide,
        "settleMs": settle_ms,
        "phaseErrorMs": {
            "p50": _round(percentile(magnitudes, 0.5)),
            "p95": _round(percentile(magnitudes, 0.95)),
            "p99": _round(percentile(magnitudes, 0.99)),
            "max": _round(max(magnitudes, default=None)),
            "meanSigned": _round(statistics.fmean(e for _, e in steady)),
        },
        "slopeMsPerMinute": round(fit.slope, 6),
        "changes": per_change,
    }


def _errors(peer: LinkPeer, history: TimelineHistory, since: float, until: float) -> list[float]:
    found = []
    for sample in peer.samples:
        if since <= sample.server_ms < until and sample.width_us <= MAX_WIDTH_US:
            error = history.phase_error_ms(sample)
            if error is not None:
                found.append(error)
    return found


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of playing")
    parser.add_argument(
        "--mode",
        choices=("follow", "lead"),
        default="follow",
        help="follow: tempo changes from both sides; lead: from the console",
    )
    parser.add_argument("--change-every", type=float, default=10.0, help="seconds between changes")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=150.0,
        help="after a switch, the window Link has to tell the peer (its "
        "state messages are at least 50 ms apart)",
    )
    parser.add_argument("--period", type=float, default=0.01, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(
        run(args.duration, args.mode, args.change_every, args.settle_ms, args.period)
    )
    errors = result["phaseErrorMs"]
    print(
        f"Link peer phase error vs the band ({result['samples']} samples, "
        f"{args.duration:g} s, {args.mode} mode, load {result['loadAverage1m']}):"
    )
    print(
        f"  |error| p50 {errors['p50']} ms  p95 {errors['p95']} ms  p99 {errors['p99']} ms  "
        f"max {errors['max']} ms  (mean signed {errors['meanSigned']} ms)"
    )
    print(f"  drift: slope {result['slopeMsPerMinute'] * 1000:.3f} us/min")
    for change in result["changes"]:
        pending = change["maxAbsErrorPendingMs"]
        print(
            f"  {change['side']:7s} {change['tempo']:16s} on {change['onBeat']:>8s} "
            f"({change['bandSwitchAfterAskMs']:.0f} ms after asked"
            + (f", Link apart by up to {pending} ms until then" if pending is not None else "")
            + ")\n   "
            f"before {change['maxAbsErrorBeforeMs']} ms  switch window "
            f"{change['maxAbsErrorSwitchWindowMs']} ms  after {change['maxAbsErrorAfterMs']} ms"
            f"  same beat: {change['sameBeat']}"
        )
    write_results(args.out, result)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
