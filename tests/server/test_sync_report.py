"""A phone's ``sync_report`` (issue 14 item 4): its clock figures and its audio output.

The page reports its output latency (``outputDelayMs``, −50…+400 ms) and which output it
plays through (``output``: speaker, wired, bluetooth); the console shows them. A report is
kept whole or not at all: one bad field refuses all of it, with a clear error, and nothing
of it is kept (its clock figures neither). What a hostile member on the same Wi-Fi can put
in each field is tried here against a real server and real socket.io clients.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from bandsync_desktop.core.errors import ErrorCode
from bandsync_desktop.core.health import LinkStats
from bandsync_desktop.server.app import SETTINGS, ServerRunner
from tests.helpers.clients import Recorder, expect_ok

pytestmark = pytest.mark.asyncio

GOOD = {"rttMs": 12.0, "offsetMs": -3.5, "uncertaintyMs": 0.5}

#: Reports that must be refused: (what is wrong, the fields, a word the error must say).
HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("above the range", {"outputDelayMs": 401}, "outputDelayMs must be -50 to 400"),
    ("below the range", {"outputDelayMs": -50.5}, "outputDelayMs must be -50 to 400"),
    ("huge", {"outputDelayMs": 1e300}, "outputDelayMs must be -50 to 400"),
    ("NaN", {"outputDelayMs": math.nan}, "finite"),
    ("infinite", {"outputDelayMs": math.inf}, "finite"),
    ("NaN as a string", {"outputDelayMs": "NaN"}, "must be a number"),
    ("a number as a string", {"outputDelayMs": "220"}, "must be a number"),
    ("a boolean", {"outputDelayMs": True}, "must be a number"),
    ("an object", {"outputDelayMs": {"valueOf": 220}}, "must be a number"),
    ("a list", {"outputDelayMs": [220]}, "must be a number"),
    ("an unknown output", {"outputDelayMs": 100, "output": "hdmi"}, "output must be one of"),
    ("an output in capitals", {"outputDelayMs": 100, "output": "Bluetooth"}, "output must be"),
    ("a number as output", {"outputDelayMs": 100, "output": 3}, "output must be one of"),
    ("an object as output", {"outputDelayMs": 100, "output": {"a": {"b": [1]}}}, "output must"),
    ("a long output", {"outputDelayMs": 100, "output": "bluetooth" * 10_000}, "output must"),
    ("an output alone, bad", {"output": "x" * 100_000}, "output must be one of"),
    ("a clock figure not finite", {"outputDelayMs": 100, "rttMs": math.nan}, "finite"),
    ("a clock figure as text", {"outputDelayMs": 100, "uncertaintyMs": "1"}, "must be a number"),
]


async def _joined(make_client: Any, name: str = "phone") -> Recorder:
    phone: Recorder = await make_client(name)
    await expect_ok(phone, "join_session", {"sessionId": "jam", "displayName": "Ana"})
    return phone


def _link(server: ServerRunner, phone: Recorder) -> LinkStats:
    return server.service.connections[phone.sid].link


def _figures(link: LinkStats) -> tuple[Any, ...]:
    return (
        list(link.rtt_samples),
        link.offset_ms,
        link.uncertainty_ms,
        link.output_delay_ms,
        link.output,
    )


async def test_a_good_report_is_kept_whole(server: ServerRunner, make_client: Any) -> None:
    phone = await _joined(make_client)
    link = _link(server, phone)
    assert (link.output_delay_ms, link.output) == (None, None)  # a page that never said
    ack = await phone.call(
        "sync_report", {"sessionId": "jam", **GOOD, "outputDelayMs": 220, "output": "bluetooth"}
    )
    assert ack == {"ok": True}
    assert (link.output_delay_ms, link.output) == (220.0, "bluetooth")
    assert (link.offset_ms, link.uncertainty_ms) == (-3.5, 0.5)
    assert 12.0 in list(link.rtt_samples)
    # the limits themselves are in range; a fraction of a ms is kept as sent
    for delay, output in ((-50, "wired"), (400, "speaker"), (12.5, "bluetooth")):
        assert (await phone.call("sync_report", {"outputDelayMs": delay, "output": output}))["ok"]
        assert (link.output_delay_ms, link.output) == (delay, output)
    # a report without the fields (the original app's) keeps what the page said last
    assert (await phone.call("sync_report", {"rttMs": 10.0}))["ok"]
    assert (link.output_delay_ms, link.output) == (12.5, "bluetooth")
    # a latency without an output: the output is not known any more
    assert (await phone.call("sync_report", {"outputDelayMs": 30}))["ok"]
    assert (link.output_delay_ms, link.output) == (30.0, None)


@pytest.mark.parametrize(("case", "fields", "says"), HOSTILE, ids=[c for c, _, _ in HOSTILE])
async def test_a_bad_field_refuses_the_whole_report_clearly(
    server: ServerRunner, make_client: Any, case: str, fields: dict[str, Any], says: str
) -> None:
    phone = await _joined(make_client)
    link = _link(server, phone)
    await expect_ok(phone, "sync_report", {**GOOD, "outputDelayMs": 220, "output": "bluetooth"})
    before = _figures(link)
    errors = phone.next("error")
    # the other fields of the report are good and new: none of them may be kept
    report = {"rttMs": 99.0, "offsetMs": 7.0, "uncertaintyMs": 9.0, **fields}
    ack = await phone.call("sync_report", report)
    assert ack["ok"] is False, case
    error = ack["error"]
    assert error["code"] == ErrorCode.INVALID_PAYLOAD, (case, error)
    assert says in error["message"], (case, error)
    assert error["event"] == "sync_report"
    assert len(error["message"]) < 120  # the error does not echo what was sent
    assert (await errors) == error  # the original app's clients listen for `error`
    assert _figures(link) == before, case
    # the connection is kept and the next good report is taken
    await expect_ok(phone, "sync_report", {"outputDelayMs": 150, "output": "wired"})
    assert (link.output_delay_ms, link.output) == (150.0, "wired")


@pytest.mark.parametrize("field", ["outputDelayMs", "rttMs"])
async def test_an_integer_too_big_for_the_decoder_is_a_malformed_packet(
    server: ServerRunner, make_client: Any, field: str
) -> None:
    """A 401-digit integer never reaches the handler: the packet decoder refuses it, and the
    guard (server/guard.py) answers with an ``error`` event; there is no ack to wait for."""
    phone = await _joined(make_client)
    link = _link(server, phone)
    await expect_ok(phone, "sync_report", {**GOOD, "outputDelayMs": 220, "output": "bluetooth"})
    before = _figures(link)
    errors = phone.next("error")
    await phone.emit("sync_report", {"outputDelayMs": 100, "output": "wired", field: 10**400})
    error = await asyncio.wait_for(errors, 5)
    assert error["code"] == ErrorCode.INVALID_PAYLOAD and "malformed" in error["message"]
    assert _figures(link) == before
    await expect_ok(phone, "sync_report", {"outputDelayMs": 150, "output": "wired"})
    assert (link.output_delay_ms, link.output) == (150.0, "wired")


async def test_a_report_too_big_for_a_packet_is_dropped_with_the_socket(
    server: ServerRunner, make_client: Any
) -> None:
    """A 1 MB output string is over the packet limit (128 kB): the engine closes that socket
    before anything reads it; the server and the other phones go on."""
    phone = await _joined(make_client)
    other = await _joined(make_client, "other")
    link = _link(server, other)
    sid = phone.sid
    huge = {"outputDelayMs": 100, "output": "b" * 1_000_000}
    assert len(json.dumps(huge)) > server.app[SETTINGS].max_payload_bytes
    await phone.emit("sync_report", huge)
    for _ in range(100):
        if sid not in server.service.connections:
            break
        await phone.sio.sleep(0.05)
    assert sid not in server.service.connections
    await expect_ok(other, "sync_report", {"outputDelayMs": 200, "output": "bluetooth"})
    assert (link.output_delay_ms, link.output) == (200.0, "bluetooth")
