"""What one command costs: the ack round trip of ``set_tempo`` from a raw websocket client.

The headless server runs in its own process on loopback, idle but for this client (and, with
``--followers N``, N quiet followers in the same session, so the snapshot each change
publishes has somewhere to go). The client speaks Engine.IO by hand over a blocking socket (no
python-socketio, no event loop on the client side: their own per-call cost would hide the
server's; ``--client asyncio`` uses an asyncio stream client instead, as this benchmark did
before) and sends one event at a time with an ack id, waiting for the ack before the next.
For comparison it measures, the same way, an event that touches no session
(``latency_probe``: framing, decoding, dispatch, the ack) and one that reads a session
(``sync_request``), and two floors under every event: a bare asyncio protocol and a bare
aiohttp websocket handler, each answering every frame with a fixed ack (the loop, loopback
TCP and the client; then aiohttp's websocket on top). The differences say where a command's
time goes.

``--against DIR`` runs the same rounds, interleaved, against the server of another checkout
(a ``git worktree`` of an older commit, say), so both are measured in the same minutes.

    .venv/bin/python bench/command_bench.py [--count 3000] [--rounds 3] [--followers 0]
        [--client blocking|asyncio] [--against DIR]

Prints p50/p99 per event (the median of the rounds' p50s, the largest p99) and writes
bench/results/command_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchstats import percentile  # noqa: E402

from bandsync_desktop.server.net import free_port, wait_for_health  # noqa: E402
from tests.helpers.procs import headless_command  # noqa: E402
from tests.helpers.rawsocket import RawWebSocket  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "command_bench.json"
ENV = {
    "BANDSYNC_RATE_LIMIT_PER_S": "1000000",  # measure the command, not the limiter
    "BANDSYNC_RATE_LIMIT_BURST": "1000000",
}
Payload = dict[str, Any] | Callable[[int], dict[str, Any]]
EVENTS: tuple[tuple[str, str, Payload], ...] = (
    ("latency_probe (dispatch + ack, no session)", "latency_probe", {"timestamp": 1}),
    ("sync_request (reads the session)", "sync_request", {"sessionId": "bench"}),
    (
        "set_tempo (change + publish)",
        "set_tempo",
        lambda i: {"sessionId": "bench", "tempo": 100 + i % 50},
    ),
)

# Two floors, each a server answering every websocket frame "42<id>[...]" with "43<id>[{}]".
# The bare protocol skips the HTTP upgrade's checks and reads one frame per read.
BARE_PROTOCOL = r"""
import asyncio, sys
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.head = transport, True
    def data_received(self, data):
        if self.head:
            self.head = False
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
            self._send("0{}"); return
        n = data[1] & 0x7F; text = data[6:6 + n].decode()
        if text == "40": self._send("40{}")
        elif text.startswith("42"):
            i = 2
            while text[i].isdigit(): i += 1
            self._send("43" + text[2:i] + '[{"ok":true}]')
    def _send(self, text):
        data = text.encode(); self.transport.write(bytes((0x81, len(data))) + data)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    print("up", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""
BARE_AIOHTTP = r"""
import sys
from aiohttp import web, WSMsgType
async def ws(request):
    ws = web.WebSocketResponse(); await ws.prepare(request)
    await ws.send_str("0{}")
    async for msg in ws:
        text = msg.data
        if text == "40": await ws.send_str("40{}")
        elif text.startswith("42"):
            i = 2
            while text[i].isdigit(): i += 1
            await ws.send_str("43" + text[2:i] + '[{"ok":true}]')
    return ws
app = web.Application()
app.router.add_get("/socket.io/", ws)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class BlockingWebSocket:
    """A client websocket over a blocking socket: masked frames (key 0), one ``sendall`` a
    frame, received frames parsed from one buffer."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        else:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        self.sock.sendall(head + b"\0\0\0\0" + data)

    def receive(self) -> str:
        """The next text message (a close frame raises ``ConnectionError``)."""
        buffer = self.buffer
        while len(buffer) < 2:
            self._fill()
        first, second = buffer[0], buffer[1]
        n, start = second & 0x7F, 2
        if n >= 126:
            start = 4 if n == 126 else 10
            while len(buffer) < start:
                self._fill()
            n = int.from_bytes(buffer[2:start], "big")
        while len(buffer) < start + n:
            self._fill()
        data = bytes(buffer[start : start + n])
        del buffer[: start + n]
        if first & 0x0F == 0x8:
            raise ConnectionError("the server closed the websocket")
        return data.decode()

    def handshake(self) -> None:
        """Engine.IO open, then the Socket.IO connect of namespace "/"."""
        assert self.receive().startswith("0{")
        self.send("40")
        assert self.receive().startswith("40")

    def close(self) -> None:
        self.sock.close()


class BlockingAckClient:
    """Sends one event at a time and waits for its ack (answering pings meanwhile)."""

    def __init__(self, ws: BlockingWebSocket) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, event: str, payload: dict[str, Any]) -> Any:
        ack_id = self.next_id
        self.next_id += 1
        self.ws.send(f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":")))
        prefix = f"43{ack_id}"
        while True:
            text = self.ws.receive()
            if text == "2":
                self.ws.send("3")
            elif text.startswith(prefix):
                return json.loads(text[len(prefix) :])[0]


