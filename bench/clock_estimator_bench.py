"""The offset estimator on simulated skewed clocks: the "Skewed clocks" table of docs/timing.md.

Deterministic (no network, no browsers): the runs of ``tests/core/test_clock_skew.py`` (the
page's exchange schedule for 150 s over a quiet LAN and the Wi-Fi emulator's busy link, a
client clock at ±100 and ±500 ppm, the tests' seeds) through ``core/clocksync.py``, or through
another copy of it (``--module``, e.g. the committed one, to compare). Per case: offset error
p95 from 1 s, p95 / max from 30 s, and how often the truth fell outside the reported
uncertainty; the same for 8 minute runs from 2 minutes on. Then the spread across followers:
six clients on the busy link, each with its own clock and link draws, read at the same true
instants; the spread is max - min of their signed errors at each instant (what a listener
hears between two phones, less audio).

    .venv/bin/python bench/clock_estimator_bench.py
    git show HEAD:bandsync_desktop/core/clocksync.py > /tmp/old_clocksync.py
    .venv/bin/python bench/clock_estimator_bench.py --module /tmp/old_clocksync.py \
        --out /tmp/clock_estimator_bench_old.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.core.test_clock_skew import (  # noqa: E402
    LAN,
    WIFI,
    Link,
    Run,
    python_run,
    quantile,
    readings,
    simulate,
)

NAME = "clock_estimator_bench"
#: Run lengths (s) -> the two instants (s after the join) the errors are taken from: the
#: docs' 150 s runs (from 1 s, and from 30 s once a bad crystal's rate is learnt), and 8 min
#: runs from 2 min on, once the anchors pin the rate (a set lasts far longer).
SETTLED_S = {150.0: (1.0, 30.0), 480.0: (30.0, 120.0)}
#: The followers of the spread: (ppm, seed); clocks spread over ±100 ppm, and a set with two
#: bad crystals at ±500 ppm.
FOLLOWERS = {
    "within100": [
        (-100.0, 201),
        (-60.0, 202),
        (-20.0, 203),
        (20.0, 204),
        (60.0, 205),
        (100.0, 206),
    ],
    "with500": [(-500.0, 301), (-60.0, 302), (-20.0, 303), (20.0, 304), (60.0, 305), (500.0, 306)],
}


def load(module: str) -> ModuleType:
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location("estimator_under_test", module)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # (dataclasses look their module up)
        spec.loader.exec_module(loaded)
        return loaded
    return importlib.import_module(module)


def estimates(core: ModuleType, run: Run, window: int | None) -> list[tuple[float, float] | None]:
    estimator = core.OffsetEstimator() if window is None else core.OffsetEstimator(window)
    return python_run(run, estimator=estimator, sample=core.SyncSample)[0]


def signed_errors(
    run: Run, found: list[tuple[float, float] | None]
) -> dict[float, tuple[float, float]]:
    """True ms since the join -> (estimated - true server time, reported uncertainty)."""
    return {since: (error, unc) for since, error, unc in readings(run, found)}


def case(
    core: ModuleType, ppm: float, link: Link, window: int | None, seconds: float
) -> dict[str, Any]:
    run = simulate(ppm, link, seconds=seconds, seed=int(ppm) + 7)
    found = signed_errors(run, estimates(core, run, window))
    out: dict[str, Any] = {"ppm": ppm}
    for after_s in SETTLED_S[seconds]:
        late = [abs(e) for since, (e, _) in found.items() if since >= after_s * 1000.0]
        unc = [u for since, (_, u) in found.items() if since >= after_s * 1000.0]
        out[f"from{after_s:.0f}s"] = {
            "p95Ms": round(quantile(late, 0.95), 3),
            "maxMs": round(max(late), 3),
            "uncertaintyP50Ms": round(quantile(unc, 0.5), 3),
        }
    out["outsideUncertainty"] = sum(1 for e, u in found.values() if abs(e) > u + 1e-9)
    out["outsideUncertaintyFrom30s"] = sum(
        1 for since, (e, u) in found.items() if since >= 30_000.0 and abs(e) > u + 1e-9
    )
    out["readings"] = len(found)
    return out


def spread(
    core: ModuleType, followers: list[tuple[float, int]], window: int | None, seconds: float
) -> dict[str, Any]:
    runs = [simulate(p, WIFI, seconds=seconds, seed=s) for p, s in followers]
    per = [signed_errors(run, estimates(core, run, window)) for run in runs]
    after_ms = SETTLED_S[seconds][-1] * 1000.0
    late = [t for t in sorted(set.intersection(*(set(f) for f in per))) if t >= after_ms]
    spreads = [max(f[t][0] for f in per) - min(f[t][0] for f in per) for t in late]
    errs = [abs(f[t][0]) for f in per for t in late]
    quantiles = (("p50", 0.5), ("p95", 0.95), ("max", 1.0))
    return {
        "followers": [{"ppm": p, "seed": s} for p, s in followers],
        "fromS": after_ms / 1000.0,
        "spreadMs": {q: round(quantile(spreads, v), 3) for q, v in quantiles},
        "errorMs": {q: round(quantile(errs, v), 3) for q, v in quantiles},
        "instants": len(late),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", default="bandsync_desktop.core.clocksync", help="name or .py")
    parser.add_argument("--window", type=int, default=None, help="samples kept (default: its own)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"{NAME}.json")
    args = parser.parse_args()
    core = load(args.module)
    started = time.perf_counter()
    result: dict[str, Any] = {"bench": NAME, "module": args.module, "window": args.window}
    print(f"estimator: {args.module}  window: {args.window or 'default'}")
    for seconds, (early_s, late_s) in SETTLED_S.items():
        print(
            f"{seconds:.0f} s runs, offset error ms: p95 from {early_s:.0f} s | p95 / max from "
            f"{late_s:.0f} s | uncertainty p50 from {late_s:.0f} s | outside uncertainty "
            "(all, from 30 s)"
        )
        phase: dict[str, Any] = {"cases": {}, "spread": {}}
        for name, link in (("lan", LAN), ("wifi", WIFI)):
            phase["cases"][name] = rows = []
            for ppm in (100.0, -100.0, 500.0, -500.0):
                row = case(core, ppm, link, args.window, seconds)
                rows.append(row)
                early, late = row[f"from{early_s:.0f}s"], row[f"from{late_s:.0f}s"]
                print(
                    f"  {name:4} {ppm:+5.0f} ppm  {early['p95Ms']:5.2f} | {late['p95Ms']:4.2f} / "
                    f"{late['maxMs']:4.2f} | {late['uncertaintyP50Ms']:5.2f} | "
                    f"{row['outsideUncertainty']}, {row['outsideUncertaintyFrom30s']}"
                )
        for name, followers in FOLLOWERS.items():
            phase["spread"][name] = got = spread(core, followers, args.window, seconds)
            s, e = got["spreadMs"], got["errorMs"]
            print(
                f"  spread across 6 Wi-Fi followers ({name}) from {late_s:.0f} s: p50 "
                f"{s['p50']:.2f} p95 {s['p95']:.2f} max {s['max']:.2f} ms; their errors p50 "
                f"{e['p50']:.2f} p95 {e['p95']:.2f} max {e['max']:.2f} ms"
            )
        result[f"runs{seconds:.0f}s"] = phase
    result["python"] = platform.python_version()
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
