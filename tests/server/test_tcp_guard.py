"""TCP connections are guarded before any HTTP parsing (docs/security.md, finding 3).

Real server on loopback, raw TCP sockets for the attacker (bound to 127.0.0.2, which is not
exempt from the caps), real socket.io clients for the band. 1,050 half-sent requests from one
address used to exhaust the server's descriptors: here each resource is pushed past its
limit and the test checks that the excess is closed at once, that ``/health`` and a join from
another address still work, and that members keep receiving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import socketio

from bandsync_desktop.server.tcpguard import LOG_WINDOW_S, TcpGuard
from tests.helpers.clients import Recorder
from tests.helpers.procs import headless_command

pytestmark = pytest.mark.asyncio

ATTACKER = "127.0.0.2"
PHONE = "127.0.0.3"
HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
ROOT = Path(__file__).resolve().parents[2]


class Raw:
    """One raw TCP connection to the server from a chosen loopback address."""

    def __init__(
        self, reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None
    ) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int, source: str = ATTACKER, send: bytes = HALF_REQUEST) -> Raw:
        """Connect and send ``send``; a connection the server resets before ``connect()``
        returns (refused at accept) is a ``Raw`` already closed by the server."""
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except ConnectionResetError:
            return cls(None, None)
        if send:
            writer.write(send)
        return cls(reader, writer)

    @property
    def reader(self) -> asyncio.StreamReader:
        assert self._reader is not None, "the server refused this connection"
        return self._reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        assert self._writer is not None, "the server refused this connection"
        return self._writer

    @property
    def closed_by_server(self) -> bool:
        if self._reader is None:
            return True
        return self._reader.at_eof() or self._reader.exception() is not None

    async def wait_closed_by_server(self, timeout: float) -> float:
        """Seconds until the server closed this connection (EOF or reset)."""
        started = time.monotonic()
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionError:
            pass
        return time.monotonic() - started

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def open_many(port: int, count: int, source: str = ATTACKER) -> list[Raw]:
    return list(await asyncio.gather(*(Raw.open(port, source) for _ in range(count))))


async def settle(connections: list[Raw], seconds: float = 0.3) -> tuple[list[Raw], list[Raw]]:
    """(still open, closed by the server) after ``seconds``."""
    await asyncio.sleep(seconds)
    held = [c for c in connections if not c.closed_by_server]
    closed = [c for c in connections if c.closed_by_server]
    return held, closed


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
        assert response.status == 200
        return await response.json()


def phone(url: str, name: str, source: str = PHONE, **options) -> Recorder:
    """A socket.io client whose connections come from ``source``."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    return Recorder(url, name, http_session=aiohttp.ClientSession(connector=connector), **options)


async def close_phone(client: Recorder) -> None:
    await client.close()
    await client.sio.eio.http.close()


async def ok(client, event, payload):
    ack = await client.call(event, payload)
    assert ack["ok"], (event, ack)
    return ack


def warnings_matching(caplog, pattern: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and re.search(pattern, r.getMessage())
    ]


@pytest.mark.expect_log(r"refusing TCP connections from 127\.0\.0\.2")
async def test_connections_over_the_per_address_cap_are_closed_at_once(start_server, caplog):
    server = await start_server(max_tcp_per_address=8, connection_cap_exempt=("127.0.0.1",))
    flood = await open_many(server.port, 30)
    try:
        held, closed = await settle(flood)
        assert len(held) == 8 and len(closed) == 22  # closed at once, not after a timeout
        assert server.guard is not None and server.guard.connections_from(ATTACKER) == 8
        # one line for the address, not one per refused connection (log space is a resource)
        assert len(warnings_matching(caplog, "refusing TCP connections")) == 1

        assert (await health(server.url))["status"] == "ok"
        member = phone(server.url, "member")
        try:
            await member.connect()
            snapshot = member.next("snapshot")
            await ok(member, "join_session", {"sessionId": "capped"})
            assert (await asyncio.wait_for(snapshot, 3))["sessionId"] == "capped"
        finally:
            await close_phone(member)
        # the held ones keep their places; closing them gives the places back
        for connection in held:
            connection.close()
        await asyncio.sleep(0.2)
        assert server.guard.connections_from(ATTACKER) == 0
        again, _ = await settle(await open_many(server.port, 8))
        assert len(again) == 8
        for connection in again:
            connection.close()
    finally:
        for connection in flood:
            connection.close()


