"""Finding 4, the neighbour: one address with many connections gets one connection's budget.

Every connection's frames are counted before they are decoded (tests/server/test_flood.py).
But a budget per connection alone lets an address that opens sixteen connections inject
sixteen bursts at once, each decoded, given a task and answered: the band's acks stalled for
0.6 s at the start of such an attack. The connections of one address share one budget.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.rawsocket import RawWebSocket

pytestmark = pytest.mark.asyncio

ATTACKER = "127.0.0.66"
PROBE = '42["latency_probe",{"timestamp":1}]'


async def _answers(ws: RawWebSocket, seconds: float) -> int:
    """How many latency_response events come back within ``seconds``."""
    count = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            text = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if text is None:
            break
        count += text.startswith('42["latency_response"')
    return count


@pytest.mark.expect_log(r"closed a connection from 127\.0\.0\.66")
async def test_many_connections_from_one_address_share_one_budget(start_server: Any) -> None:
    server = await start_server(
        rate_limit_per_s=1000.0, rate_limit_burst=1000, frame_rate_factor=0.1
    )
    host, port = "127.0.0.1", server.port
    sockets = [await RawWebSocket.open(host, port, ATTACKER) for _ in range(8)]
    try:
        for ws in sockets:
            await ws.handshake()
        frame_burst = server.sio.eio.frame_burst
        per_socket = frame_burst  # each alone is within its own budget
        for ws in sockets:
            ws.writer.write(ws.frames(PROBE, per_socket))
        answered = await asyncio.gather(*(_answers(ws, 1.5) for ws in sockets))
        # One connection's budget for all eight (and its refill over the second and a half),
        # not eight bursts: before, every probe of every socket was answered.
        refill = server.sio.eio.frame_rate_per_s * 2
        assert sum(answered) <= frame_burst + refill, answered
        assert sum(answered) < len(sockets) * per_socket
    finally:
        for ws in sockets:
            ws.close()


async def test_a_second_address_keeps_its_own_budget(start_server: Any) -> None:
    """The shared budget is per address: a flooder does not eat a neighbour's."""
    server = await start_server(
        rate_limit_per_s=1000.0, rate_limit_burst=1000, frame_rate_factor=0.1
    )
    flooder = await RawWebSocket.open("127.0.0.1", server.port, ATTACKER)
    neighbour = await RawWebSocket.open("127.0.0.1", server.port, "127.0.0.67")
    try:
        await flooder.handshake()
        await neighbour.handshake()
        burst = server.sio.eio.frame_burst
        flooder.writer.write(flooder.frames(PROBE, burst))
        await asyncio.sleep(0.2)
        neighbour.writer.write(neighbour.frames(PROBE, burst // 2))
        assert await _answers(neighbour, 1.5) == burst // 2
    finally:
        flooder.close()
        neighbour.close()
