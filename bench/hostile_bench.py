"""Hostile-load benchmark: a band of 4 plays while one address attacks the server (issue 11).

Starts the headless server (``python -m bandsync_desktop --headless --band-session``) as its
own process, bound to 127.0.0.1, with a soft open-files limit of 1,024 (a common desktop
default; set with ``preexec_fn``, the hard limit is left alone so a server that raises its
own soft limit may) and the per-address connection cap applying to every address but
127.0.0.1 and ::1 (``BANDSYNC_CONNECTION_CAP_EXEMPT``), so nobody below is exempt. Every party
has its own loopback address, like phones on the venue Wi-Fi:

* the band: a leader (127.0.0.2, a ``socketio.AsyncClient`` holding the console's protected
  ``band`` session with the leader key the server logs, or with ``--adhoc`` a session of its
  own made by ``create_session``) and three legacy followers (127.0.0.3-5, no ``timeline``
  capability, so they get ``scroll_tick`` at 10 Hz). The leader starts playback, then sends
  ``set_tempo`` with an ack every 250 ms (alternating two tempos) and records each ack's round
  trip; followers record the arrival of every ``scroll_tick``. A dropped band member
  reconnects and rejoins (counted);
* a monitor (127.0.0.6): ``GET /health`` on a fresh connection every 0.5 s; a newcomer
  (127.0.0.7) connecting and joining the band's session every 3 s; the server's RSS (VmRSS
  from ``/proc/<pid>/status``), open descriptors and CPU time sampled every 0.25 s;
* the attacker (127.0.0.9, one address), in a separate process so that its CPU does not
  delay the band's own measurements (it does compete with the server for the machine's cores,
  which a phone would not: ``--attacker-nice 10`` lets it yield), all four at once, each
  bounded by a count and by time:

  - event flood: ``--flood-sockets`` raw websockets (Engine.IO open and Socket.IO connect by
    hand) sending ``42["sync_request",...]`` as fast as the socket takes them, answering
    pings, reconnecting when cut off (cut-offs and refusals counted);
  - slow connections: ``--slow-conns`` TCP connections sending half a request (a request line
    and headers, one more header line every ``--slow-drip`` seconds, never the blank line),
    held for the phase and opened again when the server drops one (``--slow-max-opens`` in
    all); what the server did with them (answered, closed, reset) is counted, and what it
    holds shows in its descriptor count;
  - join churn: ``--churners`` clients joining and leaving the band's session in a loop, each
    within the rate limit (``--churn-rate`` cycles/s);
  - session creation: ``--creators`` clients alternating ``create_session`` and
    ``join_session`` with fresh ids, each within the rate limit (``--create-rate``/s).

Phases, in one run: quiet (``--quiet`` s), attack (``--attack`` s), after (``--after`` s, then
``--settle`` s more before RSS is read "after"). For each phase it prints the ``set_tempo`` ack
p50/p99/max, the tick count and the longest tick gap, ``/health`` latency, joins of a
newcomer; then RSS before (end of quiet), during (max of the attack) and after, server
descriptors and log volume, the attacker's counters, and a verdict against issue 11's targets:
the band's figures under attack within 2x of the quiet ones, ack p99 <= 20 ms, no tick gap
over 250 ms, RSS after within 10 % of before (and no lost ack, no band member dropped, every
``/health`` answered). It also says when in the attack the slowest acks and longest gaps
came (a burst at its start, a timer later), and how late this process's own event loop woke
(if that is large, the band's figures measure the benchmark, not the server).

Bounded: default phases end in ~45 s, ``--quick`` in ~30 s, and ``--max-seconds`` (110) is a
hard stop; the server and the attacker die with this process (``PR_SET_PDEATHSIG``) and are
stopped on exit, Ctrl-C, SIGTERM or error. Loopback only.

Usage::

    .venv/bin/python bench/hostile_bench.py            # ~45 s
    .venv/bin/python bench/hostile_bench.py --quick    # ~30 s smoke
    # the same against another tree's server, e.g. the last commit's (a "before" figure):
    git archive HEAD | tar -x -C /tmp/head && \
        .venv/bin/python bench/hostile_bench.py --server-root /tmp/head --out /tmp/before.json

Writes ``bench/results/hostile_bench.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import itertools
import json
import logging
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import socketio

SELF = Path(__file__).resolve()
HERE = SELF.parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from benchstats import percentile  # noqa: E402

from bandsync_desktop.server.net import free_port  # noqa: E402

SERVER_HOST = "127.0.0.1"
LEADER_ADDRESS = "127.0.0.2"
FOLLOWER_ADDRESSES = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
HEALTH_ADDRESS = "127.0.0.6"
NEWCOMER_ADDRESS = "127.0.0.7"
ATTACKER_ADDRESS = "127.0.0.9"
BAND_SESSION = "band"
SERVER_NOFILE_SOFT = 1024
TEMPOS = (120.0, 126.0)
TEMPO_INTERVAL_S = 0.25
TICK_INTERVAL_S = 0.1
HEALTH_INTERVAL_S = 0.5
NEWCOMER_INTERVAL_S = 3.0
SAMPLE_INTERVAL_S = 0.25
ACK_TIMEOUT_S = 10.0
SLOW_REOPEN_S = 0.25
PHASES = ("quiet", "attack", "after")
# Targets from issue 11.
TARGET_RATIO = 2.0
TARGET_ACK_P99_MS = 20.0
TARGET_GAP_MS = 250.0
TARGET_RSS_GROWTH = 0.10
PR_SET_PDEATHSIG = 1


def now() -> float:
    """The benchmark's clock (monotonic seconds); the attacker's process shares it."""
    return time.monotonic()


def client_id() -> str:
    """A client id shaped as the follower page makes them (``w-`` and 24 hex digits)."""
    return "w-" + secrets.token_hex(12)


def _die_with_parent() -> None:
    """In a child before exec: receive SIGTERM when the benchmark dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _server_preexec() -> None:
    """The server's process: a desktop's open-files limit (``ulimit -n 1024``: soft and hard,
    so the server cannot raise it); dies with the benchmark."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(SERVER_NOFILE_SOFT, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    _die_with_parent()


def raise_own_fd_limit() -> int:
    """Lift this process's soft open-files limit to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in kB from ``/proc/<pid>/status`` (``None`` once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def read_nofile_limits(pid: int) -> tuple[int, int] | None:
    """The soft and hard open-files limits ``pid`` runs with (``/proc/<pid>/limits``)."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return int(parts[3]), int(parts[4])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _error_code(exc: BaseException) -> str:
    """A short name for a failure: HTTP status, errno name or exception type."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"http {exc.status}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"http {exc.status}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


def tree_state(root: Path) -> dict[str, Any]:
    """Which code the server ran: the commit and how many files differ from it (read-only)."""
    state: dict[str, Any] = {"root": str(root)}
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            # (no optional locks: a status must not rewrite the shared tree's index)
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--",
                "bandsync_desktop",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return state
    if head.returncode == 0:
        state["commit"] = head.stdout.strip()
        state["server_files_changed"] = len(dirty.stdout.splitlines())
    return state