async def test_a_slowloris_is_closed_after_the_header_timeout(start_server):
    server = await start_server(http_header_timeout_s=0.5)
    slow = await Raw.open(server.port)

    async def trickle() -> None:  # a header line every 100 ms, never the blank line
        for i in range(40):
            await asyncio.sleep(0.1)
            if slow.writer.is_closing() or slow.closed_by_server:
                return
            slow.writer.write(b"a\r\nX-%d: " % i)

    feeder = asyncio.create_task(trickle())
    silent = await Raw.open(server.port, send=b"")  # connects and never says a word
    try:
        waited = await asyncio.gather(
            slow.wait_closed_by_server(5.0), silent.wait_closed_by_server(5.0)
        )
        assert all(0.4 <= w <= 3.0 for w in waited), waited
    finally:
        feeder.cancel()
        slow.close()
        silent.close()
    # a whole request is answered as before, even when its blank line arrives in pieces
    prompt = await Raw.open(server.port, send=b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r")
    try:
        await asyncio.sleep(0.1)
        prompt.writer.write(b"\n")
        line = await asyncio.wait_for(prompt.reader.readline(), 3)
        assert line.startswith(b"HTTP/1.1 200")
    finally:
        prompt.close()


async def read_response(raw: Raw) -> bytes:
    head = await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), 3)
    length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE).group(1))
    await asyncio.wait_for(raw.reader.readexactly(length), 3)
    return head


async def test_an_idle_keep_alive_connection_is_closed(start_server):
    server = await start_server(http_keepalive_timeout_s=0.5)
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    raw = await Raw.open(server.port, send=request)
    try:
        assert (await read_response(raw)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)  # within the timeout: the connection is reused
        raw.writer.write(request)
        assert (await read_response(raw)).startswith(b"HTTP/1.1 200")
        waited = await raw.wait_closed_by_server(5.0)  # then it idles, and is closed
        assert 0.3 <= waited <= 3.0, waited
    finally:
        raw.close()


async def test_websockets_and_long_polls_outlive_the_timeouts(start_server):
    server = await start_server(http_header_timeout_s=0.3, http_keepalive_timeout_s=0.3)
    leader = phone(server.url, "leader")
    poller = phone(server.url, "poller")
    disconnects: list[str] = []
    poller.sio.on("disconnect", lambda *_: disconnects.append("poller"))
    leader.sio.on("disconnect", lambda *_: disconnects.append("leader"))
    try:
        await leader.connect()
        await poller.connect(transports=["polling"])
        await ok(leader, "join_session", {"sessionId": "long", "role": "leader"})
        await ok(poller, "join_session", {"sessionId": "long"})
        sids = (leader.sio.eio.sid, poller.sio.eio.sid)
        # Seven times the timeouts with nothing to send: the websocket and the poller's
        # pending long-poll (the server pings every 10 s) are requests in progress.
        await asyncio.sleep(2.1)
        changed = poller.next("tempo_changed")
        await ok(leader, "set_tempo", {"sessionId": "long", "tempo": 97, "quantize": "now"})
        assert (await asyncio.wait_for(changed, 3))["tempoBpm"] == 97
        assert (leader.sio.eio.sid, poller.sio.eio.sid) == sids
        assert poller.sio.transport() == "polling"
        assert disconnects == []
    finally:
        await close_phone(leader)
        await close_phone(poller)


