"""Slow-connection benchmark: half-sent requests from one address against a playing band.

Issue 11, finding 3, measured the way the tester did, bounded: the headless server runs as
its own process with an open-files limit of 1,024 (``ulimit -n 1024``: soft and hard, so the
server cannot raise it; ``--variant soft`` keeps the hard limit and lets the server raise the
soft one). A band of four plays (a leader and three legacy followers that receive
``scroll_tick`` at 10 Hz). After a quiet phase, an attacker process opens 1,050 TCP
connections from 127.0.0.2, sends half a request on each and holds them for ``--attack``
seconds, reopening every one the server closes once a second (``--no-reopen``: holding the
first 1,050 only, as the tester did); then a quiet phase again.

Throughout, from this process: ``GET /health`` every 0.5 s from 127.0.0.1, a join (connect
and ``join_session`` with its ack) from 127.0.0.3 every second, and the followers' tick
gaps. The server's log (stderr) size is taken at each phase's end.

Prints the figures and writes ``bench/results/slow_conns-<variant>[-hold].json``.

Usage::

    .venv/bin/python bench/slow_conns.py                 # ulimit -n 1024 (soft = hard)
    .venv/bin/python bench/slow_conns.py --variant soft  # soft 1024, hard as it is
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchstats import percentile  # noqa: E402

ATTACKER = "127.0.0.2"
JOINER = "127.0.0.3"
HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SESSION = "bench-band"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the benchmark dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def raise_own_limit() -> None:
    """This process holds the band, the probes and (in the attacker) 1,050 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- the attacker (own process)


async def attack(port: int, count: int, seconds: float, reopen: bool) -> dict[str, Any]:
    """Hold ``count`` half-sent requests from ATTACKER for ``seconds`` (with ``reopen``,
    reopening closed ones once a second). Returns what the server did to them."""
    open_now: set[asyncio.StreamWriter] = set()
    stats = {
        "opened": 0,
        "resetAtConnect": 0,  # refused at accept before connect() returned here
        "connectFailed": 0,
        "closedWithin1s": 0,
        "closedLater": 0,
    }

    async def one() -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0)), 5
            )
        except ConnectionResetError:
            stats["resetAtConnect"] += 1
            return
        except (TimeoutError, OSError):
            stats["connectFailed"] += 1
            return
        stats["opened"] += 1
        started = time.monotonic()
        open_now.add(writer)
        try:
            writer.write(HALF_REQUEST)
            while await reader.read(4096):
                pass
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            open_now.discard(writer)
            writer.close()
        if time.monotonic() - started <= 1.0:
            stats["closedWithin1s"] += 1
        else:
            stats["closedLater"] += 1

    tasks: set[asyncio.Task[None]] = set()
    held_samples: list[int] = []
    deadline = time.monotonic() + seconds
    first = True
    while time.monotonic() < deadline:
        for _ in range(count - len(tasks) if first or reopen else 0):
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        first = False
        await asyncio.sleep(1.0)
        held_samples.append(len(open_now))
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    refused = stats["closedWithin1s"] + stats["resetAtConnect"]
    return {**stats, "refusedAtOnce": refused, "heldMedian": percentile(held_samples, 0.5)}


# ------------------------------------------------------------------ the band and the probes


class Band:
    """A leader and three legacy followers playing in one session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.leader = socketio.AsyncClient()
        self.followers = [socketio.AsyncClient() for _ in range(3)]
        self.ticks: list[list[float]] = [[] for _ in self.followers]

    async def start(self) -> None:
        for i, follower in enumerate(self.followers):
            follower.on("scroll_tick", self._recorder(i))
        await self.leader.connect(self.url, transports=["websocket"])
        await self.leader.call(
            "join_session",
            {"sessionId": SESSION, "role": "leader", "capabilities": ["timeline"]},
        )
        for follower in self.followers:
            await follower.connect(self.url, transports=["websocket"])
            await follower.call("join_session", {"sessionId": SESSION})
        await self.leader.call("play", {"sessionId": SESSION})

    def _recorder(self, index: int) -> Any:
        def record(_: Any = None) -> None:
            self.ticks[index].append(time.monotonic())

        return record

    def gaps(self, since: float, until: float) -> list[tuple[float, float]]:
        """(gap ms, seconds into the window where it ended) for every follower's ticks."""
        out: list[tuple[float, float]] = []
        for times in self.ticks:
            window = [t for t in times if since <= t < until]
            out += [((b - a) * 1000, b - since) for a, b in itertools.pairwise(window)]
        return out

    async def stop(self) -> None:
        for client in (self.leader, *self.followers):
            if client.connected:
                await client.disconnect()


