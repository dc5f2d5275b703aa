"""Redis benchmark: compare-and-set latency, memory per session, restart recovery, cross-node
propagation and outage write-back.

Starts its own ``redis-server`` (free port, no persistence) and real headless server processes
on loopback; prints the figures and writes JSON (``bench/results/redis_bench.json``).

* **update**: ``RedisStore.update`` of an 8-member session (HGET, decode, change, encode, Lua
  compare-and-set), sequential, one connection; and 50 writers racing on one session.
* **memory**: ``used_memory`` growth per stored 8-member session (the seed's method) and the
  mean ``MEMORY USAGE`` of a session key.
* **recovery**: a headless server with a playing 3-member session is SIGKILLed and started
  again on the same port; time from the new process's launch to the port accepting and to the
  first ``snapshot`` of a client that joins at once.
* **cross-node**: a leader on node A sends ``set_tempo``; time until a follower on node B
  receives ``tempo_changed`` (through Redis pub/sub), next to the same on one node.
* **write-back**: Redis killed, N sessions changed during the outage, Redis started again;
  time from the restart until every change is back in Redis.

Usage::

    .venv/bin/python bench/redis_bench.py [--updates 2000] [--sessions 1000] [--restarts 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchstats import percentile, write_results  # noqa: E402

from bandsync_desktop.core.session import CONSOLE, Session  # noqa: E402
from bandsync_desktop.server.storage import create_store  # noqa: E402
from bandsync_desktop.server.storage.redis import RedisStore  # noqa: E402
from bandsync_desktop.server.storage.resilient import ResilientStore  # noqa: E402
from tests.helpers.clients import Recorder  # noqa: E402
from tests.helpers.redis import RedisServer, ServerProcess, free_port  # noqa: E402
from tests.server.storage.sessions import RULES, mixed_session  # noqa: E402


def summary(values_ms: list[float]) -> dict[str, float]:
    p99 = percentile(values_ms, 0.99)
    if p99 is None:
        raise ValueError("no measurements to summarise")
    return {
        "n": len(values_ms),
        "p50Ms": round(statistics.median(values_ms), 3),
        "p99Ms": round(p99, 3),
        "maxMs": round(max(values_ms), 3),
    }


async def bench_updates(url: str, updates: int) -> dict[str, Any]:
    store = RedisStore(url)
    session = mixed_session(1, 8)
    await store.create(session)
    times = []
    for n in range(updates):
        start = time.perf_counter()
        await store.update(
            session.session_id, lambda s, n=n: s.set_message(2_000_000.0 + n, CONSOLE, f"m{n}")
        )
        times.append((time.perf_counter() - start) * 1000)
    # 50 writers on 5 connections racing on one session: none may be lost.
    await store.create(Session.create("race", 1000.0))
    writers = [RedisStore(url) for _ in range(5)]

    async def join(i: int) -> None:
        await writers[i % 5].update(
            "race",
            lambda s: s.join(
                2000.0 + i,
                f"sock{i}",
                client_id=f"c{i}",
                display_name=f"P{i}",
                role=None,
                key=None,
                device=None,
                rules=RULES,
            ),
        )

    start = time.perf_counter()
    await asyncio.gather(*(join(i) for i in range(50)))
    race_ms = (time.perf_counter() - start) * 1000
    final = await store.get("race")
    assert final is not None and len(final.members) == 50 and final.version == 51
    for w in writers:
        await w.close()
    await store.close()
    return {"sequential": summary(times), "race50": {"totalMs": round(race_ms, 1), "lost": 0}}


async def bench_memory(url: str, sessions: int) -> dict[str, Any]:
    store = RedisStore(url)
    await store.client.flushdb()
    before = int((await store.client.info("memory"))["used_memory"])
    usages = []
    sizes = []
    for i in range(sessions):
        session = mixed_session(i, 8)
        await store.create(session)
        if i % 10 == 0:
            usage = await store.memory_usage(session.session_id)
            if usage is not None:
                usages.append(usage)
            sizes.append(len(json.dumps(session.to_dict(), separators=(",", ":"))))
    after = int((await store.client.info("memory"))["used_memory"])
    await store.client.flushdb()
    await store.close()
    return {
        "sessions": sessions,
        "members": 8,
        "usedMemoryPerSessionBytes": round((after - before) / sessions),
        "memoryUsageKeyMeanBytes": round(statistics.mean(usages)),
        "storedJsonMeanBytes": round(statistics.mean(sizes)),
    }


async def bench_recovery(url: str, restarts: int) -> dict[str, Any]:
    port = free_port()
    server = ServerProcess(port, url).start()
    await server.ready()
    leader = await Recorder(server.url, "leader").connect()
    await leader.call("join_session", {"sessionId": "gig", "clientId": "lead", "role": "leader"})
    others = [await Recorder(server.url, f"f{i}").connect() for i in range(2)]
    for i, other in enumerate(others):
        await other.call("join_session", {"sessionId": "gig", "clientId": f"f{i}"})
    await leader.call("set_tempo", {"sessionId": "gig", "tempo": 132})
    await leader.call("play", {"sessionId": "gig"})
    port_ms, snapshot_ms = [], []
    for n in range(restarts):
        server.signal(signal.SIGKILL)
        server.start()
        await server.ready()
        port_ms.append((time.monotonic() - server.started_at) * 1000)
        probe = await Recorder(server.url, "probe").connect()
        await probe.call("join_session", {"sessionId": "gig", "clientId": f"probe{n}"})
        snap = probe.last("snapshot")
        snapshot_ms.append((time.monotonic() - server.started_at) * 1000)
        assert snap["tempoBpm"] == 132 and snap["isPlaying"], snap
        await probe.close()
    for client in [leader, *others]:  # connected through the crashes, as phones would be
        await client.sio.disconnect()  # also stops a reconnect in progress
    server.signal(signal.SIGTERM)
    return {
        "restarts": restarts,
        "portOpenMs": [round(v) for v in port_ms],
        "firstSnapshotMs": [round(v) for v in snapshot_ms],
        "firstSnapshotMedianMs": round(statistics.median(snapshot_ms)),
    }


async def bench_cross_node(url: str, commands: int) -> dict[str, Any]:
    node_a = ServerProcess(free_port(), url).start()
    node_b = ServerProcess(free_port(), url).start()
    await asyncio.gather(node_a.ready(), node_b.ready())
    leader = await Recorder(node_a.url, "leader").connect()
    local = await Recorder(node_a.url, "local").connect()
    remote = await Recorder(node_b.url, "remote").connect()
    await leader.call("join_session", {"sessionId": "x", "clientId": "lead", "role": "leader"})
    await local.call("join_session", {"sessionId": "x", "clientId": "local"})
    await remote.call("join_session", {"sessionId": "x", "clientId": "remote"})
    await asyncio.sleep(0.5)
    same, cross = [], []
    for n in range(commands):
        tempo = 100 + n % 50
        got_local, got_remote = local.next("tempo_changed"), remote.next("tempo_changed")
        sent = time.perf_counter()
        await leader.emit("set_tempo", {"sessionId": "x", "tempo": tempo})
        done_local = asyncio.ensure_future(got_local)
        done_remote = asyncio.ensure_future(got_remote)
        await asyncio.wait_for(done_local, 5)
        same.append((time.perf_counter() - sent) * 1000)
        await asyncio.wait_for(done_remote, 5)
        cross.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(0.04)  # 25 commands/s: under the per-socket rate limit (30/s)
    for client in (leader, local, remote):
        await client.close()
    node_a.signal(signal.SIGTERM)
    node_b.signal(signal.SIGTERM)
    return {"sameNode": summary(same), "crossNode": summary(cross)}


async def bench_write_back(redis: RedisServer, sessions: int) -> dict[str, Any]:
    store = create_store(redis.url)
    assert isinstance(store, ResilientStore)
    await store.start()
    for i in range(sessions):
        await store.create(mixed_session(i, 8))
    redis.kill()
    for i in range(sessions):
        await store.update(f"mixed-{i}", lambda s: s.set_message(9e6, CONSOLE, "outage"))
    restarted = time.perf_counter()
    redis.start()
    for _ in range(30_000):  # bounded: at most ~30 s
        if store.reachable and not store.dirty:
            break
        await asyncio.sleep(0.001)
    back_ms = (time.perf_counter() - restarted) * 1000
    check = RedisStore(redis.url)
    stored = [await check.get(f"mixed-{i}") for i in range(sessions)]
    assert all(s is not None and s.message == "outage" for s in stored)
    await check.close()
    await store.close()
    return {"sessions": sessions, "restartToAllWrittenBackMs": round(back_ms, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redis = RedisServer().start()
    try:
        result: dict[str, Any] = {
            "machine": f"{platform.node()} ({platform.machine()}, shared 2-core machine)",
            "python": platform.python_version(),
            "redis": redis.cli("INFO", "server").split("redis_version:")[1].split()[0],
        }
        print("running: update", file=sys.stderr, flush=True)
        result["update"] = await bench_updates(redis.url, args.updates)
        print("running: memory", file=sys.stderr, flush=True)
        result["memory"] = await bench_memory(redis.url, args.sessions)
        print("running: recovery", file=sys.stderr, flush=True)
        result["recovery"] = await bench_recovery(redis.url, args.restarts)
        print("running: propagation", file=sys.stderr, flush=True)
        result["propagation"] = await bench_cross_node(redis.url, args.commands)
        print("running: writeBack", file=sys.stderr, flush=True)
        result["writeBack"] = await bench_write_back(redis, 100)
    finally:
        redis.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--commands", type=int, default=150)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/redis_bench.json")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(run(args))
    u, m, r, p, w = (
        result["update"],
        result["memory"],
        result["recovery"],
        result["propagation"],
        result["writeBack"],
    )
    print(
        f"update (read + Lua CAS), 8 members: p50 {u['sequential']['p50Ms']} ms, "
        f"p99 {u['sequential']['p99Ms']} ms; 50 racing writers {u['race50']['totalMs']} ms, 0 lost"
    )
    print(
        f"memory per 8-member session: {m['usedMemoryPerSessionBytes']} B used_memory, "
        f"{m['memoryUsageKeyMeanBytes']} B MEMORY USAGE, JSON {m['storedJsonMeanBytes']} B"
    )
    print(
        f"restart recovery (SIGKILL -> new process -> first snapshot): "
        f"{r['firstSnapshotMs']} ms (port open {r['portOpenMs']} ms)"
    )
    print(
        f"set_tempo -> tempo_changed same node p50 {p['sameNode']['p50Ms']} / p99 "
        f"{p['sameNode']['p99Ms']} ms; cross node p50 {p['crossNode']['p50Ms']} / p99 "
        f"{p['crossNode']['p99Ms']} ms"
    )
    print(
        f"outage write-back of {w['sessions']} sessions: {w['restartToAllWrittenBackMs']} ms "
        f"after Redis restarted"
    )
    write_results(args.out, result)


if __name__ == "__main__":
    main()