@pytest.mark.expect_log(r"refusing new connections: \d+ are open")
async def test_past_the_budget_newcomers_are_refused_and_members_keep_receiving(
    start_server, caplog
):
    server = await start_server(max_tcp_connections=6)
    leader = phone(server.url, "leader", source="127.0.0.1")
    follower = phone(server.url, "follower", source="127.0.0.1")
    late = phone(server.url, "late")
    flood: list[Raw] = []
    try:
        await leader.connect()
        await follower.connect()
        await ok(leader, "join_session", {"sessionId": "band", "role": "leader"})
        await ok(follower, "join_session", {"sessionId": "band"})
        assert server.guard is not None and server.guard.total == 2  # one websocket each

        flood = await open_many(server.port, 10)
        held, closed = await settle(flood)
        assert len(held) == 4 and len(closed) == 6
        with pytest.raises(socketio.exceptions.ConnectionError):
            await late.connect()

        changed = follower.next("tempo_changed")
        await ok(leader, "set_tempo", {"sessionId": "band", "tempo": 133, "quantize": "now"})
        assert (await asyncio.wait_for(changed, 3))["tempoBpm"] == 133
        assert len(warnings_matching(caplog, "refusing new connections")) == 1

        for connection in held:  # once the flood is gone, newcomers are let in again
            connection.close()
        await asyncio.sleep(0.2)
        await late.connect()
        await ok(late, "join_session", {"sessionId": "band"})
    finally:
        for connection in flood:
            connection.close()
        for client in (leader, follower, late):
            await close_phone(client)


def _limits(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/limits").read_text()
    soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", text).groups()
    return int(soft), int(hard)


def _start_headless(port: int, soft: int, hard: int, env: dict[str, str]) -> subprocess.Popen:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.Popen(
        headless_command(port),
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits")
async def test_the_soft_open_files_limit_is_raised_to_the_hard_one_at_start():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 512:
        pytest.skip(f"needs a finite hard open-files limit above 512 (it is {hard})")
    proc = _start_headless(_free_port(), 512, hard, {})
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert "BandSync server" in line
        assert _limits(proc.pid) == (hard, hard)
    finally:
        err = _stop(proc)
    assert f"open-files limit raised from 512 to {hard}" in err


async def test_running_out_of_descriptors_at_accept_logs_one_line_not_tracebacks():
    # soft = hard: nothing to raise; a budget above the limit lets accept() itself fail
    port = _free_port()
    env = {"BANDSYNC_MAX_TCP_CONNECTIONS": "100000", "BANDSYNC_MAX_TCP_PER_ADDRESS": "0"}
    proc = _start_headless(port, 128, 128, env)
    flood: list[Raw] = []
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert "BandSync server" in line
        for _ in range(3):  # more than the limit, in waves: asyncio retries every second
            flood += await open_many(port, 60)
            await asyncio.sleep(1.0)
        for connection in flood:
            connection.close()
        await asyncio.sleep(1.5)  # accepting again after its one-second pause
        assert (await health(f"http://127.0.0.1:{port}"))["status"] == "ok"
    finally:
        for connection in flood:
            connection.close()
        err = _stop(proc)
    failures = [line for line in err.splitlines() if "cannot accept connections" in line]
    assert len(failures) == 1, err[-3000:]
    assert "EMFILE" in failures[0]
    assert "Traceback" not in err and "out of system resource" not in err, err[-3000:]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("http_header_timeout_s", 0.0),
        ("http_keepalive_timeout_s", -1.0),
        ("max_tcp_per_address", -1),
        ("max_tcp_connections", -5),
        ("fd_reserve", -1),
    ],
)
async def test_a_guard_setting_out_of_range_is_refused_by_name(start_server, setting, value):
    with pytest.raises(ValueError, match=setting):
        await start_server(**{setting: value})


@pytest.mark.expect_log(r"refusing TCP connections from 10\.0\.0\.9")
async def test_refusals_are_logged_once_per_address_per_window(caplog):
    now = [0.0]
    guard = TcpGuard(
        per_address=1, exempt=frozenset(), budget=0, header_timeout_s=1.0, clock=lambda: now[0]
    )
    assert guard.admit("10.0.0.9")
    assert not any(guard.admit("10.0.0.9") for _ in range(500))
    now[0] += LOG_WINDOW_S
    assert not guard.admit("10.0.0.9")
    lines = warnings_matching(caplog, "refusing TCP connections")
    assert len(lines) == 2, lines
    assert "499 more refused" in lines[1]
    assert guard.refused_over_address_cap == 501
