"""Routes of the follower page: ``/``, ``/s/<sessionId>`` and ``/static/<file>``.

The page is static HTML/CSS/JS shipped as package data in ``bandsync_desktop/web``; the same
``index.html`` serves the join form (``/``) and the direct join link (``/s/<sessionId>``, what
the console's QR code encodes), and the script reads the session id from the path.

Static files are served from a table built once at startup by walking the web folder, so a
request can only ever name a file that is in that table: there is no path to traverse. Every
answer carries a Content-Security-Policy that allows scripts, styles and connections to this
origin only (no inline script, no CDN: a phone on a LAN without internet must work).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from ..core import validation
from ..core.errors import ValidationError

WEB_ROOT: Final = Path(__file__).resolve().parent.parent / "web"

_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".wav": "audio/wav",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}
#: Licence texts of vendored code are served as plain text.
_TEXT_EXTENSIONS: Final = {".LICENSE": "text/plain; charset=utf-8"}

#: Our own files may change with any release: the browser revalidates them (a cheap 304).
#: The vendored client changes only with its version: cache it for a day.
_CACHE_OWN: Final = "no-cache"
_CACHE_VENDOR: Final = "public, max-age=86400"

# A Host header is reflected into the CSP's connect-src (older Safari does not let 'self'
# cover ws:/wss:), so it must look like a host name or address with an optional port.
_HOST_RE: Final = re.compile(
    r"^[A-Za-z0-9.\-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$"
)

_BASE_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One servable file, read once: body, content type, strong ETag and cache policy."""

    body: bytes
    content_type: str
    etag: str
    cache_control: str


def content_security_policy(host: str | None) -> str:
    """The CSP of every page answer: this origin only, no inline script or style."""
    connect = "'self'"
    if host and _HOST_RE.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self'",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def load_static(root: Path = WEB_ROOT) -> dict[str, StaticFile]:
    """Every servable file under ``root``, keyed by its ``/``-separated relative path."""
    files: dict[str, StaticFile] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.parts):
            continue
        relative = path.relative_to(root).as_posix()
        content_type = _CONTENT_TYPES.get(path.suffix) or _TEXT_EXTENSIONS.get(path.suffix)
        if content_type is None:
            continue  # source maps, notes and anything unexpected stay private
        body = path.read_bytes()
        vendor = relative.startswith("vendor/")
        files[relative] = StaticFile(
            body=body,
            content_type=content_type,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            cache_control=_CACHE_VENDOR if vendor else _CACHE_OWN,
        )
    return files


def _respond(request: web.Request, item: StaticFile) -> web.Response:
    headers = {
        **_BASE_HEADERS,
        "Cache-Control": item.cache_control,
        "ETag": item.etag,
    }
    if item.content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = content_security_policy(request.host)
    if_none_match = request.headers.get("If-None-Match", "")
    if item.etag in (tag.strip() for tag in if_none_match.split(",")):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=item.body, headers=headers)
    response.content_type = item.content_type.split(";")[0]
    if "charset=" in item.content_type:
        response.charset = item.content_type.split("charset=")[1]
    return response


def _not_found(text: str) -> web.Response:
    return web.Response(
        status=404,
        text=text + "\n",
        headers={**_BASE_HEADERS, "Cache-Control": "no-store"},
    )


def add_web_routes(app: web.Application) -> None:
    """Serve the follower page: ``/``, ``/s/<sessionId>``, ``/static/<file>``."""
    files = load_static()

    async def page(request: web.Request) -> web.Response:
        index = files.get("index.html")
        if index is None:
            return _not_found("the follower page is not installed")
        return _respond(request, index)

    async def session_page(request: web.Request) -> web.Response:
        try:
            validation.session_id(request.match_info["session_id"])
        except ValidationError as exc:
            return _not_found(f"no such session link: {exc.message}")
        return await page(request)

    async def static(request: web.Request) -> web.Response:
        item = files.get(request.match_info["path"])
        if item is None:
            return _not_found("not found")
        return _respond(request, item)

    async def favicon(request: web.Request) -> web.Response:
        item = files.get("icon.svg")
        if item is None:
            return _not_found("not found")
        return _respond(request, item)

    app.router.add_get("/", page)
    app.router.add_get("/s/{session_id}", session_page)
    app.router.add_get("/static/{path:.+}", static)
    app.router.add_get("/favicon.ico", favicon)
