"""Routes of the follower page (``/``, ``/s/<sessionId>``, static assets).

Placeholder until the follower page lands: ``/`` answers a short text so a phone that opens
the console's URL sees the server is up.
"""

from __future__ import annotations

from aiohttp import web


def add_web_routes(app: web.Application) -> None:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="BandSync server is running. The follower page is coming.\n")

    app.router.add_get("/", index)
