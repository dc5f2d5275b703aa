"""What one command costs: the ack round trip of ``set_tempo`` from a raw websocket client.

The headless server runs in its own process on loopback, idle but for this client (and, with
``--followers N``, N quiet followers in the same session, so the snapshot each change
publishes has somewhere to go). The client speaks Engine.IO by hand (no python-socketio on
the client side: its own per-call cost would hide the server's) and sends one event at a
time with an ack id, waiting for the ack before the next. For comparison it measures, the
same way, an event that touches no session (``latency_probe``: framing, decoding, dispatch,
the ack) and one that reads a session (``sync_request``). The differences say where a
command's time goes: transport and dispatch, reading the session, changing it (the store's
compare-and-set, the rule) and publishing it (notice, snapshot).

    .venv/bin/python bench/command_bench.py [--count 3000] [--followers 0]

Prints p50/p99 per event and writes bench/results/command_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchstats import percentile  # noqa: E402

from bandsync_desktop.server.net import free_port  # noqa: E402
from tests.helpers.procs import start_headless  # noqa: E402
from tests.helpers.rawsocket import RawWebSocket  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "command_bench.json"


class AckClient:
    """A raw Socket.IO client that sends one event at a time and waits for its ack."""

    def __init__(self, ws: RawWebSocket) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, event: str, payload: dict[str, Any]) -> Any:
        ack_id = self.next_id
        self.next_id += 1
        await self.ws.send(f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":")))
        prefix = f"43{ack_id}"
        while True:
            text = await self.ws.receive()
            if text is None:
                raise ConnectionError("the server closed the connection")
            if text == "2":
                await self.ws.send("3")
            elif text.startswith(prefix):
                return json.loads(text[len(prefix) :])[0]


async def timed(client: AckClient, event: str, payload: Any, count: int) -> list[float]:
    """``count`` round trips of ``event`` (``payload`` may be a function of the index), in
    milliseconds."""
    samples = []
    for i in range(count):
        data = payload(i) if callable(payload) else payload
        start = time.perf_counter()
        ack = await client.call(event, data)
        samples.append((time.perf_counter() - start) * 1000.0)
        if not ack.get("ok"):
            raise RuntimeError(f"{event} refused: {ack}")
    return samples


async def run(count: int, followers: int) -> dict[str, Any]:
    port = free_port()
    env = {
        "BANDSYNC_RATE_LIMIT_PER_S": "1000000",  # measure the command, not the limiter
        "BANDSYNC_RATE_LIMIT_BURST": "1000000",
    }
    proc = start_headless(port, "--log-level", "WARNING", env=env)
    sockets: list[RawWebSocket] = []
    drains: list[asyncio.Future[None]] = []
    try:
        leader_ws = await RawWebSocket.open("127.0.0.1", port, "127.0.0.1")
        sockets.append(leader_ws)
        await leader_ws.handshake()
        leader = AckClient(leader_ws)
        await leader.call("join_session", {"sessionId": "bench", "role": "leader"})
        for _ in range(followers):
            ws = await RawWebSocket.open("127.0.0.1", port, "127.0.0.1")
            sockets.append(ws)
            await ws.handshake()
            await AckClient(ws).call(
                "join_session", {"sessionId": "bench", "capabilities": ["timeline"]}
            )
            drains.append(asyncio.ensure_future(_drain(ws)))
        await asyncio.sleep(0.5)
        warm = max(100, count // 10)
        await timed(leader, "latency_probe", {"timestamp": 1}, warm)
        await timed(
            leader, "set_tempo", lambda i: {"sessionId": "bench", "tempo": 100 + i % 50}, warm
        )
        results: dict[str, Any] = {}
        for name, event, payload in (
            ("latency_probe (dispatch + ack, no session)", "latency_probe", {"timestamp": 1}),
            ("sync_request (reads the session)", "sync_request", {"sessionId": "bench"}),
            (
                "set_tempo (change + publish)",
                "set_tempo",
                lambda i: {"sessionId": "bench", "tempo": 100 + i % 50},
            ),
        ):
            samples = await timed(leader, event, payload, count)
            results[name] = {
                "p50Ms": round(percentile(samples, 0.5) or 0.0, 4),
                "p99Ms": round(percentile(samples, 0.99) or 0.0, 4),
            }
        return {"count": count, "followers": followers, "events": results}
    finally:
        for drain in drains:
            drain.cancel()
        for ws in sockets:
            ws.close()
        proc.terminate()
        proc.wait(timeout=10)


async def _drain(ws: RawWebSocket) -> None:
    """A quiet follower: reads (and answers pings) so its socket never backs up."""
    while (text := await ws.receive()) is not None:
        if text == "2":
            await ws.send("3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="round trips per event")
    parser.add_argument("--followers", type=int, default=0, help="quiet followers in the session")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.count, args.followers))
    for name, figures in result["events"].items():
        print(f"{name:48s} p50 {figures['p50Ms']:7.3f} ms   p99 {figures['p99Ms']:7.3f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
