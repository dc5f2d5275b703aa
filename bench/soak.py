"""Soak: hours of a gig compressed into minutes. Flat memory, no lost state, or it says so.

Runs on demand, never in CI (30-60 minutes when asked: ``--minutes 45``; ``--minutes 1`` to
try it). Starts the headless server in its own process (``load_server.py``, loopback only)
and, with ``--redis-url``, its own ``redis-server`` on that URL's port, then keeps
``--followers`` legacy followers (10 Hz ``scroll_tick``) in ``--sessions`` open sessions,
each with a leader, and meanwhile:

* every ``--leader-every`` seconds, one follower per session claims the lead, then sets a
  new tempo (an accepted command whose effect must survive everything that follows);
* every ``--storm-every`` seconds, a reconnect storm: a quarter of the followers lose their
  connection abruptly (no goodbye) and come straight back with the same ``clientId``;
* with Redis, every ``--redis-restart-every`` seconds Redis is killed and started again
  empty (no persistence): the server must keep serving and write the sessions back.

Every ``--sample-every`` seconds it records the server's RSS and CPU, connections held,
ticks delivered vs expected (as ``load_bench.py`` counts them, over the clients that were
not disturbed in that interval) and the event-loop lag. At the end it checks every session
against what was accepted (tempo, playing, leader, members, versions never going back) and
reports memory growth: RSS after warm-up vs at the end, and the least-squares slope.

Writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_client import SioClient, clock_offset, connect, now_ms
from load_server import raise_fd_limit
from server_process import LoadServerProcess

from bandsync_desktop.core.session import member_id

HERE = Path(__file__).resolve().parent
TICK_MS = 100.0
QUIET = ("--appendonly", "no", "--loglevel", "warning")


@dataclass
class Member:
    client_id: str
    session_id: str
    legacy: bool
    client: SioClient | None = None
    disturbed_at: float = 0.0  # now_ms() of its last reconnect
    last_version: int = -1
    version_regressions: int = 0
    last_snapshot: dict[str, Any] | None = None


@dataclass
class SessionPlan:
    session_id: str
    members: list[Member] = field(default_factory=list)
    leader: Member | None = None
    tempo: float = 120.0


class RedisProcess:
    """A ``redis-server`` the soak owns, so it can kill it and start it again empty."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("--redis-url must point at 127.0.0.1: the soak runs its own Redis")
        self.port = parsed.port or 6379
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (scripts/bootstrap dev)")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise SystemExit(f"port {self.port} is taken: pick a free one for the soak")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *QUIET],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self, down_s: float) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1