def _plain(stats: Any) -> dict[str, Any]:
    """A flat stats dataclass as JSON-ready data (``asdict`` would rebuild a ``Counter``
    from its items, counting the pairs)."""
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(stats).items()}


def _local_session(address: str, limit: int = 100) -> aiohttp.ClientSession:
    """An aiohttp session whose connections come from ``address`` (one phone)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=limit, force_close=True)
    return aiohttp.ClientSession(connector=connector)


# -- a bare Socket.IO client (the attacker's and the newcomer's) -----------------------------


class RawSio:
    """One Socket.IO v5 connection over an aiohttp websocket, spoken by hand.

    Cheap enough to run dozens flat out in one process: one reader task, no task per event.
    Received events are counted by name in ``counts`` (``error`` events by code, as
    ``error:<CODE>``).
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, counts: Counter[str]) -> None:
        self.ws = ws
        self.counts = counts
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)
        self.closed = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, url: str, counts: Counter[str], timeout: float = 5.0
    ) -> RawSio:
        """Connect, read the Engine.IO open packet, send the Socket.IO connect, await its ack."""
        ws = await http.ws_connect(
            url, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0), autoping=True
        )
        try:
            async with asyncio.timeout(timeout):
                opening = await ws.receive_str()
                if not opening.startswith("0"):
                    raise ConnectionError(f"no Engine.IO open: {opening[:40]!r}")
                await ws.send_str("40")
                while True:
                    answer = await ws.receive_str()
                    if answer == "2":
                        await ws.send_str("3")
                        continue
                    if answer.startswith("40"):
                        break
                    raise ConnectionError(f"Socket.IO connect refused: {answer[:80]!r}")
        except TypeError as exc:  # receive_str() met a close frame: refused while opening
            await ws.close()
            raise ConnectionError(f"closed while opening: {exc}") from exc
        except BaseException:
            await ws.close()
            raise
        return cls(ws, counts)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data: str = message.data
                if data == "2":
                    await self.ws.send_str("3")
                elif data.startswith("43"):
                    self._ack(data)
                elif data.startswith('42["'):
                    name = data[4 : data.find('"', 4)]
                    if name == "error":
                        code = "?"
                        with contextlib.suppress(ValueError, IndexError, TypeError, KeyError):
                            code = str(json.loads(data[2:])[1].get("code"))
                        self.counts[f"error:{code}"] += 1
                    else:
                        self.counts[name] += 1
                elif data.startswith("41"):
                    self.counts["sio disconnect"] += 1
                    break
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            for future in self.acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self.acks.clear()

    def _ack(self, data: str) -> None:
        bracket = data.find("[")
        try:
            ack_id = int(data[2:bracket])
            args = json.loads(data[bracket:])
        except ValueError:
            return
        future = self.acks.pop(ack_id, None)
        if future is not None and not future.done():
            future.set_result(args[0] if args else None)

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    async def call(self, event: str, data: Any, timeout: float = 5.0) -> Any:
        """Send ``event`` with an ack and return the ack's payload."""
        if not self.is_open:
            raise ConnectionError("connection closed")
        ack_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data], separators=(",", ":")))
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.acks.pop(ack_id, None)

    async def close(self) -> None:
        """Close, waiting at most half a second for the server's side of the handshake."""
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(0.5):
                await self.ws.close()


def _ack_code(ack: Any) -> str:
    """``ok`` for a positive ack, else the error code it carries."""
    if isinstance(ack, dict):
        if ack.get("ok"):
            return "ok"
        error = ack.get("error")
        if isinstance(error, dict):
            return str(error.get("code"))
    return "bad ack"


# -- the attacker (its own process) ----------------------------------------------------------


@dataclass
class FloodStats:
    sockets: int = 0
    connects: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    frames_sent: int = 0
    cut_offs: int = 0
    cut_off_causes: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    frames_per_s: float = 0.0
    #: When (seconds into the attack) a flooding socket got in, and when it was cut off.
    connected_at: list[float] = field(default_factory=list)
    cut_off_at: list[float] = field(default_factory=list)


@dataclass
class SlowStats:
    target: int = 0
    opened: int = 0
    open_failures: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    closed_by_server: int = 0
    reset_by_server: int = 0
    held_s_before_close: list[float] = field(default_factory=list)
    held_at_end: int = 0
    max_held: int = 0
    bytes_sent: int = 0


@dataclass
class LoopStats:
    """A join-churn or session-creation loop: what was asked and what came back."""

    clients: int = 0
    connects: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    ack_timeouts: int = 0
    received: Counter[str] = field(default_factory=Counter)