class Probes:
    """``/health`` every 0.5 s and a join from JOINER every second, timed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.health: list[tuple[float, float | None]] = []  # (at, ms or None: failed)
        self.joins: list[tuple[float, float | None]] = []
        self.loop_lag: list[tuple[float, float]] = []  # (at, the server's lag max so far)

    async def run_health(self, until: float) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        while time.monotonic() < until:
            at = time.monotonic()
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    http.get(f"{self.url}/health") as response,
                ):
                    body = await response.json()
                    ok = response.status == 200
                    lag = body.get("eventLoopLag", {}).get("maxMs")
                    if lag is not None:
                        self.loop_lag.append((at, lag))
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            self.health.append((at, (time.monotonic() - at) * 1000 if ok else None))
            await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - at)))

    async def run_joins(self, until: float) -> None:
        for n in itertools.count():
            if time.monotonic() >= until:
                return
            at = time.monotonic()
            self.joins.append((at, await self._join(n)))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - at)))

    async def _join(self, n: int) -> float | None:
        connector = aiohttp.TCPConnector(local_addr=(JOINER, 0))
        http = aiohttp.ClientSession(connector=connector)
        client = socketio.AsyncClient(http_session=http, reconnection=False)
        started = time.monotonic()
        try:
            await asyncio.wait_for(
                client.connect(self.url, transports=["websocket"], wait_timeout=5), 5
            )
            ack = await client.call(
                "join_session", {"sessionId": SESSION, "displayName": f"join{n}"}, timeout=5
            )
            return (time.monotonic() - started) * 1000 if ack.get("ok") else None
        except (TimeoutError, socketio.exceptions.SocketIOError, OSError):
            return None
        finally:
            if client.connected:
                await client.disconnect()
            await http.close()


def summary_ms(samples: list[tuple[float, float | None]], since: float, until: float) -> dict:
    window = [ms for at, ms in samples if since <= at < until]
    good = [ms for ms in window if ms is not None]
    return {
        "tried": len(window),
        "failed": len(window) - len(good),
        "p50Ms": round(percentile(good, 0.5) or 0, 1) if good else None,
        "maxMs": round(max(good), 1) if good else None,
    }


# ----------------------------------------------------------------------------- one run


def launch_server(
    port: int, limits: tuple[int, int], log: Any, tree: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    """The headless server from ``tree`` with the open-files limit ``limits`` (soft, hard)
    and ``env`` added to its environment."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        die_with_parent()

    command = [sys.executable, "-m", "bandsync_desktop", "--headless"]
    return subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        preexec_fn=limit,
    )


