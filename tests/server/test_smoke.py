import pytest

pytestmark = pytest.mark.asyncio


async def test_join_gets_snapshot(make_client):
    client = await make_client("a")
    snapshot = client.next("snapshot")
    ack = await client.call("join_session", {"sessionId": "smoke", "displayName": "A"})
    assert ack["ok"] is True
    data = await snapshot
    assert data["sessionId"] == "smoke"
    assert [m["displayName"] for m in data["members"]] == ["A"]