class Attacker:
    """Everything one hostile address does at once, each part bounded by count and time."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = args.port
        self.ws_url = f"ws://{SERVER_HOST}:{self.port}/socket.io/?EIO=4&transport=websocket"
        self.started = 0.0
        self.end = 0.0
        self.flood = FloodStats(sockets=args.flood_sockets)
        self.slow = SlowStats(target=args.slow_conns)
        self.churn = LoopStats(clients=args.churners)
        self.create = LoopStats(clients=args.creators)
        self.slow_writers: set[asyncio.StreamWriter] = set()
        self.sessions_made = itertools.count(1)

    async def run(self) -> dict[str, Any]:
        started = self.started = now()
        self.end = started + self.args.attack
        print("STARTED", flush=True)
        async with _local_session(ATTACKER_ADDRESS, limit=0) as http:
            jobs: list[Coroutine[Any, Any, None]] = [
                *(self._flood_one(http) for _ in range(self.args.flood_sockets)),
                self._slow_all(),
                *(self._churn_one(http, i) for i in range(self.args.churners)),
                *(self._create_one(http, i) for i in range(self.args.creators)),
            ]
            tasks = [asyncio.create_task(job) for job in jobs]
            try:
                # Every job stops by itself at ``self.end``, but a send can be stuck waiting
                # for a server that stopped reading: whatever is still running then is
                # cancelled.
                await asyncio.wait(tasks, timeout=max(0.0, self._left()) + 0.5)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for writer in self.slow_writers:
                    writer.transport.abort()
        elapsed = now() - started
        self.flood.frames_per_s = round(self.flood.frames_sent / max(elapsed, 1e-9), 1)
        held = self.slow.held_s_before_close
        summary = _plain(self.slow)
        summary["held_s_before_close"] = {
            "count": len(held),
            "p50": _rounded(percentile(held, 0.5)),
            "max": _rounded(max(held) if held else None),
        }
        return {
            "seconds": round(elapsed, 2),
            "flood": _plain(self.flood),
            "slow": summary,
            "churn": _plain(self.churn),
            "create": _plain(self.create),
        }

    def _left(self) -> float:
        return self.end - now()

    async def _open(self, http: aiohttp.ClientSession, stats: Any, counts: Counter[str]) -> RawSio:
        try:
            sio = await RawSio.open(http, self.ws_url, counts, timeout=min(5.0, self._left()))
        except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
            stats.connect_failures[_error_code(exc)] += 1
            raise
        stats.connects += 1
        return sio

    # - event flood -

    async def _flood_one(self, http: aiohttp.ClientSession) -> None:
        stats = self.flood
        frame = '42["sync_request",{"sessionId":"x"}]'
        while self._left() > 0 and stats.frames_sent < self.args.flood_max_frames:
            try:
                sio = await self._open(http, stats, stats.received)
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                await asyncio.sleep(0.1)
                continue
            stats.connected_at.append(round(now() - self.started, 2))
            try:
                sent = 0
                while self._left() > 0 and stats.frames_sent < self.args.flood_max_frames:
                    if not sio.is_open:
                        raise ConnectionResetError("closed by the server")
                    await sio.ws.send_str(frame)
                    stats.frames_sent += 1
                    sent += 1
                    if sent % 32 == 0:  # let the other attacks (and the reader) run too
                        await asyncio.sleep(0)
            except (aiohttp.ClientError, OSError, RuntimeError, ConnectionError) as exc:
                stats.cut_offs += 1
                stats.cut_off_causes[_error_code(exc)] += 1
                stats.cut_off_at.append(round(now() - self.started, 2))
                await asyncio.sleep(0.05)
            finally:
                await sio.close()

    # - slow connections -

    async def _slow_all(self) -> None:
        gate = asyncio.Semaphore(64)  # connects in flight
        await asyncio.gather(*(self._slow_slot(i, gate) for i in range(self.args.slow_conns)))

    async def _slow_slot(self, index: int, gate: asyncio.Semaphore) -> None:
        """One slot: a slow connection, opened again when the server drops it (as an
        attacker would), while opens in all stay under ``--slow-max-opens``."""
        stats = self.slow
        while self._left() > 0 and stats.opened + stats.open_failures < self.args.slow_max_opens:
            if not await self._slow_one(index, gate):
                return
            await asyncio.sleep(SLOW_REOPEN_S)

    async def _slow_one(self, index: int, gate: asyncio.Semaphore) -> bool:
        """Hold one slow connection; ``True`` if the server ended it before the attack did."""
        stats = self.slow
        async with gate:
            if self._left() <= 0 or stats.opened + stats.open_failures >= self.args.slow_max_opens:
                return False
            try:
                async with asyncio.timeout(min(5.0, self._left())):
                    reader, writer = await asyncio.open_connection(
                        SERVER_HOST, self.port, local_addr=(ATTACKER_ADDRESS, 0)
                    )
            except (OSError, TimeoutError) as exc:
                stats.connect_failures[_error_code(exc)] += 1
                stats.open_failures += 1
                return True
        stats.opened += 1
        self.slow_writers.add(writer)
        stats.max_held = max(stats.max_held, len(self.slow_writers))
        opened_at = now()
        head = f"GET /health HTTP/1.1\r\nHost: {SERVER_HOST}:{self.port}\r\n".encode()
        try:
            writer.write(head)
            stats.bytes_sent += len(head)
            line = 0
            while self._left() > 0:
                try:
                    async with asyncio.timeout(min(self.args.slow_drip, self._left())):
                        data = await reader.read(1024)
                except TimeoutError:
                    line += 1
                    drip = f"X-Slow-{line}: {index}\r\n".encode()
                    writer.write(drip)
                    stats.bytes_sent += len(drip)
                    continue
                if data:  # the server answered a request that never ended (e.g. 408)
                    status = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
                    stats.answered[" ".join(status.split()[1:2]) or status[:20]] += 1
                    continue
                stats.closed_by_server += 1
                stats.held_s_before_close.append(now() - opened_at)
                return True
            stats.held_at_end += 1
            return False
        except OSError:
            stats.reset_by_server += 1
            stats.held_s_before_close.append(now() - opened_at)
            return True
        except asyncio.CancelledError:
            stats.held_at_end += 1
            raise
        finally:
            self.slow_writers.discard(writer)
            writer.transport.abort()

    # - paced loops: join churn and session creation -

    async def _paced(
        self,
        http: aiohttp.ClientSession,
        stats: LoopStats,
        rate: float,
        limit: int,
        step: Callable[[RawSio, int], Coroutine[Any, Any, None]],
    ) -> None:
        interval = 1.0 / rate
        done = 0
        while self._left() > 0 and done < limit:
            try:
                sio = await self._open(http, stats, stats.received)
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                await asyncio.sleep(0.2)
                continue
            next_at = now()
            try:
                while self._left() > 0 and done < limit and sio.is_open:
                    try:
                        await step(sio, done)
                    except TimeoutError:
                        stats.ack_timeouts += 1
                    done += 1
                    next_at += interval
                    delay = min(next_at - now(), self._left())
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        next_at = now()  # fell behind: do not burst to catch up
            except (aiohttp.ClientError, OSError, RuntimeError, ConnectionError):
                pass
            finally:
                if not sio.is_open:
                    stats.disconnects += 1
                await sio.close()

    async def _request(self, sio: RawSio, stats: LoopStats, event: str, data: Any) -> None:
        stats.requests[event] += 1
        ack = await sio.call(event, data, timeout=max(0.5, min(5.0, self._left())))
        stats.answers[f"{event}:{_ack_code(ack)}"] += 1

    async def _churn_one(self, http: aiohttp.ClientSession, index: int) -> None:
        stats = self.churn
        session_id = self.args.session_id

        async def cycle(sio: RawSio, _done: int) -> None:
            await self._request(
                sio, stats, "join_session", {"sessionId": session_id, "displayName": f"c{index}"}
            )
            await self._request(sio, stats, "leave_session", {"sessionId": session_id})

        await self._paced(http, stats, self.args.churn_rate, self.args.churn_max, cycle)

    async def _create_one(self, http: aiohttp.ClientSession, index: int) -> None:
        stats = self.create
        tag = secrets.token_hex(3)

        async def one(sio: RawSio, done: int) -> None:
            if done % 2 == 0:
                await self._request(sio, stats, "create_session", {"displayName": f"s{index}"})
            else:
                fresh = f"h{tag}-{index}-{next(self.sessions_made)}"
                await self._request(
                    sio, stats, "join_session", {"sessionId": fresh, "displayName": f"s{index}"}
                )

        await self._paced(http, stats, self.args.create_rate, self.args.create_max, one)


def attacker_main(args: argparse.Namespace) -> int:
    """The attacker process: attack, then print ``RESULT <json>`` and exit."""
    _die_with_parent()  # the benchmark is our parent: go when it goes
    if args.attacker_nice:
        # A hostile phone has a CPU of its own; here it shares the server's: let it yield.
        os.nice(args.attacker_nice)
    limit = raise_own_fd_limit()
    if limit < args.slow_conns + 200:
        args.slow_conns = max(0, limit - 200)
    result = asyncio.run(Attacker(args).run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_percent"] = round(
        100.0 * (usage.ru_utime + usage.ru_stime) / max(result["seconds"], 1e-9), 1
    )
    result["nice"] = args.attacker_nice
    result["fd_limit"] = limit
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# -- the band and the monitor (this process) -------------------------------------------------


@dataclass
class Member:
    """One band member's client and what it saw."""

    name: str
    address: str
    client: socketio.AsyncClient
    http: aiohttp.ClientSession
    join: dict[str, Any]
    ticks: list[float] = field(default_factory=list)
    dropped_at: list[float] = field(default_factory=list)
    rejoins: int = 0
    rejoin_failures: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    joined_once: bool = False


