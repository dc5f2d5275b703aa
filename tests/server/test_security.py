"""What a phone on the LAN can and cannot do (docs/security.md), against a real server.

Each test plays the attacker with real clients: commands without leadership, another
session's leader key, cross-origin browsers, path traversal on the follower page's static
files, what ``/health`` tells.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

import bandsync_desktop
from bandsync_desktop.core.errors import ErrorCode

pytestmark = pytest.mark.asyncio

LEADER_COMMANDS = [
    ("set_tempo", {"tempo": 150}),
    ("set_meter", {"beatsPerBar": 3, "beatUnit": 4}),
    ("set_count_in", {"bars": 2}),
    ("play", {}),
    ("pause", {}),
    ("stop", {}),
    ("seek", {"position": 5000}),
    ("update_message", {"message": "all yours"}),
    ("set_song", {"song": {"title": "Hijacked", "chart": "C G Am F"}}),
]


async def stored(server, session_id):
    session = await server.service.store.get(session_id)
    return None if session is None else session.to_dict()


async def ok(client, event, payload):
    ack = await client.call(event, payload)
    assert ack["ok"], (event, ack)
    return ack


async def refused(client, event, payload, code):
    """The command is refused with ``code``, by ack and by an ``error`` event."""
    error_event = client.next("error")
    ack = await client.call(event, payload)
    assert ack["ok"] is False, (event, ack)
    assert ack["error"]["code"] == code, (event, ack)
    assert (await asyncio.wait_for(error_event, 3)) == ack["error"]
    return ack


async def protected_band(make_client, session="locked"):
    leader = await make_client("leader")
    created = await ok(leader, "create_session", {"sessionId": session, "displayName": "Lead"})
    follower = await make_client("follower")
    await ok(follower, "join_session", {"sessionId": session, "displayName": "Phone"})
    return leader, follower, created["leaderKey"]


# -- leadership ------------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "extra"), LEADER_COMMANDS)
async def test_a_follower_cannot_give_leader_commands(server, make_client, event, extra):
    leader = await make_client("leader")
    await ok(leader, "join_session", {"sessionId": "open", "role": "leader"})
    follower = await make_client("follower")
    await ok(follower, "join_session", {"sessionId": "open"})
    before = await stored(server, "open")
    await refused(follower, event, {"sessionId": "open", **extra}, ErrorCode.NOT_LEADER)
    assert await stored(server, "open") == before


@pytest.mark.parametrize(("event", "extra"), LEADER_COMMANDS)
async def test_a_stranger_cannot_command_a_session_it_is_not_in(server, make_client, event, extra):
    leader = await make_client("leader")
    await ok(leader, "join_session", {"sessionId": "theirs", "role": "leader"})
    stranger = await make_client("stranger")
    await ok(stranger, "join_session", {"sessionId": "mine", "role": "leader"})
    before = await stored(server, "theirs")
    await refused(stranger, event, {"sessionId": "theirs", **extra}, ErrorCode.NOT_IN_SESSION)
    assert await stored(server, "theirs") == before


async def test_follower_cannot_hand_over_or_remove_members(server, make_client):
    leader, follower, _ = await protected_band(make_client)
    before = await stored(server, "locked")
    await refused(
        follower, "hand_over", {"sessionId": "locked", "to": follower.sid}, ErrorCode.NOT_LEADER
    )
    await refused(
        follower,
        "remove_member",
        {"sessionId": "locked", "member": leader.sid},
        ErrorCode.NOT_LEADER,
    )
    assert await stored(server, "locked") == before


async def test_a_protected_session_needs_its_key(server, make_client):
    _leader, follower, key = await protected_band(make_client)
    before = await stored(server, "locked")
    await refused(
        follower,
        "set_role",
        {"sessionId": "locked", "role": "leader"},
        ErrorCode.LEADER_KEY_REQUIRED,
    )
    await refused(
        follower,
        "set_role",
        # one character off (never the key itself: it may already end in "x")
        {
            "sessionId": "locked",
            "role": "leader",
            "leaderKey": key[:-1] + ("y" if key[-1] == "x" else "x"),
        },
        ErrorCode.LEADER_KEY_REQUIRED,
    )
    newcomer = await make_client("newcomer")
    await refused(
        newcomer,
        "join_session",
        {"sessionId": "locked", "role": "leader", "leaderKey": "guess"},
        ErrorCode.LEADER_KEY_REQUIRED,
    )
    assert await stored(server, "locked") == before
    # the control: the key itself works
    await ok(follower, "set_role", {"sessionId": "locked", "role": "leader", "leaderKey": key})
    assert (await stored(server, "locked"))["leaderId"] == "~s:" + follower.sid


async def test_a_taken_session_id_cannot_be_created_again(server, make_client):
    await protected_band(make_client)
    before = await stored(server, "locked")
    thief = await make_client("thief")
    await refused(thief, "create_session", {"sessionId": "locked"}, ErrorCode.SESSION_EXISTS)
    assert await stored(server, "locked") == before


async def test_a_member_cannot_take_over_the_leaders_seat_with_its_client_id(server, make_client):
    """A clientId re-attaches a device to its seat (and its lead), so it never goes on the wire:
    members are shown by socketId and a public memberId, neither of which re-attaches."""
    leader = await make_client("leader")
    created = await ok(leader, "create_session", {"sessionId": "seat", "clientId": "lead-phone-1"})
    assert created["leaderKey"]
    follower = await make_client("follower")
    await ok(follower, "join_session", {"sessionId": "seat", "clientId": "fol-phone-1"})
    await ok(leader, "set_tempo", {"sessionId": "seat", "tempo": 99})
    seen = repr(follower.events)
    assert "lead-phone-1" not in seen  # no event the follower got carries the leader's clientId
    snapshot = follower.last("snapshot")
    public_ids = {snapshot["leaderSocketId"], snapshot["leaderMemberId"]} | {
        value for m in snapshot["members"] for value in (m["socketId"], m["memberId"])
    }
    attacker = await make_client("attacker")
    for guess in sorted(public_ids):
        ack = await attacker.call("join_session", {"sessionId": "seat", "clientId": guess})
        if ack["ok"]:
            ack = await attacker.call("set_tempo", {"sessionId": "seat", "tempo": 33})
        assert ack["ok"] is False, guess
        await attacker.call("leave_session", {"sessionId": "seat"})
    assert (await stored(server, "seat"))["leaderId"] == "lead-phone-1"
    assert server.service.sessions["seat"].timeline.latest.tempo_bpm == 99


async def test_a_member_without_a_client_id_cannot_be_impersonated_by_its_socket_id(
    server, make_client
):
    leader = await make_client("legacy-leader")
    await ok(leader, "join_session", {"sessionId": "legacy", "role": "leader"})
    attacker = await make_client("attacker")
    ack = await attacker.call("join_session", {"sessionId": "legacy", "clientId": leader.sid})
    assert ack["ok"] and ack["role"] == "follower"
    ack = await attacker.call("set_tempo", {"sessionId": "legacy", "tempo": 33})
    assert ack["error"]["code"] == "NOT_LEADER"
    members = server.service.sessions["legacy"].members
    assert len(members) == 2 and leader.sid in {m.socket_id for m in members.values()}


# -- the leader key stays with its holder ----------------------------------------------------


async def test_no_event_health_or_page_carries_a_leader_key(start_server, make_client):
    server = await start_server(band_session=True, heartbeat_interval_s=0.2)
    band_key = (await stored(server, "band"))["leaderKey"]
    leader = await make_client("leader", url=server.url)
    created = await ok(leader, "create_session", {"sessionId": "gig", "displayName": "L"})
    key = created["leaderKey"]
    assert key and band_key and key != band_key
    observers = []
    for name, session in (("gig-phone", "gig"), ("band-phone", "band"), ("other", "other")):
        client = await make_client(name, url=server.url)
        await ok(client, "join_session", {"sessionId": session, "displayName": name})
        observers.append(client)
    await ok(leader, "set_tempo", {"sessionId": "gig", "tempo": 100})
    await ok(leader, "play", {"sessionId": "gig"})
    await ok(observers[0], "sync_request", {"sessionId": "gig"})
    await ok(observers[2], "sync_request", {"sessionId": "band"})
    await observers[0].wait_for("heartbeat", 3)
    await asyncio.sleep(0.4)  # coalesced membership snapshots and room_stats
    async with aiohttp.ClientSession() as http:
        pages = []
        for path in ("/health", "/", "/s/gig", "/s/band"):
            async with http.get(server.url + path) as response:
                pages.append(await response.text())
    seen = json.dumps([c.events for c in observers]) + "".join(pages)
    assert "snapshot" in seen and "heartbeat" in seen  # the observers did hear the session
    assert key not in seen
    assert band_key not in seen
    assert "leaderKey" not in seen


async def test_health_tells_counts_not_sessions_members_or_keys(start_server, make_client):
    server = await start_server(band_session=True)
    client = await make_client("phone", url=server.url)
    await ok(client, "join_session", {"sessionId": "secret-gig", "displayName": "Zed"})
    async with aiohttp.ClientSession() as http, http.get(server.url + "/health") as response:
        assert response.status == 200
        body = await response.json()
        text = json.dumps(body)
    assert body["sessions"] == 2 and body["connections"] == 1
    for private in ("secret-gig", "Zed", client.sid, "leaderKey", "key"):
        assert private not in text, private


# -- browsers on other origins ---------------------------------------------------------------


async def _handshake(url, origin):
    headers = {"Origin": origin} if origin else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(url + "/socket.io/?EIO=4&transport=polling", headers=headers) as response,
    ):
        return response.status, response.headers.get("Access-Control-Allow-Origin")


@pytest.mark.expect_log("is not an accepted origin")
async def test_cors_default_is_the_servers_own_origin_only(server):
    own = server.url  # http://127.0.0.1:<port>: what a page served by this server sends
    assert await _handshake(server.url, own) == (200, own)
    assert await _handshake(server.url, None) == (200, None)  # native apps send no Origin
    status, allowed = await _handshake(server.url, "http://evil.example")
    assert (status, allowed) == (400, None)
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(ws_url, headers={"Origin": "http://evil.example"})
        async with http.ws_connect(ws_url, headers={"Origin": own}) as ws:
            assert (await ws.receive_str(timeout=3)).startswith("0{")
        async with http.get(
            server.url + "/health", headers={"Origin": "http://evil.example"}
        ) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.expect_log("is not an accepted origin")
async def test_cors_configured_origins_only(start_server):
    server = await start_server(cors_origins=("http://console.local:3001",))
    assert await _handshake(server.url, "http://console.local:3001") == (
        200,
        "http://console.local:3001",
    )
    assert (await _handshake(server.url, "http://evil.example"))[0] == 400


# -- the follower page's static files --------------------------------------------------------

TRAVERSALS = [
    "/static/../pyproject.toml",
    "/static/../../pyproject.toml",
    "/static/..%2f..%2fpyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fserver%2fapp.py",
    "/static/..%5c..%5cserver%5capp.py",
    "/static/....//....//server/app.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/vendor/../../server/app.py",
    "/static/.hidden",
    "/static/../server/app.py%00.js",
    "/s/..%2f..%2fpyproject.toml",
    "/%2e%2e/%2e%2e/etc/passwd",
]


async def test_static_files_do_not_traverse(server):
    web_root = Path(bandsync_desktop.__file__).parent / "web"
    app_js = (web_root / "app.js").read_bytes()
    secrets = [
        (Path(bandsync_desktop.__file__).parent / "server" / "app.py").read_bytes()[:200],
        b"root:x:0:0",
        b"[build-system]",
    ]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/static/app.js") as response:
            assert response.status == 200  # the control: a real file is served
            assert await response.read() == app_js
        for path in TRAVERSALS:
            async with http.get(server.url + path) as response:
                body = await response.read()
                assert response.status in (400, 403, 404), (path, response.status)
                for secret in secrets:
                    assert secret not in body, path


# -- DNS rebinding ----------------------------------------------------------------------------


async def _handshake_as(url, host, **headers):
    """A polling handshake to ``url`` presenting ``host`` as the ``Host`` header."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            url + "/socket.io/?EIO=4&transport=polling", headers={"Host": host, **headers}
        ) as response,
    ):
        return response.status


