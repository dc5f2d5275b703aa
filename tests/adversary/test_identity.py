"""Finding 1: public ids and the private clientId never share a namespace.

A client chooses its own ``clientId``; every snapshot shows each member's ``memberId`` and
``socketId``. An attacker who joined with the victim's public id as its clientId used to be
found in the victim's place: handed the lead meant for the victim, or removed instead of
them. Targets are resolved by public ids only.
"""

from __future__ import annotations

from typing import Any

import pytest

from bandsync_desktop.core.errors import ErrorCode
from bandsync_desktop.core.session import member_id
from tests.helpers.clients import Recorder, expect_ok, expect_refused

pytestmark = pytest.mark.asyncio

ATTACKER = "127.0.0.66"


async def _band(make_client: Any, *, protected: bool) -> tuple[Recorder, Recorder, str]:
    """A leader and a victim phone in session "gig"; returns them and the session id."""
    leader = await make_client("leader")
    if protected:
        await expect_ok(leader, "create_session", {"sessionId": "gig", "clientId": "lead-1"})
    else:
        await expect_ok(
            leader, "join_session", {"sessionId": "gig", "clientId": "lead-1", "role": "leader"}
        )
    victim = await make_client("victim")
    await expect_ok(
        victim,
        "join_session",
        {"sessionId": "gig", "clientId": "victim-secret", "displayName": "V"},
    )
    return leader, victim, "gig"


def _public_ids(snapshot: dict[str, Any], name: str) -> dict[str, str]:
    member = next(m for m in snapshot["members"] if m["displayName"] == name)
    return {"memberId": member["memberId"], "socketId": member["socketId"]}


@pytest.mark.parametrize("protected", [False, True], ids=["open", "protected"])
@pytest.mark.parametrize("stolen", ["memberId", "socketId"])
async def test_the_lead_handed_to_a_member_reaches_that_member(
    server: Any, make_client: Any, protected: bool, stolen: str
) -> None:
    leader, victim, session_id = await _band(make_client, protected=protected)
    snapshot = await victim.call("sync_request", {"sessionId": session_id})  # any round trip
    assert snapshot["ok"]
    public = _public_ids(server.service.snapshot(server.service.sessions[session_id]), "V")
    # The attacker takes the victim's public id as its own clientId (the id alphabet allows it).
    attacker = await make_client("attacker", source=ATTACKER)
    await expect_ok(
        attacker,
        "join_session",
        {"sessionId": session_id, "clientId": public[stolen], "displayName": "Mallory"},
    )
    await expect_ok(leader, "hand_over", {"sessionId": session_id, "to": public[stolen]})
    session = server.service.sessions[session_id]
    assert session.leader_id == "victim-secret"
    assert session.role_of(public[stolen]) == "follower"  # the attacker got nothing
    assert session.leader is not None and session.leader.display_name == "V"


@pytest.mark.parametrize("stolen", ["memberId", "socketId"])
async def test_removing_a_member_removes_that_member(
    server: Any, make_client: Any, stolen: str
) -> None:
    leader, victim, session_id = await _band(make_client, protected=True)
    public = _public_ids(server.service.snapshot(server.service.sessions[session_id]), "V")
    attacker = await make_client("attacker", source=ATTACKER)
    await expect_ok(
        attacker,
        "join_session",
        {"sessionId": session_id, "clientId": public[stolen], "displayName": "Mallory"},
    )
    removed = victim.next("removed")
    await expect_ok(leader, "remove_member", {"sessionId": session_id, "member": public[stolen]})
    assert (await removed)["sessionId"] == session_id
    members = server.service.sessions[session_id].members
    assert "victim-secret" not in members and public[stolen] in members


async def test_a_member_cannot_be_named_by_its_secret_client_id(
    server: Any, make_client: Any
) -> None:
    leader, _, session_id = await _band(make_client, protected=True)
    before = server.service.sessions[session_id].to_dict()
    for event, field in (("hand_over", "to"), ("remove_member", "member")):
        await expect_refused(
            leader,
            event,
            {"sessionId": session_id, field: "victim-secret"},
            ErrorCode.MEMBER_NOT_FOUND,
        )
    assert server.service.sessions[session_id].to_dict() == before


@pytest.mark.parametrize(
    "target",
    ["console", "~console", "lead-1", "", "m-", "m-0000000000000000", "x" * 64, "gig"],
)
async def test_no_hostile_target_reaches_a_member_it_does_not_name(
    server: Any, make_client: Any, target: str
) -> None:
    """Every id field of the targeted events, with ids of the wrong kind or of nobody."""
    leader, _, session_id = await _band(make_client, protected=True)
    before = server.service.sessions[session_id].to_dict()
    for event, field in (("hand_over", "to"), ("remove_member", "member")):
        ack = await leader.call(event, {"sessionId": session_id, field: target})
        assert ack["ok"] is False, (event, target, ack)
        expected = {ErrorCode.MEMBER_NOT_FOUND, ErrorCode.INVALID_PAYLOAD}
        if target == "~console" and event == "hand_over":
            expected = {ErrorCode.NOT_LEADER}  # only the console hands the lead to itself
        assert ack["error"]["code"] in expected, (event, target, ack)
    assert server.service.sessions[session_id].to_dict() == before


async def test_the_console_hands_over_by_the_members_it_lists(start_server: Any) -> None:
    """The console names members by the client ids of its own member list (never from the
    network); the lead goes to exactly that member, even with an impostor present."""
    from bandsync_desktop.actors.console import ConsoleFacade

    server = await start_server(band_session=True)
    victim = await Recorder(server.url, "victim").connect()
    attacker = await Recorder(server.url, "attacker", source=ATTACKER).connect()
    try:
        await expect_ok(victim, "join_session", {"sessionId": "band", "clientId": "v-1"})
        await expect_ok(
            attacker, "join_session", {"sessionId": "band", "clientId": member_id("v-1")}
        )
        console = ConsoleFacade(server.actors.host)
        session = await console.hand_over("v-1")
        assert session.leader_id == "v-1"
        await console.take_lead()
        await console.remove("v-1")  # the victim, not the impostor named by its public id
        members = server.service.sessions["band"].members
        assert "v-1" not in members and member_id("v-1") in members
    finally:
        await victim.close()
        await attacker.close()