class Soak(LoadServerProcess):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host = "127.0.0.1"
        self.port = 0
        self.server: subprocess.Popen[str] | None = None
        self.proc: psutil.Process | None = None
        self.redis = RedisProcess(args.redis_url) if args.redis_url else None
        self.sessions: list[SessionPlan] = []
        self.offset_ms = 0.0
        self.samples: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.failures: dict[str, int] = {}
        self.rng = random.Random(args.seed)
        self.started = 0.0

    # -- plumbing -------------------------------------------------------------------------

    def fail(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1

    def log(self, what: str, **data: Any) -> None:
        entry = {"t": round(time.monotonic() - self.started, 1), "what": what, **data}
        self.events.append(entry)
        print(json.dumps(entry), flush=True)

    def start_server(self) -> None:
        self.launch_server(["--redis-url", self.args.redis_url] if self.args.redis_url else [])

    def _on_event(self, member: Member) -> Any:
        def handle(_client: SioClient, event: str, data: Any) -> None:
            if event == "snapshot" and isinstance(data, dict):
                version = int(data.get("version", -1))
                if version < member.last_version:
                    member.version_regressions += 1
                member.last_version = max(member.last_version, version)
                member.last_snapshot = data

        return handle

    async def attach(self, member: Member, role: str | None = None) -> bool:
        """Connect (again) and join with the member's clientId."""
        try:
            client = await connect(
                self.host, self.port, record_ticks=member.legacy, on_event=self._on_event(member)
            )
        except (OSError, TimeoutError):
            self.fail("connect")
            return False
        payload: dict[str, Any] = {
            "sessionId": member.session_id,
            "clientId": member.client_id,
            "displayName": member.client_id,
        }
        if not member.legacy:
            payload["capabilities"] = ["timeline"]
        if role:
            payload["role"] = role
        try:
            ack = await client.call("join_session", payload, timeout=20)
        except (OSError, TimeoutError):
            self.fail("join timeout")
            client.close()
            return False
        if not ack or not ack.get("ok"):
            self.fail(f"join refused {(ack or {}).get('error', {}).get('code')}")
            client.close()
            return False
        member.client = client
        member.disturbed_at = now_ms()
        return True

    async def command(self, member: Member, event: str, payload: dict[str, Any]) -> bool:
        if member.client is None or not member.client.is_open:
            self.fail(f"{event}: not connected")
            return False
        try:
            ack = await member.client.call(event, {"sessionId": member.session_id, **payload})
        except (OSError, TimeoutError):
            self.fail(f"{event} timeout")
            return False
        if not ack.get("ok"):
            self.fail(f"{event} refused {ack.get('error', {}).get('code')}")
            return False
        return True

    # -- the scenario ---------------------------------------------------------------------

    async def setup(self) -> None:
        args = self.args
        per_session = max(1, args.followers // args.sessions)
        semaphore = asyncio.Semaphore(100)

        async def limited(member: Member, role: str | None = None) -> bool:
            async with semaphore:
                return await self.attach(member, role)

        for index in range(args.sessions):
            plan = SessionPlan(f"soak-{index}")
            plan.leader = Member(f"s{index}-lead", plan.session_id, legacy=False)
            plan.members = [
                Member(f"s{index}-m{k}", plan.session_id, legacy=True) for k in range(per_session)
            ]
            self.sessions.append(plan)
        await asyncio.gather(*(limited(p.leader, "leader") for p in self.sessions if p.leader))
        await asyncio.gather(*(limited(m) for p in self.sessions for m in p.members))
        for plan in self.sessions:
            assert plan.leader is not None
            await self.command(plan.leader, "set_tempo", {"tempo": plan.tempo})
            await self.command(plan.leader, "play", {})

    def everyone(self) -> list[Member]:
        out = []
        for plan in self.sessions:
            if plan.leader is not None:
                out.append(plan.leader)
            out.extend(plan.members)
        return out

    async def leader_change(self, round_no: int) -> None:
        changed = 0
        for plan in self.sessions:
            candidates = [m for m in plan.members if m.client is not None and m.client.is_open]
            if not candidates or plan.leader is None:
                continue
            new = self.rng.choice(candidates)
            if not await self.command(new, "set_role", {"role": "leader"}):
                continue
            plan.members.remove(new)
            plan.members.append(plan.leader)
            plan.leader = new
            tempo = float(60 + (round_no * 7 + int(plan.session_id.split("-")[1])) % 150)
            if await self.command(new, "set_tempo", {"tempo": tempo}):
                plan.tempo = tempo
                changed += 1
        self.log("leader change", sessions=changed)

    async def storm(self) -> None:
        victims = [
            m
            for plan in self.sessions
            for m in plan.members
            if m.client is not None and self.rng.random() < 0.25
        ]
        for member in victims:
            assert member.client is not None
            if member.client.transport is not None:
                member.client.transport.abort()  # the phone just vanishes
        await asyncio.sleep(0.05)
        semaphore = asyncio.Semaphore(100)

        async def back(member: Member) -> bool:
            async with semaphore:
                return await self.attach(member)

        results = await asyncio.gather(*(back(m) for m in victims))
        self.log("reconnect storm", dropped=len(victims), back=sum(results))

    async def redis_restart(self) -> None:
        assert self.redis is not None
        await asyncio.to_thread(self.redis.restart, self.args.redis_down_s)
        self.log("redis restarted", down_s=self.args.redis_down_s)

    # -- measuring ------------------------------------------------------------------------

    async def sample(self, t0: float, t1: float, cpu0: Any) -> dict[str, Any]:
        assert self.proc is not None
        cpu1 = self.proc.cpu_times()
        lo = t0 + self.offset_ms
        hi = t1 + self.offset_ms - 1000.0
        steps: set[float] = set()
        delivered = 0
        steady = 0
        legacy = [m for m in self.everyone() if m.legacy and m.client is not None]
        for member in legacy:
            assert member.client is not None
            if member.disturbed_at > t0 or not member.client.is_open:
                member.client.ticks.clear()
                continue
            steady += 1
            stamps = [s for _, s, _ in member.client.ticks if lo <= s <= hi]
            delivered += len(stamps)
            steps.update(stamps)
            member.client.ticks.clear()
        ordered = sorted(steps)
        skipped = sum(
            round((b - a) / TICK_MS) - 1
            for a, b in itertools.pairwise(ordered)
            if b - a > 1.5 * TICK_MS
        )
        expected = steady * (len(ordered) + skipped)
        try:
            health = await self.health()
        except (OSError, aiohttp.ClientError):
            health = {}
            self.fail("health")
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        entry = {
            "t": round(time.monotonic() - self.started, 1),
            "rss_mb": round(self.proc.memory_info().rss / 2**20, 2),
            "cpu_percent": round(100 * cpu / ((t1 - t0) / 1000), 1),
            "connections": health.get("connections"),
            "store": health.get("store"),
            "ticks_delivered": delivered,
            "ticks_expected": expected,
            "steady_followers": steady,
            "loop_lag_ms": health.get("eventLoopLag"),
        }
        self.samples.append(entry)
        print(json.dumps(entry), flush=True)
        return entry

    async def final_check(self) -> dict[str, Any]:
        """Every session as accepted: tempo, playing, leader, members; versions monotonic."""
        problems: list[str] = []
        await asyncio.sleep(1.0)
        for plan in self.sessions:
            assert plan.leader is not None
            if plan.leader.client is None or not plan.leader.client.is_open:
                problems.append(f"{plan.session_id}: leader not connected")
                continue
            try:
                sync = await plan.leader.client.call("sync_request", {"sessionId": plan.session_id})
            except (OSError, TimeoutError):
                problems.append(f"{plan.session_id}: sync_request timed out")
                continue
            if not sync.get("ok"):
                problems.append(f"{plan.session_id}: sync_request refused {sync.get('error')}")
                continue
            if sync["tempoBpm"] != plan.tempo:
                problems.append(f"{plan.session_id}: tempo {sync['tempoBpm']} != {plan.tempo}")
            if not sync["isPlaying"]:
                problems.append(f"{plan.session_id}: stopped playing")
            # The authoritative view: the snapshot a newcomer gets, straight from the store.
            probe = Member(f"probe-{plan.session_id}", plan.session_id, legacy=False)
            if not await self.attach(probe):
                problems.append(f"{plan.session_id}: a probe could not join")
                continue
            for _ in range(50):
                if probe.last_snapshot is not None:
                    break
                await asyncio.sleep(0.02)
            assert probe.client is not None
            probe.client.close()
            snapshot = probe.last_snapshot or {}
            members = {m.get("memberId") for m in snapshot.get("members", [])}
            wanted = {member_id(c.client_id) for c in (plan.leader, *plan.members, probe)}
            if members != wanted:
                problems.append(
                    f"{plan.session_id}: members differ: missing {sorted(wanted - members)},"
                    f" extra {sorted(members - wanted)}"
                )
            if snapshot.get("leaderMemberId") != member_id(plan.leader.client_id):
                problems.append(f"{plan.session_id}: leader {snapshot.get('leaderMemberId')}")
        regressions = sum(m.version_regressions for m in self.everyone())
        if regressions:
            problems.append(f"{regressions} snapshots arrived with an older version")
        return {"problems": problems, "sessions_checked": len(self.sessions)}

    def memory_report(self) -> dict[str, Any]:
        warm = [s for s in self.samples if s["t"] >= self.args.warmup_s] or self.samples
        if len(warm) < 2:
            return {"note": "too few samples"}
        xs = [s["t"] / 60 for s in warm]
        ys = [s["rss_mb"] for s in warm]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mean_x) ** 2 for x in xs)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
        return {
            "rss_after_warmup_mb": ys[0],
            "rss_end_mb": ys[-1],
            "rss_max_mb": max(ys),
            "growth_mb": round(ys[-1] - ys[0], 2),
            "growth_percent": round(100 * (ys[-1] - ys[0]) / ys[0], 2),
            "slope_mb_per_min": round(slope, 3),
            "window_minutes": round(xs[-1] - xs[0], 2),
        }

    async def run(self) -> dict[str, Any]:
        args = self.args
        self.started = time.monotonic()
        if self.redis is not None:
            self.redis.start()
        self.start_server()
        try:
            probe = await connect(self.host, self.port)
            self.offset_ms, _ = await clock_offset(probe)
            probe.close()
            await self.setup()
            self.log("set up", sessions=len(self.sessions), members=len(self.everyone()))
            end = time.monotonic() + args.minutes * 60
            next_at = {
                "leader": time.monotonic() + args.leader_every,
                "storm": time.monotonic() + args.storm_every,
                "redis": time.monotonic() + args.redis_restart_every,
                "sample": time.monotonic() + args.sample_every,
            }
            assert self.proc is not None
            window_start, cpu0 = now_ms(), self.proc.cpu_times()
            round_no = 0
            while time.monotonic() < end:
                await asyncio.sleep(0.2)
                current = time.monotonic()
                if current >= next_at["sample"]:
                    t1 = now_ms()
                    await self.sample(window_start, t1, cpu0)
                    window_start, cpu0 = now_ms(), self.proc.cpu_times()
                    next_at["sample"] = current + args.sample_every
                if current >= next_at["leader"]:
                    round_no += 1
                    await self.leader_change(round_no)
                    next_at["leader"] = current + args.leader_every
                if current >= next_at["storm"]:
                    await self.storm()
                    next_at["storm"] = current + args.storm_every
                if self.redis is not None and current >= next_at["redis"]:
                    await self.redis_restart()
                    next_at["redis"] = current + args.redis_restart_every
            check = await self.final_check()
        finally:
            for member in self.everyone():
                if member.client is not None:
                    member.client.close()
            await asyncio.sleep(0.2)
            self.stop_server()
            if self.redis is not None:
                self.redis.stop()
        delivered = sum(s["ticks_delivered"] for s in self.samples)
        expected = sum(s["ticks_expected"] for s in self.samples)
        return {
            "benchmark": "soak",
            "minutes": args.minutes,
            "sessions": args.sessions,
            "legacy_followers": sum(len(p.members) for p in self.sessions),
            "redis": bool(self.redis),
            "redis_restarts": self.redis.restarts if self.redis else 0,
            "memory": self.memory_report(),
            "ticks": {
                "delivered_to_steady_followers": delivered,
                "expected": expected,
                "ratio": round(delivered / expected, 6) if expected else None,
            },
            "state": check,
            "failures": self.failures,
            "events": self.events,
            "samples": self.samples,
            "machine": {
                "cpus": os.cpu_count(),
                "note": "shared 2-core machine: other engineers' tests ran at the same time",
            },
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--followers", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--leader-every", type=float, default=20.0)
    parser.add_argument("--storm-every", type=float, default=45.0)
    parser.add_argument("--redis-url", help="run (and restart) our own redis-server on this URL")
    parser.add_argument("--redis-restart-every", type=float, default=120.0)
    parser.add_argument("--redis-down-s", type=float, default=2.0)
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=90.0,
        help="memory baseline after this many seconds (the first two storms' allocations)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(HERE / "results" / "soak.json"))
    args = parser.parse_args(argv)
    raise_fd_limit()
    result = asyncio.run(Soak(args).run())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("memory", "ticks", "state", "failures")}, indent=2))
    print(f"wrote {out}")
    problems = result["state"]["problems"]
    with contextlib.suppress(KeyError):
        if result["memory"]["growth_percent"] > 10:
            problems = [*problems, "memory grew by more than 10 %"]
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