@pytest.mark.expect_log(r"refused a browser reaching this server as 'rebind\.example'")
async def test_a_browser_on_a_rebound_domain_is_refused(server):
    port = server.port
    rebound = f"rebind.example:{port}"
    # What a page on a public domain re-resolved to our address sends: its own Host and
    # Origin (which match, so the same-origin check alone passes it).
    browser = {"Origin": f"http://{rebound}", "Sec-Fetch-Mode": "cors"}
    assert await _handshake_as(server.url, rebound, **browser) == 403
    assert await _handshake_as(server.url, rebound, **{"Sec-Fetch-Mode": "cors"}) == 403
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url, headers={"Host": rebound, **browser})
        assert refused.value.status == 403
    assert server.sio.eio.sockets == {}
    # A browser by IP address, localhost or an mDNS name; a native client by any name.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"band-laptop.local:{port}"):
        assert await _handshake_as(server.url, host, Origin=f"http://{host}") == 200, host
    assert await _handshake_as(server.url, rebound) == 200


async def test_configured_host_names_are_allowed_to_browsers(start_server):
    server = await start_server(allowed_hosts=("Rehearsal.Example",))
    host = f"rehearsal.example:{server.port}"
    assert await _handshake_as(server.url, host, Origin=f"http://{host}") == 200