class AsyncAckClient:
    """The same over asyncio streams (``--client asyncio``), run on a loop of its own."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.ws: RawWebSocket = self.loop.run_until_complete(self._open(host, port))
        self.next_id = 0

    @staticmethod
    async def _open(host: str, port: int) -> RawWebSocket:
        ws = await RawWebSocket.open(host, port, "127.0.0.1")
        await ws.handshake()
        return ws

    def call(self, event: str, payload: dict[str, Any]) -> Any:
        return self.loop.run_until_complete(self._call(event, payload))

    def timed(self, event: str, payload: Payload, count: int) -> list[float]:
        return self.loop.run_until_complete(self._timed(event, payload, count))

    async def _call(self, event: str, payload: dict[str, Any]) -> Any:
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

    async def _timed(self, event: str, payload: Payload, count: int) -> list[float]:
        samples = []
        for i in range(count):
            data = payload(i) if callable(payload) else payload
            start = time.perf_counter()
            ack = await self._call(event, data)
            samples.append((time.perf_counter() - start) * 1000.0)
            if not ack.get("ok"):
                raise RuntimeError(f"{event} refused: {ack}")
        return samples

    def close(self) -> None:
        self.ws.close()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()


Client = BlockingAckClient | AsyncAckClient


def open_client(kind: str, port: int) -> Client:
    if kind == "asyncio":
        return AsyncAckClient("127.0.0.1", port)
    ws = BlockingWebSocket("127.0.0.1", port)
    ws.handshake()
    return BlockingAckClient(ws)


def timed(client: Client, event: str, payload: Payload, count: int) -> list[float]:
    """``count`` round trips of ``event`` (``payload`` may be a function of the index), in
    milliseconds."""
    if isinstance(client, AsyncAckClient):
        return client.timed(event, payload, count)
    samples = []
    clock = time.perf_counter
    for i in range(count):
        data = payload(i) if callable(payload) else payload
        start = clock()
        ack = client.call(event, data)
        samples.append((clock() - start) * 1000.0)
        if not ack.get("ok"):
            raise RuntimeError(f"{event} refused: {ack}")
    return samples


def close_client(client: Client) -> None:
    if isinstance(client, AsyncAckClient):
        client.close()
    else:
        client.ws.close()


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    """The headless server of checkout ``root`` on ``port``, answering ``/health``."""
    proc = subprocess.Popen(
        headless_command(port, "--log-level", "WARNING"),
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV, "PYTHONPATH": str(root)},
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", timeout=20, process=proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drain(ws: BlockingWebSocket) -> None:
    """A quiet follower: reads (and answers pings) so its socket never backs up."""
    try:
        while True:
            if ws.receive() == "2":
                ws.send("3")
    except (ConnectionError, OSError):
        return


def measure_server(root: Path, count: int, followers: int, kind: str) -> dict[str, list[float]]:
    """One round against the server of ``root``: samples (ms) per event."""
    port = free_port()
    proc = start_server(root, port)
    follower_sockets: list[BlockingWebSocket] = []
    client: Client | None = None
    try:
        client = open_client(kind, port)
        client.call("join_session", {"sessionId": "bench", "role": "leader"})
        for _ in range(followers):
            ws = BlockingWebSocket("127.0.0.1", port)
            ws.handshake()
            BlockingAckClient(ws).call(
                "join_session", {"sessionId": "bench", "capabilities": ["timeline"]}
            )
            follower_sockets.append(ws)
            threading.Thread(target=drain, args=(ws,), daemon=True).start()
        time.sleep(0.5)
        warm = max(100, count // 10)
        timed(client, "latency_probe", {"timestamp": 1}, warm)
        timed(client, "set_tempo", lambda i: {"sessionId": "bench", "tempo": 100 + i % 50}, warm)
        return {name: timed(client, event, payload, count) for name, event, payload in EVENTS}
    finally:
        if client is not None:
            close_client(client)
        for ws in follower_sockets:
            ws.close()
        stop(proc)


def measure_floor(script: str, count: int, kind: str) -> list[float]:
    """One round against a bare echo server (``BARE_PROTOCOL`` or ``BARE_AIOHTTP``)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    client: Client | None = None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = open_client(kind, port)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        timed(client, "latency_probe", {}, max(100, count // 10))
        return timed(client, "latency_probe", {}, count)
    finally:
        if client is not None:
            close_client(client)
        stop(proc)


def summary(rounds: list[list[float]]) -> dict[str, float]:
    p50s = sorted(percentile(samples, 0.5) or 0.0 for samples in rounds)
    return {
        "p50Ms": round(p50s[len(p50s) // 2], 4),
        "p99Ms": round(max(percentile(samples, 0.99) or 0.0 for samples in rounds), 4),
        "p50MsPerRound": [round(p, 4) for p in p50s],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    roots = {"this checkout": ROOT}
    if args.against is not None:
        roots[f"against {args.against}"] = args.against.resolve()
    samples: dict[str, dict[str, list[list[float]]]] = {label: {} for label in roots}
    floors: dict[str, list[list[float]]] = {"bare asyncio protocol": [], "bare aiohttp ws": []}
    for _ in range(args.rounds):  # interleaved: every variant once a round
        for label, root in roots.items():
            for name, values in measure_server(
                root, args.count, args.followers, args.client
            ).items():
                samples[label].setdefault(name, []).append(values)
        if not args.no_floor:
            floors["bare asyncio protocol"].append(
                measure_floor(BARE_PROTOCOL, args.count, args.client)
            )
            floors["bare aiohttp ws"].append(measure_floor(BARE_AIOHTTP, args.count, args.client))
    return {
        "count": args.count,
        "rounds": args.rounds,
        "followers": args.followers,
        "client": args.client,
        "loadAverage": os.getloadavg(),
        "servers": {
            label: {name: summary(rounds) for name, rounds in events.items()}
            for label, events in samples.items()
        },
        "floors": {name: summary(rounds) for name, rounds in floors.items() if rounds},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="round trips per event")
    parser.add_argument("--rounds", type=int, default=3, help="server starts per variant")
    parser.add_argument("--followers", type=int, default=0, help="quiet followers in the session")
    parser.add_argument("--client", choices=("blocking", "asyncio"), default="blocking")
    parser.add_argument("--against", type=Path, help="also measure this checkout's server")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare echo servers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args)
    print(
        f"{args.client} client, {args.count} round trips x {args.rounds} rounds, "
        f"{args.followers} followers, load average {result['loadAverage'][0]:.2f}"
    )
    for label, events in result["servers"].items():
        print(label)
        for name, figures in events.items():
            print(f"  {name:46s} p50 {figures['p50Ms']:7.3f} ms   p99 {figures['p99Ms']:7.3f} ms")
    for name, figures in result["floors"].items():
        print(f"  {name:46s} p50 {figures['p50Ms']:7.3f} ms   p99 {figures['p99Ms']:7.3f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
