"""Headless mode: the server with no Qt at all. SIGINT/SIGTERM shut it down cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .. import __version__, config, log
from .app import ServerRunner, create_app
from .peers import Actor, ActorError


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by headless mode and the console."""
    parser.add_argument("--host", help="interface to bind (default 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, help="TCP port (default 3001)")
    parser.add_argument(
        "--redis-url",
        help="keep sessions in Redis (redis://host:port/db); default: in memory",
    )
    parser.add_argument(
        "--band-session",
        action="store_true",
        help="create the protected band session at start and log its leader key",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")


def cli_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {"host": args.host, "port": args.port, "redis_url": args.redis_url}


async def serve(
    settings: config.Settings, *, band_session: bool = False, actors: Sequence[Actor] = ()
) -> int:
    """Run until SIGINT/SIGTERM. ``actors`` (bridges to gear) follow the band session."""
    app = create_app(settings, band_session=band_session or bool(actors), actors=actors)
    runner = ServerRunner(app)
    try:
        await runner.start(settings.host, settings.port)
    except OSError as exc:
        log.SERVER.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
        return 2
    except (ValueError, ActorError) as exc:  # a setting out of range, gear that cannot run
        log.SERVER.error("cannot start: %s", exc)
        await runner.stop()
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if band_session:
        session = runner.service.sessions.get(settings.band_session_id)
        if session is not None:
            log.SERVER.info(
                "band session %r, leader key %s", session.session_id, session.leader_key
            )
    print(
        f"BandSync server {__version__} on {runner.url} (store: {runner.service.store.kind})",
        flush=True,
    )
    await stop.wait()
    log.SERVER.info("shutting down")
    await runner.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # (the actors package imports no bridge library until one is asked for)
    from ..actors import add_gear_arguments, build_actors, gear_options

    parser = argparse.ArgumentParser(prog="bandsync-server", description=__doc__)
    add_server_arguments(parser)
    add_gear_arguments(parser)
    args = parser.parse_args(argv)
    log.configure(getattr(logging, str(args.log_level).upper(), logging.INFO))
    try:
        settings = config.load(cli_overrides(args))
        actors = build_actors(gear_options(args))
    except (ValueError, ActorError) as exc:
        parser.error(str(exc))
    return asyncio.run(serve(settings, band_session=args.band_session, actors=actors))


if __name__ == "__main__":
    sys.exit(main())