@dataclass
class PhaseFigures:
    seconds: float = 0.0
    acks: int = 0
    acks_lost: int = 0
    ack_errors: dict[str, int] = field(default_factory=dict)
    ack_ms: dict[str, float | None] = field(default_factory=dict)
    ticks: int = 0
    ticks_expected: int = 0
    tick_gap_ms: dict[str, float | None] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    newcomer: dict[str, Any] = field(default_factory=dict)
    band_disconnects: int = 0
    #: The slowest acks and longest gaps, as (seconds into the phase, ms): when they came.
    worst_acks: list[tuple[float, float]] = field(default_factory=list)
    worst_gaps: list[tuple[float, float]] = field(default_factory=list)
    server_cpu_percent: float | None = None
    server_rss_mb_max: float | None = None
    server_fds_max: int | None = None
    #: This process's own event-loop lag: large values mean the band's figures are the
    #: benchmark's delay, not the server's.
    bench_loop_lag_ms_max: float | None = None


class Bench:
    """The run: server, band, monitor, the attacker's process, the phases and the figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = free_port(SERVER_HOST)
        self.url = f"http://{SERVER_HOST}:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.attacker: asyncio.subprocess.Process | None = None
        self.attacker_pid: int | None = None
        self.log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in cleanup)
            prefix="hostile-bench-server-", suffix=".log", delete=False
        )
        self.session_id = BAND_SESSION
        self.leader_key: str | None = None
        self.members: list[Member] = []
        self.acks: list[tuple[float, float | None, str]] = []  # (sent at, rtt ms, code)
        self.health: list[tuple[float, float | None, str]] = []
        self.newcomer: list[tuple[float, float | None, str]] = []
        self.samples: list[tuple[float, int | None, int | None, float | None]] = []
        self.own_lag: list[tuple[float, float]] = []
        self.marks: dict[str, float] = {}
        self.log_marks: dict[str, int] = {}
        self.attack_result: dict[str, Any] = {}
        self.attacker_notes: list[str] = []
        self.notes: list[str] = []
        self.server_root = Path(args.server_root).resolve() if args.server_root else ROOT
        self.tree = tree_state(self.server_root)
        self.nofile: tuple[int, int] | None = None
        self.stopping = False
        # The band's clients log their reconnects ("packet queue is empty, aborting") as
        # errors on stderr; they are counted as disconnects instead.
        self.client_log = logging.getLogger("hostile_bench.band")
        self.client_log.addHandler(logging.NullHandler())
        self.client_log.propagate = False

    # - processes -

    def start_server(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANDSYNC_")}
        env.update(
            PYTHONUNBUFFERED="1",
            # Only this machine's own console address is exempt: every phone, band and
            # attacker alike, counts against the per-address caps.
            BANDSYNC_CONNECTION_CAP_EXEMPT="127.0.0.1,::1",
            BANDSYNC_BAND_SESSION_ID=BAND_SESSION,
        )
        command = [
            sys.executable,
            "-m",
            "bandsync_desktop",
            "--headless",
            "--host",
            SERVER_HOST,
            "--port",
            str(self.port),
            *([] if self.args.adhoc else ["--band-session"]),
        ]
        # ``-m`` puts the working directory first on sys.path: --server-root runs another
        # tree's server (e.g. ``git archive HEAD`` unpacked) with this virtualenv.
        self.server = subprocess.Popen(
            command,
            cwd=self.server_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
            # (no threads in this process yet: preexec_fn is safe here)
            preexec_fn=_server_preexec,
        )

    def log_size(self) -> int:
        return os.path.getsize(self.log_file.name)

    def read_log(self, limit: int = 1 << 20) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as log:
            return log.read(limit)

    def count_in_log(self, start: int, end: int, needles: Iterable[str]) -> dict[str, int]:
        """Occurrences of each needle in the server log between two byte offsets."""
        counts = dict.fromkeys(needles, 0)
        with open(self.log_file.name, "rb") as log:
            log.seek(start)
            left = end - start
            tail = b""
            while left > 0:
                chunk = log.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                text = (tail + chunk).decode("utf-8", "replace")
                cut = text.rfind("\n") + 1
                for needle in counts:
                    counts[needle] += text[:cut].count(needle)
                tail = text[cut:].encode()
        return counts

    async def wait_ready(self) -> None:
        assert self.server is not None
        deadline = now() + 20.0
        async with _local_session(HEALTH_ADDRESS) as http:
            while True:
                if self.server.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.read_log()[-3000:]}")
                try:
                    async with http.get(f"{self.url}/health") as answer:
                        if answer.status == 200:
                            break
                except (aiohttp.ClientError, OSError):
                    pass
                if now() > deadline:
                    raise RuntimeError("server did not answer /health within 20 s")
                await asyncio.sleep(0.1)
        self.nofile = read_nofile_limits(self.server.pid)
        if self.args.adhoc:
            return
        key_deadline = now() + 5.0
        while self.leader_key is None:
            for line in self.read_log().splitlines():
                if "leader key" in line:
                    self.leader_key = line.rsplit("leader key", 1)[1].strip()
            if self.leader_key is None:
                if now() > key_deadline:
                    # The log's wording is not an interface: play in a session of our own.
                    self.notes.append("no band leader key in the server log: --adhoc used")
                    self.args.adhoc = True
                    return
                await asyncio.sleep(0.05)

    async def start_attacker(self) -> None:
        args = self.args
        command = [
            sys.executable,
            str(SELF),
            "--attacker-child",
            "--port",
            str(self.port),
            "--session-id",
            self.session_id,
            "--attack",
            str(args.attack),
            *("--flood-sockets", str(args.flood_sockets)),
            *("--flood-max-frames", str(args.flood_max_frames)),
            *("--slow-conns", str(args.slow_conns)),
            *("--slow-drip", str(args.slow_drip)),
            *("--slow-max-opens", str(args.slow_max_opens)),
            *("--churners", str(args.churners)),
            *("--churn-rate", str(args.churn_rate)),
            *("--churn-max", str(args.churn_max)),
            *("--creators", str(args.creators)),
            *("--create-rate", str(args.create_rate)),
            *("--create-max", str(args.create_max)),
            *("--attacker-nice", str(args.attacker_nice)),
        ]
        self.attacker = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self.attacker_pid = self.attacker.pid
        assert self.attacker.stdout is not None
        async with asyncio.timeout(20.0):
            while True:
                line = await self.attacker.stdout.readline()
                if not line:
                    raise RuntimeError("the attacker process exited before starting")
                if line.strip() == b"STARTED":
                    return

    async def finish_attacker(self) -> None:
        """Wait for the attacker to end on its own (it is bounded), killing it if late."""
        assert self.attacker is not None and self.attacker.stdout is not None
        try:
            async with asyncio.timeout(self.args.attack + 15.0):
                while True:
                    line = await self.attacker.stdout.readline()
                    if not line:
                        break
                    if line.startswith(b"RESULT "):
                        self.attack_result = json.loads(line[7:])
                await self.attacker.wait()
        except TimeoutError:
            self.attacker_notes.append("the attacker overran its time and was killed")
            self.kill_attacker()
            await self.attacker.wait()
        if not self.attack_result:
            self.attacker_notes.append(
                f"no result from the attacker (exit {self.attacker.returncode})"
            )

    def kill_attacker(self) -> None:
        if self.attacker is not None and self.attacker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.attacker.kill()

    def stop_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=5)

    def cleanup(self) -> None:
        """Kill what is left (synchronously: runs on error and Ctrl-C too)."""
        if self.attacker_pid is not None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.attacker_pid, signal.SIGKILL)
        self.stop_server()
        self.log_file.close()
        if not self.args.keep_log:
            with contextlib.suppress(OSError):
                os.unlink(self.log_file.name)

    # - the band -

    async def _member(self, name: str, address: str, join: dict[str, Any]) -> Member:
        http = _local_session(address)
        client = socketio.AsyncClient(
            logger=self.client_log,
            engineio_logger=self.client_log,
            reconnection=True,
            reconnection_delay=0.2,
            reconnection_delay_max=1.0,
            handle_sigint=False,
            http_session=http,
        )
        member = Member(name, address, client, http, join)

        def on_tick(_data: Any) -> None:
            member.ticks.append(now())

        def on_error(data: Any) -> None:
            code = data.get("code") if isinstance(data, dict) else None
            member.errors[str(code)] += 1

        def on_disconnect(*_: Any) -> None:
            if not self.stopping:
                member.dropped_at.append(now())

        async def on_connect() -> None:
            if member.joined_once:  # a reconnect: take the place again
                client.start_background_task(self._rejoin, member)

        client.on("scroll_tick", on_tick)
        client.on("error", on_error)
        client.on("disconnect", on_disconnect)
        client.on("connect", on_connect)
        await client.connect(self.url, transports=["websocket"], wait_timeout=10)
        ack = await client.call("join_session", join, timeout=10)
        if _ack_code(ack) != "ok":
            raise RuntimeError(f"{name} could not join: {ack}")
        member.joined_once = True
        return member

    async def _rejoin(self, member: Member) -> None:
        try:
            ack = await member.client.call("join_session", member.join, timeout=ACK_TIMEOUT_S)
            code = _ack_code(ack)
        except (socketio.exceptions.SocketIOError, OSError) as exc:
            code = type(exc).__name__
        if code == "ok":
            member.rejoins += 1
        else:
            member.rejoin_failures[code] += 1

    async def start_band(self) -> None:
        leader_id = client_id()
        if self.args.adhoc:
            creator = await self._member(
                "leader",
                LEADER_ADDRESS,
                {"sessionId": "bench-warmup", "displayName": "Leader", "clientId": leader_id},
            )
            ack = await creator.client.call(
                "create_session", {"displayName": "Leader", "clientId": leader_id}, timeout=10
            )
            if _ack_code(ack) != "ok":
                raise RuntimeError(f"create_session refused: {ack}")
            self.session_id = ack["sessionId"]
            self.leader_key = ack["leaderKey"]
            await creator.client.disconnect()
            await creator.http.close()
        join = {
            "sessionId": self.session_id,
            "displayName": "Leader",
            "role": "leader",
            "leaderKey": self.leader_key,
            "clientId": leader_id,
            "capabilities": ["timeline"],
        }
        self.members.append(await self._member("leader", LEADER_ADDRESS, join))
        for index, address in enumerate(FOLLOWER_ADDRESSES, 1):
            follow = {
                "sessionId": self.session_id,
                "displayName": f"Player {index}",
                "clientId": client_id(),
            }
            self.members.append(await self._member(f"follower {index}", address, follow))
        ack = await self.members[0].client.call("play", {"sessionId": self.session_id}, timeout=10)
        if _ack_code(ack) != "ok":
            raise RuntimeError(f"play refused: {ack}")

    async def stop_band(self) -> None:
        """Disconnect the band (and stop its reconnecting), at most two seconds each."""
        self.stopping = True

        async def stop(member: Member) -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await member.client.shutdown()
            with contextlib.suppress(Exception):
                await member.http.close()

        await asyncio.gather(*(stop(member) for member in self.members))

    # - the measuring loops (run for the whole run, cancelled at its end) -

    async def tempo_loop(self) -> None:
        leader = self.members[0].client
        next_at = now()
        for index in itertools.count():
            sent = now()
            payload = {"sessionId": self.session_id, "tempo": TEMPOS[index % 2]}
            try:
                ack = await leader.call("set_tempo", payload, timeout=ACK_TIMEOUT_S)
                self.acks.append((sent, (now() - sent) * 1000.0, _ack_code(ack)))
            except socketio.exceptions.TimeoutError:
                self.acks.append((sent, None, "timeout"))
            except (socketio.exceptions.SocketIOError, OSError) as exc:
                self.acks.append((sent, None, type(exc).__name__))
                await asyncio.sleep(0.1)  # disconnected: the client reconnects
            next_at = max(next_at + TEMPO_INTERVAL_S, now())
            await asyncio.sleep(next_at - now())

    async def health_loop(self) -> None:
        async with _local_session(HEALTH_ADDRESS) as http:
            next_at = now()
            while True:
                sent = now()
                try:
                    async with (
                        asyncio.timeout(5.0),
                        http.get(f"{self.url}/health") as answer,
                    ):
                        await answer.read()
                        code = "ok" if answer.status == 200 else f"http {answer.status}"
                    self.health.append((sent, (now() - sent) * 1000.0, code))
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.health.append((sent, None, _error_code(exc)))
                next_at = max(next_at + HEALTH_INTERVAL_S, now())
                await asyncio.sleep(next_at - now())

    async def newcomer_loop(self) -> None:
        """A phone that arrives: connects, joins the band's session, leaves (not a member)."""
        ws_url = self.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        counts: Counter[str] = Counter()
        async with _local_session(NEWCOMER_ADDRESS) as http:
            next_at = now()
            while True:
                sent = now()
                sio: RawSio | None = None
                try:
                    async with asyncio.timeout(5.0):
                        sio = await RawSio.open(http, ws_url, counts)
                        ack = await sio.call(
                            "join_session",
                            {"sessionId": self.session_id, "displayName": "Newcomer"},
                        )
                    self.newcomer.append((sent, (now() - sent) * 1000.0, _ack_code(ack)))
                except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
                    self.newcomer.append((sent, None, _error_code(exc)))
                finally:
                    if sio is not None:
                        with contextlib.suppress(Exception):
                            await sio.call("leave_session", {"sessionId": self.session_id}, 1.0)
                        await sio.close()
                next_at = max(next_at + NEWCOMER_INTERVAL_S, now())
                await asyncio.sleep(next_at - now())

    async def sample_loop(self) -> None:
        assert self.server is not None
        proc = psutil.Process(self.server.pid)
        while True:
            try:
                times = proc.cpu_times()
                cpu: float | None = times.user + times.system
                fds: int | None = proc.num_fds()
            except psutil.Error:
                cpu = fds = None
            self.samples.append((now(), read_rss_kb(proc.pid), fds, cpu))
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    async def own_lag_loop(self) -> None:
        """How late this process's loop wakes up from a 20 ms sleep."""
        while True:
            before = now()
            await asyncio.sleep(0.02)
            self.own_lag.append((before, (now() - before - 0.02) * 1000.0))

    # - the run -

    def mark(self, name: str) -> None:
        self.marks[name] = now()
        self.log_marks[name] = self.log_size()

    async def run(self) -> dict[str, Any]:
        args = self.args
        self.start_server()
        await self.wait_ready()
        await self.start_band()
        loops = [
            asyncio.create_task(job)
            for job in (
                self.tempo_loop(),
                self.health_loop(),
                self.newcomer_loop(),
                self.sample_loop(),
                self.own_lag_loop(),
            )
        ]
        try:
            await asyncio.sleep(args.warmup)  # the first ticks and the clients settle
            self.mark("quiet")
            await asyncio.sleep(args.quiet)
            self.mark("attack")
            await self.start_attacker()
            self.mark("attack")  # the attack begins once the attacker's process runs
            await self.finish_attacker()
            self.mark("after")
            await asyncio.sleep(args.after)
            self.mark("settle")
            await asyncio.sleep(args.settle)
            self.mark("end")
        finally:
            self.kill_attacker()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.stop_band()
            if self.attacker is not None:  # reap it while the loop that watches it runs
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await self.attacker.wait()
        return self.figures()

    # - figures -

    def _window(self, phase: str) -> tuple[float, float]:
        following = {"quiet": "attack", "attack": "after", "after": "settle"}[phase]
        return self.marks[phase], self.marks[following]

    def phase(self, name: str) -> PhaseFigures:
        lo, hi = self._window(name)
        figures = PhaseFigures(seconds=round(hi - lo, 2))
        acks = [a for a in self.acks if lo <= a[0] < hi]
        rtts = [rtt for _, rtt, code in acks if rtt is not None]
        figures.acks = len(rtts)
        figures.acks_lost = sum(rtt is None for _, rtt, _ in acks)
        figures.ack_errors = dict(Counter(code for _, _, code in acks if code != "ok"))
        figures.ack_ms = {
            "p50": _rounded(percentile(rtts, 0.5)),
            "p99": _rounded(percentile(rtts, 0.99)),
            "max": _rounded(max(rtts) if rtts else None),
        }
        slowest = sorted(((rtt, sent) for sent, rtt, _ in acks if rtt is not None), reverse=True)
        figures.worst_acks = [(round(sent - lo, 2), round(rtt, 1)) for rtt, sent in slowest[:3]]
        gaps: list[float] = []
        timed_gaps: list[tuple[float, float]] = []
        ticks = 0
        for member in self.members[1:]:
            arrivals = member.ticks
            # A gap belongs to the phase its closing tick arrives in ...
            for previous, current in itertools.pairwise(arrivals):
                if lo <= current < hi:
                    gaps.append((current - previous) * 1000.0)
                    timed_gaps.append((gaps[-1], previous))
            ticks += sum(lo <= t < hi for t in arrivals)
            # ... and a silence still going on when the phase ends counts in it too (a
            # member that hears nothing more would otherwise show no gap at all).
            last = max((t for t in arrivals if t < hi), default=lo)
            if hi - last > 1.5 * TICK_INTERVAL_S:
                gaps.append((hi - last) * 1000.0)
                timed_gaps.append((gaps[-1], last))
        figures.worst_gaps = [
            (round(start - lo, 2), round(ms, 1)) for ms, start in sorted(timed_gaps)[::-1][:3]
        ]
        figures.band_disconnects = sum(
            lo <= t < hi for member in self.members for t in member.dropped_at
        )
        figures.ticks = ticks
        figures.ticks_expected = round((hi - lo) * 10.0) * len(self.members[1:])
        figures.tick_gap_ms = {
            "p50": _rounded(percentile(gaps, 0.5)),
            "p99": _rounded(percentile(gaps, 0.99)),
            "max": _rounded(max(gaps) if gaps else None),
        }
        health = [h for h in self.health if lo <= h[0] < hi]
        latencies = [ms for _, ms, _ in health if ms is not None]
        figures.health = {
            "probes": len(health),
            "answered": sum(code == "ok" for _, _, code in health),
            "failures": dict(Counter(code for _, _, code in health if code != "ok")),
            "p50_ms": _rounded(percentile(latencies, 0.5)),
            "p99_ms": _rounded(percentile(latencies, 0.99)),
            "max_ms": _rounded(max(latencies) if latencies else None),
        }
        joins = [j for j in self.newcomer if lo <= j[0] < hi]
        join_ms = [ms for _, ms, code in joins if ms is not None and code == "ok"]
        figures.newcomer = {
            "tries": len(joins),
            "joined": len(join_ms),
            "refusals": dict(Counter(code for _, _, code in joins if code != "ok")),
            "p50_ms": _rounded(percentile(join_ms, 0.5)),
            "max_ms": _rounded(max(join_ms) if join_ms else None),
        }
        samples = [s for s in self.samples if lo <= s[0] < hi]
        rss = [s[1] for s in samples if s[1] is not None]
        fds = [s[2] for s in samples if s[2] is not None]
        cpu = [(s[0], s[3]) for s in samples if s[3] is not None]
        figures.server_rss_mb_max = _rounded(max(rss) / 1024 if rss else None, 1)
        figures.server_fds_max = max(fds) if fds else None
        lags = [ms for at, ms in self.own_lag if lo <= at < hi]
        figures.bench_loop_lag_ms_max = _rounded(max(lags) if lags else None, 1)
        if len(cpu) >= 2 and cpu[-1][0] > cpu[0][0]:
            figures.server_cpu_percent = round(
                100.0 * (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]), 1
            )
        return figures

    def _sample_before(self, at: float) -> tuple[float, int | None, int | None, float | None]:
        before = [s for s in self.samples if s[0] <= at and s[1] is not None]
        return before[-1] if before else (at, None, None, None)

    def figures(self) -> dict[str, Any]:
        phases = {name: self.phase(name) for name in PHASES}
        before = self._sample_before(self.marks["attack"])
        after = self._sample_before(self.marks["end"])
        rss_before = before[1] / 1024 if before[1] else None
        rss_after = after[1] / 1024 if after[1] else None
        log_counts = self.count_in_log(
            self.log_marks["attack"],
            self.log_marks["end"],
            ("Too many open files", "Traceback", " WARNING ", " ERROR "),
        )
        band = {
            m.name: {
                "address": m.address,
                "disconnects": len(m.dropped_at),
                "rejoins": m.rejoins,
                "rejoin_failures": dict(m.rejoin_failures),
                "errors": dict(m.errors),
                "ticks": len(m.ticks),
            }
            for m in self.members
        }
        result: dict[str, Any] = {
            "benchmark": "hostile_bench",
            "session": "adhoc" if self.args.adhoc else "console band session",
            "phases": {name: asdict(figures) for name, figures in phases.items()},
            "rss_mb": {
                "before": _rounded(rss_before, 1),
                "during_max": phases["attack"].server_rss_mb_max,
                "after": _rounded(rss_after, 1),
                "after_vs_before": _rounded(
                    rss_after / rss_before - 1.0 if rss_before and rss_after else None, 3
                ),
            },
            "server_fds": {
                "before": before[2],
                "during_max": phases["attack"].server_fds_max,
                "after": after[2],
                "nofile_limit_at_start": list(self.nofile) if self.nofile else None,
            },
            "server_log": {
                "bytes_during_attack_and_after": self.log_marks["end"] - self.log_marks["attack"],
                "bytes_total": self.log_marks["end"],
                **{f"count {k.strip()!r}": v for k, v in log_counts.items()},
            },
            "band": band,
            "attacker": self.attack_result,
            "attacker_notes": self.attacker_notes,
            "notes": self.notes,
            "server_tree": self.tree,
            "settings": {
                k: v
                for k, v in vars(self.args).items()
                if k not in ("attacker_child", "out", "port", "session_id")
            },
        }
        result["verdict"] = verdict(result)
        result["machine"] = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_at_end": os.getloadavg(),
            "note": "shared 2-core machine: other engineers' work ran at the same time",
        }
        result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return result