def size(path: Path) -> int:
    return path.stat().st_size


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_own_limit()
    port = free_port()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = (1024, 1024) if args.variant == "ulimit" else (1024, hard)
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in the finally below)
        prefix="slow_conns-", suffix=".log", delete=False
    )
    log_path = Path(log.name)
    env = dict(item.split("=", 1) for item in args.server_env)
    server = launch_server(port, limits, log, args.server_tree, env)
    attacker: asyncio.subprocess.Process | None = None
    band: Band | None = None
    url = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(server.stdout.readline), 30)
        if "BandSync server" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        proc = psutil.Process(server.pid)
        soft_after = proc.rlimit(psutil.RLIMIT_NOFILE)
        band = Band(url)
        await band.start()
        probes = Probes(url)
        t0 = time.monotonic()
        t1 = t0 + args.quiet
        t2 = t1 + args.attack
        t3 = t2 + args.quiet
        fds: list[tuple[float, int]] = []
        cpu: list[tuple[float, float]] = []  # (at, the server's CPU seconds so far)
        log_sizes: dict[str, int] = {}

        async def watch() -> None:
            while time.monotonic() < t3:
                times = proc.cpu_times()
                fds.append((time.monotonic(), proc.num_fds()))
                cpu.append((time.monotonic(), times.user + times.system))
                await asyncio.sleep(0.5)

        async def phases() -> dict[str, Any]:
            nonlocal attacker
            await asyncio.sleep(t1 - time.monotonic())
            log_sizes["quiet"] = size(log_path)
            attacker = await asyncio.create_subprocess_exec(
                *[sys.executable, __file__, "--attacker", str(port)],
                *["--count", str(args.count), "--attack", str(args.attack)],
                *([] if args.reopen else ["--no-reopen"]),
                stdout=subprocess.PIPE,
                preexec_fn=die_with_parent,
            )
            out, _ = await asyncio.wait_for(attacker.communicate(), args.attack + 30)
            log_sizes["attack"] = size(log_path)
            await asyncio.sleep(max(0.0, t3 - time.monotonic()))
            log_sizes["after"] = size(log_path)
            result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
            return result

        attack_stats, *_ = await asyncio.gather(
            phases(), probes.run_health(t3), probes.run_joins(t3), watch()
        )
        text = read_log(log_path)
        windows = {"quiet": (t0, t1), "attack": (t1, t2 + 1.0), "after": (t2 + 1.0, t3)}
        result: dict[str, Any] = {
            "bench": "slow_conns",
            "variant": args.variant,
            "params": {
                "count": args.count,
                "attackS": args.attack,
                "quietS": args.quiet,
                "reopen": args.reopen,
                "serverNofileAtLaunch": list(limits),
                "serverNofileRunning": list(soft_after),
                "serverTree": str(args.server_tree),
                "serverEnv": args.server_env,
            },
            "machine": {"python": platform.python_version(), "cpus": psutil.cpu_count()},
            "attacker": attack_stats,
            "phases": {},
            "log": {
                "bytes": log_sizes,
                "warningLines": text.count(" WARNING "),
                "errorLines": text.count(" ERROR "),
                "tracebacks": text.count("Traceback"),
                "tooManyOpenFiles": text.count("Too many open files"),
                "acceptFailureLines": text.count("cannot accept connections"),
            },
        }
        for name, (since, until) in windows.items():
            timed_gaps = band.gaps(since, until)
            gaps = [ms for ms, _ in timed_gaps]
            worst = max(timed_gaps, default=(0.0, 0.0))
            window_fds = [n for at, n in fds if since <= at < until]
            window_cpu = [(at, c) for at, c in cpu if since <= at < until]
            busy = None
            if len(window_cpu) >= 2:
                (a0, c0), (a1, c1) = window_cpu[0], window_cpu[-1]
                busy = round(100 * (c1 - c0) / (a1 - a0), 1)
            result["phases"][name] = {
                "tickGapMaxMs": round(max(gaps), 1) if gaps else None,
                "tickGapMaxAtS": round(worst[1], 1),
                "tickGapP99Ms": round(percentile(gaps, 0.99) or 0, 1) if gaps else None,
                "ticks": len(gaps),
                "health": summary_ms(probes.health, since, until),
                "join": summary_ms(probes.joins, since, until),
                "serverFdsMax": max(window_fds) if window_fds else None,
                "serverCpuPercent": busy,
                # the server's own loop lag, max over its last 60 s: includes earlier phases
                "serverLoopLagMaxMs": max(
                    (lag for at, lag in probes.loop_lag if since <= at < until), default=None
                ),
            }
        return result
    finally:
        if attacker is not None and attacker.returncode is None:
            attacker.kill()
        if band is not None:
            await band.stop()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        remove(log_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("ulimit", "soft"), default="ulimit")
    parser.add_argument("--count", type=int, default=1050, help="half-sent requests held")
    parser.add_argument("--attack", type=float, default=20.0, help="seconds of attack")
    parser.add_argument(
        "--reopen",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reopen every closed connection once a second (default; --no-reopen: hold "
        "the first 1,050, as the tester did)",
    )
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds before and after")
    parser.add_argument(
        "--server-tree",
        type=Path,
        default=ROOT,
        help="run the server from this checkout (e.g. `git archive` of the code before a fix)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="settings for the server, e.g. BANDSYNC_MAX_TCP_CONNECTIONS=100000",
    )
    parser.add_argument("--attacker", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.attacker is not None:  # the attacker process
        raise_own_limit()
        stats = asyncio.run(attack(args.attacker, args.count, args.attack, args.reopen))
        print(json.dumps(stats))
        return
    result = asyncio.run(run(args))
    name = f"slow_conns-{args.variant}{'' if args.reopen else '-hold'}.json"
    out = args.out or ROOT / "bench/results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"variant {result['variant']}: server open-files limit", result["params"])
    print("attacker:", result["attacker"])
    for name, phase in result["phases"].items():
        print(f"{name:<7} {phase}")
    print("log:", result["log"])
    print(f"written to {out}")


if __name__ == "__main__":
    main()
