"""The read model in-process peers use (server/readmodel.py), against a real server."""

from __future__ import annotations

import asyncio

import pytest

from bandsync_desktop.server.readmodel import ServerView
from bandsync_desktop.server.storage import StoreState
from tests.helpers.clients import expect_ok

pytestmark = pytest.mark.asyncio


async def test_a_view_reads_the_server_and_hears_every_publication(server, make_client):
    view = ServerView.of(server.app)
    heard: list[tuple[str, str]] = []
    view.subscribe(lambda event, session_id, payload: heard.append((event, session_id)))
    phone = await make_client("phone")
    await expect_ok(phone, "join_session", {"sessionId": "gig", "role": "leader"})
    await expect_ok(phone, "set_tempo", {"sessionId": "gig", "tempo": 97})
    await asyncio.sleep(0.35)  # the coalesced membership snapshot
    assert ("tempo_changed", "gig") in heard and ("snapshot", "gig") in heard
    session = view.session("gig")
    assert session is not None and session.timeline.latest.tempo_bpm == 97
    assert view.link(phone.sid) is not None and view.link("nobody") is None
    assert view.connection_count == 1
    assert view.store_state is StoreState.MEMORY
    assert abs(view.now_ms() - server.service.clock.now_ms()) < 1000
    lag = view.loop_lag()
    assert lag.p50_ms is None or lag.p50_ms >= 0
    view.unsubscribe(heard.append)  # not subscribed: a no-op, never an error