def verdict(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 11's targets, each as ``{check, value, limit, pass}``."""
    quiet = result["phases"]["quiet"]
    attack = result["phases"]["attack"]
    after = result["phases"]["after"]
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, limit: float | None) -> None:
        ok = value is not None and limit is not None and value <= limit
        checks.append({"check": name, "value": value, "limit": limit, "pass": ok})

    def times(value: float | None, factor: float) -> float | None:
        return None if value is None else round(value * factor, 2)

    check("attack ack p50 <= 2x quiet", attack["ack_ms"]["p50"], times(quiet["ack_ms"]["p50"], 2))
    check("attack ack p99 <= 2x quiet", attack["ack_ms"]["p99"], times(quiet["ack_ms"]["p99"], 2))
    check("attack ack p99 <= 20 ms", attack["ack_ms"]["p99"], TARGET_ACK_P99_MS)
    check(
        "attack longest tick gap <= 2x quiet",
        attack["tick_gap_ms"]["max"],
        times(quiet["tick_gap_ms"]["max"], TARGET_RATIO),
    )
    for name, phase in (("quiet", quiet), ("attack", attack), ("after", after)):
        check(f"{name} longest tick gap <= 250 ms", phase["tick_gap_ms"]["max"], TARGET_GAP_MS)
    rss = result["rss_mb"]
    check("RSS after <= before + 10 %", rss["after"], times(rss["before"], 1 + TARGET_RSS_GROWTH))
    lost = sum(result["phases"][p]["acks_lost"] for p in PHASES)
    check("set_tempo acks lost (all phases)", lost, 0)
    dropped = sum(m["disconnects"] for m in result["band"].values())
    check("band members dropped", dropped, 0)
    health = attack["health"]
    check("attack /health probes unanswered", health["probes"] - health["answered"], 0)
    return checks


