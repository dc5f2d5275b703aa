"""Replays the clock samples a ``sync_bench.py`` run recorded through the offset estimator.

``bench/sync_bench.py`` keeps every exchange of its Python followers (``samples``: t0, t1, t2,
t3) with each follower's true offset (``trueOffsetMs``; their clocks are the host's), so the
one-way delays the link and the host really gave are known, and other estimators can be tried
on exactly those samples. Prints, per follower, each direction's delay (min / p10 / p50: the
floor the estimator's intervals can reach), then for the product's estimator
(``core/clocksync.py``) with other windows, and with the rate given (skew 0, drift bound
``--known-ppm``: what pinning the rate at once could win), the |offset error| p95 and the
spread across the followers (max - min of their errors at the same true instants, every
``STEP_MS``) from ``--from-s`` after the first arrival.

    .venv/bin/python bench/sync_bench.py --engine mixed --loopback-s 10 --wifi-s 120 \\
        --out bench/results/sync_bench_mixed.json
    .venv/bin/python bench/replay_samples.py bench/results/sync_bench_mixed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchstats import percentile, write_results  # noqa: E402

from bandsync_desktop.core.clocksync import OffsetEstimator, SyncSample  # noqa: E402

WINDOWS = (32, 64, 128)  # the product keeps 32 (16 s at two exchanges a second)
STEP_MS = 250.0  # how often the followers' errors are compared


class KnownRate(OffsetEstimator):
    """The estimator told the true rate from the first sample: skew 0 (the followers' clocks
    are the host's), its drift bound ``drift``."""

    def __init__(self, window: int, drift: float) -> None:
        super().__init__(window)
        self._known = drift

    def add(self, sample: SyncSample) -> None:
        super().add(sample)
        self._skew, self._drift = 0.0, self._known


def quantile(values: list[float], q: float) -> float:
    value = percentile(values, q)
    assert value is not None, "no values"
    return value


def delays(follower: dict[str, Any]) -> dict[str, dict[str, float]]:
    truth = follower["trueOffsetMs"]
    up = [t1 - t0 - truth for t0, t1, _, _ in follower["samples"]]
    down = [t3 - t2 + truth for _, _, t2, t3 in follower["samples"]]
    return {
        name: {"min": min(v), "p10": quantile(v, 0.1), "p50": quantile(v, 0.5)}
        for name, v in (("up", up), ("down", down))
    }


def replay(
    followers: dict[str, dict[str, Any]], make: Any, from_ms: float
) -> dict[str, float | int]:
    """Each follower's signed error at the same true instants (every ``STEP_MS``, from
    ``from_ms`` after the first arrival), given the samples that had arrived by then."""
    runs = []
    for follower in followers.values():
        truth = follower["trueOffsetMs"]
        samples = [SyncSample(*s) for s in follower["samples"]]
        runs.append((truth, samples))
    start = min(samples[0].t3 + truth for truth, samples in runs)
    end = min(samples[-1].t3 + truth for truth, samples in runs)
    instants = []
    t = start + from_ms
    while t <= end:
        instants.append(t)
        t += STEP_MS
    series = []
    for truth, samples in runs:
        estimator = make()
        arrived = 0
        errors = []
        for instant in instants:
            while arrived < len(samples) and samples[arrived].t3 + truth <= instant:
                estimator.add(samples[arrived])
                arrived += 1
            errors.append(estimator.offset(instant - truth) - truth)
        series.append(errors)
    spread = [max(s[i] for s in series) - min(s[i] for s in series) for i in range(len(instants))]
    errors = [abs(e) for s in series for e in s]
    return {
        "absErrorP95Ms": round(quantile(errors, 0.95), 3),
        "spreadP50Ms": round(quantile(spread, 0.5), 3),
        "spreadP95Ms": round(quantile(spread, 0.95), 3),
        "instants": len(instants),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a sync_bench.py JSON")
    parser.add_argument("--phase", default="wifi")
    parser.add_argument("--from-s", type=float, default=20.0, help="skip the join (s)")
    parser.add_argument("--known-ppm", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/replay_samples.json")
    args = parser.parse_args()
    phase = json.loads(args.results.read_text())["phases"][args.phase]
    followers = {n: f for n, f in phase["followers"].items() if "samples" in f}
    if len(followers) < 2:
        parser.error("the run has fewer than two Python followers with samples")
    out: dict[str, Any] = {"results": str(args.results), "phase": args.phase, "delays": {}}
    for name, follower in followers.items():
        d = out["delays"][name] = delays(follower)
        print(
            f"{name:5} {len(follower['samples']):4} samples   one-way ms min/p10/p50: up "
            + "/".join(f"{d['up'][k]:.2f}" for k in ("min", "p10", "p50"))
            + "  down "
            + "/".join(f"{d['down'][k]:.2f}" for k in ("min", "p10", "p50"))
        )
    from_ms = args.from_s * 1000.0
    known = args.known_ppm * 1e-6
    out["replays"] = {}
    for window in WINDOWS:
        for label, make in (
            (f"product, window {window}", lambda w=window: OffsetEstimator(w)),
            (
                f"rate known ±{args.known_ppm:g} ppm, window {window}",
                lambda w=window: KnownRate(w, known),
            ),
        ):
            figures = out["replays"][label] = replay(followers, make, from_ms)
            print(
                f"{label:34} |error| p95 {figures['absErrorP95Ms']:.3f}   spread p50 "
                f"{figures['spreadP50Ms']:.3f} p95 {figures['spreadP95Ms']:.3f} ms"
            )
    write_results(args.out, out)


if __name__ == "__main__":
    main()
