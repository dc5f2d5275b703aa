"""The follower page's HTTP routes: pages, static files, 404s, cache and security headers."""

from __future__ import annotations

import aiohttp
import pytest
from multidict import CIMultiDict

from bandsync_desktop.server.web import WEB_ROOT, content_security_policy, load_static


async def get(url: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


@pytest.mark.asyncio
async def test_join_page_and_session_link_serve_the_page_with_a_strict_csp(server):
    for path in ("/", "/s/band", "/s/Band_2.set-1:a"):
        status, headers, body = await get(server.url + path)
        assert status == 200, path
        assert headers["Content-Type"].startswith("text/html")
        assert b'id="join-form"' in body
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-cache"


@pytest.mark.asyncio
async def test_page_has_no_inline_script_and_no_external_reference():
    html = (WEB_ROOT / "index.html").read_text()
    assert "<script>" not in html and "onclick" not in html and "style=" not in html
    for name in ("index.html", "app.js", "app.css", "sync.js"):
        text = (WEB_ROOT / name).read_text()
        assert "http://" not in text and "https://" not in text, name


@pytest.mark.parametrize(
    "path",
    [
        "/s/bad%20id",
        "/s/" + "x" * 65,
        "/s/a%2Fb",
        "/s/caf%C3%A9",
        "/s/a/b",
    ],
)
@pytest.mark.asyncio
async def test_bad_session_link_is_404(server, path):
    status, _headers, body = await get(server.url + path)
    assert status == 404
    assert b"join-form" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server/web.py",
        "/static/%2e%2e/server/web.py",
        "/static/..%2Fserver%2Fweb.py",
        "/static/vendor/socket.io.min.js.map",
        "/static/missing.js",
        "/static//etc/passwd",
    ],
)
@pytest.mark.asyncio
async def test_static_serves_only_its_own_files(server, path):
    status, _, body = await get(server.url + path)
    assert status == 404
    assert b"add_web_routes" not in body and b"root:" not in body


@pytest.mark.asyncio
async def test_static_files_have_types_etags_and_cache_policy(server):
    status, headers, body = await get(server.url + "/static/app.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert headers["Cache-Control"] == "no-cache"
    assert body == (WEB_ROOT / "app.js").read_bytes()
    status, _headers304, body304 = await get(
        server.url + "/static/app.js", **{"If-None-Match": headers["ETag"]}
    )
    assert status == 304 and body304 == b""
    status, headers, body = await get(server.url + "/static/vendor/socket.io.min.js")
    assert status == 200
    assert "max-age=86400" in headers["Cache-Control"]
    assert body.startswith(b"/*!\n * Socket.IO v4.")
    status, headers, body = await get(server.url + "/static/vendor/socket.io-client.LICENSE")
    assert status == 200 and b"MIT License" in body


def test_the_vendored_client_ships_with_its_licence():
    files = load_static()
    assert "vendor/socket.io.min.js" in files
    assert "vendor/socket.io-client.LICENSE" in files
    assert not any(name.endswith(".map") for name in files)


def test_csp_reflects_only_a_well_formed_host():
    assert "ws://192.168.1.5:3001" in content_security_policy("192.168.1.5:3001")
    assert "ws://[::1]:3001" in content_security_policy("[::1]:3001")
    hostile = content_security_policy("evil.com; script-src *")
    assert "evil" not in hostile
    assert "connect-src 'self';" in hostile