# -- output -----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def _counter(values: dict[str, int] | None) -> str:
    if not values:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


def report(result: dict[str, Any]) -> None:
    print()
    print(
        f"{'phase':<7} {'s':>5} {'acks':>5} {'lost':>4} {'ack p50':>8} {'ack p99':>8}"
        f" {'ack max':>8} {'ticks':>10} {'gap p99':>8} {'gap max':>8} {'health p50/max':>15}"
        f" {'h.fail':>6} {'joins':>6} {'cpu%':>6} {'RSS MB':>7} {'fds':>5}"
    )
    for name in PHASES:
        p = result["phases"][name]
        h = p["health"]
        n = p["newcomer"]
        print(
            f"{name:<7} {p['seconds']:>5.1f} {p['acks']:>5} {p['acks_lost']:>4}"
            f" {_fmt(p['ack_ms']['p50']):>8} {_fmt(p['ack_ms']['p99']):>8}"
            f" {_fmt(p['ack_ms']['max']):>8} {p['ticks']:>5}/{p['ticks_expected']:<4}"
            f" {_fmt(p['tick_gap_ms']['p99']):>8} {_fmt(p['tick_gap_ms']['max']):>8}"
            f" {_fmt(h['p50_ms']) + '/' + _fmt(h['max_ms']):>15}"
            f" {h['probes'] - h['answered']:>6} {n['joined']:>3}/{n['tries']:<2}"
            f" {_fmt(p['server_cpu_percent']):>6} {_fmt(p['server_rss_mb_max']):>7}"
            f" {_fmt(p['server_fds_max']):>5}"
        )
    print("(ms; ticks: received/expected by the 3 legacy followers; joins: a newcomer's)")
    for name in PHASES:
        p = result["phases"][name]
        extra = []
        if p["ack_errors"]:
            extra.append(f"ack errors: {_counter(p['ack_errors'])}")
        if p["health"]["failures"]:
            extra.append(f"/health failures: {_counter(p['health']['failures'])}")
        if p["newcomer"]["refusals"]:
            extra.append(f"newcomer refused: {_counter(p['newcomer']['refusals'])}")
        if p["bench_loop_lag_ms_max"] is not None and p["bench_loop_lag_ms_max"] > 20:
            extra.append(f"the benchmark's own loop lagged up to {p['bench_loop_lag_ms_max']} ms")
        if p["band_disconnects"]:
            extra.append(f"band members dropped: {p['band_disconnects']}")
        if name == "attack":
            extra.append(
                "slowest acks (s in, ms): "
                + ", ".join(f"{at:g}: {ms:g}" for at, ms in p["worst_acks"])
                + "; longest gaps from: "
                + ", ".join(f"{at:g}: {ms:g}" for at, ms in p["worst_gaps"])
            )
        if extra:
            print(f"  {name}: " + "; ".join(extra))
    rss = result["rss_mb"]
    fds = result["server_fds"]
    growth = rss["after_vs_before"]
    print(
        f"server RSS MB: before {_fmt(rss['before'])}, during (max) {_fmt(rss['during_max'])},"
        f" after {_fmt(rss['after'])}" + (f" ({growth * 100:+.1f} %)" if growth is not None else "")
    )
    print(
        f"server descriptors: before {_fmt(fds['before'])}, during (max)"
        f" {_fmt(fds['during_max'])}, after {_fmt(fds['after'])};"
        f" open-files limit (soft, hard) {fds['nofile_limit_at_start']}"
    )
    log = result["server_log"]
    print(
        f"server log during attack and after: {log['bytes_during_attack_and_after']} bytes; "
        + ", ".join(f"{k[6:]} x{v}" for k, v in log.items() if k.startswith("count"))
    )
    for name, member in result["band"].items():
        if member["disconnects"] or member["rejoin_failures"] or member["errors"]:
            print(
                f"band {name} ({member['address']}): dropped {member['disconnects']},"
                f" rejoined {member['rejoins']}, rejoin failures"
                f" {_counter(member['rejoin_failures'])}, errors {_counter(member['errors'])}"
            )
    attack = result["attacker"]
    if attack:
        print(
            f"attacker ({ATTACKER_ADDRESS}, {attack['seconds']} s, its CPU"
            f" {attack.get('cpu_percent')} % at nice {attack.get('nice')}):"
        )
        f = attack["flood"]
        print(
            f"  flood: {f['sockets']} websockets, {f['connects']} connects"
            f" (refused: {_counter(f['connect_failures'])}), {f['frames_sent']} frames"
            f" ({f['frames_per_s']}/s), cut off {f['cut_offs']}"
            f" ({_counter(f['cut_off_causes'])}); got: {_counter(f['received'])}"
        )
        print(
            "         got in at (s) "
            + " ".join(f"{t:g}" for t in f["connected_at"][:12])
            + ("..." if len(f["connected_at"]) > 12 else "")
            + "; cut off at "
            + " ".join(f"{t:g}" for t in f["cut_off_at"][:12])
            + ("..." if len(f["cut_off_at"]) > 12 else "")
        )
        s = attack["slow"]
        print(
            f"  slow: {s['target']} slots, {s['opened']} opened"
            f" (failed: {_counter(s['connect_failures'])}),"
            f" max held {s['max_held']}, held at end {s['held_at_end']},"
            f" closed by server {s['closed_by_server']}, reset {s['reset_by_server']}"
            f" (held p50 {_fmt(s['held_s_before_close']['p50'])} s,"
            f" max {_fmt(s['held_s_before_close']['max'])} s),"
            f" answered {_counter(s['answered'])}"
        )
        for key, label in (("churn", "join churn"), ("create", "sessions")):
            c = attack[key]
            print(
                f"  {label}: {c['clients']} clients, {c['connects']} connects"
                f" (failed: {_counter(c['connect_failures'])}), dropped {c['disconnects']},"
                f" asked {_counter(c['requests'])}; answers {_counter(c['answers'])};"
                f" ack timeouts {c['ack_timeouts']}; got {_counter(c['received'])}"
            )
    for note in result["attacker_notes"]:
        print(f"attacker: {note}")
    for note in result["notes"]:
        print(f"note: {note}")
    print("verdict:")
    for item in result["verdict"]:
        mark = "PASS" if item["pass"] else "FAIL"
        print(f"  {mark}  {item['check']}: {_fmt(item['value'])} (limit {_fmt(item['limit'])})")
    failed = sum(not item["pass"] for item in result["verdict"])
    total = len(result["verdict"])
    print("overall: PASS" if not failed else f"overall: FAIL ({failed} of {total} checks)")


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    phases = parser.add_argument_group("phases (seconds)")
    phases.add_argument("--quick", action="store_true", help="short phases: a ~30 s smoke run")
    phases.add_argument("--warmup", type=float, default=1.0)
    phases.add_argument("--quiet", type=float, default=10.0)
    phases.add_argument("--attack", type=float, default=15.0)
    phases.add_argument("--after", type=float, default=10.0)
    phases.add_argument("--settle", type=float, default=3.0, help="more wait before RSS 'after'")
    phases.add_argument("--max-seconds", type=float, default=110.0, help="hard stop of the run")
    attack = parser.add_argument_group("the attacker (one address, all at once)")
    attack.add_argument(
        "--attacker-nice",
        type=int,
        default=0,
        help="niceness of the attacker's process (default 0: it competes with the server for"
        " CPU as an equal, harder than a phone with a CPU of its own; 10 lets it yield)",
    )
    attack.add_argument("--flood-sockets", type=int, default=4)
    attack.add_argument("--flood-max-frames", type=int, default=5_000_000, help="in all")
    attack.add_argument("--slow-conns", type=int, default=1050)
    attack.add_argument("--slow-drip", type=float, default=5.0, help="s between header lines")
    attack.add_argument(
        "--slow-max-opens", type=int, default=5000, help="slow connections opened, in all"
    )
    attack.add_argument("--churners", type=int, default=4)
    attack.add_argument("--churn-rate", type=float, default=12.0, help="join+leave/s, each")
    attack.add_argument("--churn-max", type=int, default=5000, help="cycles per churner")
    attack.add_argument("--creators", type=int, default=16)
    attack.add_argument("--create-rate", type=float, default=25.0, help="requests/s, each")
    attack.add_argument("--create-max", type=int, default=5000, help="requests per creator")
    parser.add_argument(
        "--adhoc",
        action="store_true",
        help="the band plays in a session of its own (create_session), not the console's",
    )
    parser.add_argument(
        "--server-root",
        metavar="DIR",
        help="run the server from this source tree (default: this checkout)",
    )
    parser.add_argument("--keep-log", action="store_true", help="keep the server's log file")
    parser.add_argument("--out", help="JSON path (default bench/results/hostile_bench.json)")
    # the attacker's own process (started by the benchmark, not by hand)
    parser.add_argument("--attacker-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--session-id", default=BAND_SESSION, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.server_root and not (Path(args.server_root) / "bandsync_desktop").is_dir():
        parser.error(f"--server-root {args.server_root}: no bandsync_desktop package there")
    if args.quick and not args.attacker_child:
        args.quiet, args.attack, args.after, args.settle = 6.0, 10.0, 6.0, 2.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.attacker_child:
        return attacker_main(args)
    raise_own_fd_limit()
    bench = Bench(args)
    budget = args.max_seconds

    async def bounded() -> dict[str, Any]:
        # SIGTERM stops the run as Ctrl-C does (asyncio.run cancels on SIGINT): the run's
        # own cleanup stops the attacker, the band and the server.
        main_task = asyncio.current_task()
        assert main_task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
        async with asyncio.timeout(budget):
            return await bench.run()

    print(
        f"hostile bench: server {bench.url} (open files soft {SERVER_NOFILE_SOFT}), band"
        f" {LEADER_ADDRESS}-{FOLLOWER_ADDRESSES[-1]}, attacker {ATTACKER_ADDRESS};"
        f" quiet {args.quiet:g} s, attack {args.attack:g} s, after {args.after:g}"
        f" + {args.settle:g} s; server code {bench.tree}",
        flush=True,
    )
    try:
        result = asyncio.run(bounded())
    except TimeoutError:
        print(f"run exceeded --max-seconds {budget:g}: stopped", file=sys.stderr)
        return 3
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
    report(result)
    out = Path(args.out) if args.out else RESULTS / "hostile_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
