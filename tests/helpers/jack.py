"""A private JACK server (the dummy driver: no sound card) and a real MIDI receiver on it.

``JackServer`` runs ``jackd --no-realtime -S -n <unique name> -d dummy`` (``--realtime``
when asked: the MIDI clock's tests ask wherever ``realtime_allowed()``); while it runs,
``JACK_DEFAULT_SERVER`` names it, so every JACK client this process opens (rtmidi's
``API_UNIX_JACK``) lands on it and never on another session's server. The ``jack_server``
fixture starts one per test (about 0.2 s) and skips the test only if ``jackd`` is not
installed at all; a ``jackd`` that is there but does not start fails the test.

``-S`` (synchronous mode) matters on a busy machine: in jackd2's default asynchronous mode a
client the kernel is slow to schedule misses its cycle, and the MIDI sent to it in that cycle
is lost (measured: 28 of 3,000 messages on this 2-core machine under load); in synchronous
mode the server waits for it and the cycle runs late instead (0 of 3,000).

``MidiReceiver`` is an rtmidi JACK input that records every message with its receive time.
rtmidi stamps a JACK message with ``jack_get_time()`` when the receiving client's process
cycle reads it, as a delta to the previous message; the receiver adds the deltas up and
anchors the sum to ``time.monotonic()`` by the lower envelope of the instants it read them
(a message is read after its cycle's stamp, never before), so receive times are JACK's own,
on the monotonic clock the server's time is a shift of. It polls rtmidi's queue from a
thread of its own rather than taking rtmidi's callback: the callback runs Python in JACK's
process thread, which then waits for the GIL, and in synchronous mode a cycle waiting for it
stalls the whole server; a test thread that holds the GIL while closing a JACK client (rtmidi
does not release it) would then wait for JACK's 5 s client timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "JACK_DEFAULT_SERVER"


class JackServer:
    """One ``jackd`` with the dummy driver, under a name no other test session uses.

    Args:
        rate: sample rate (Hz).
        period: frames per period: JACK delivers MIDI once a period (64 @ 48 kHz: 1.33 ms).
        realtime: run with real-time scheduling, as a studio's JACK does (needs the right to:
            root, or an ``rtprio`` limit); the default runs anywhere.
    """

    def __init__(self, rate: int = 48_000, period: int = 64, *, realtime: bool = False) -> None:
        self.name = f"bandsync-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.rate = rate
        self.period = period
        self.realtime = realtime
        self.process: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.gettempdir()) / f"{self.name}.log"
        self._previous_env: str | None = None
        self._last_answer = "jack_lsp not run"

    @property
    def period_ms(self) -> float:
        return self.period / self.rate * 1000.0

    @staticmethod
    def binary() -> str | None:
        return shutil.which("jackd")

    def start(self, timeout: float = 10.0) -> JackServer:
        """Start and wait until a client can connect; name it in ``JACK_DEFAULT_SERVER``.

        Raises:
            RuntimeError: ``jackd`` exited or did not answer within ``timeout``.
        """
        binary = self.binary()
        if binary is None:
            raise RuntimeError("jackd is not installed (Debian: apt-get install jackd2)")
        command = [binary, "--realtime" if self.realtime else "--no-realtime", "-S"]
        command += ["-n", self.name, "-d", "dummy"]
        command += ["-r", str(self.rate), "-p", str(self.period)]
        # jackd tells of every tiny scheduling slip of the dummy driver on stderr: to a file.
        with self._log.open("wb") as log:  # (the child keeps its own copy of the descriptor)
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"jackd exited ({self.process.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                said = self.log()  # before stop(), which removes the log
                self.stop()
                raise RuntimeError(
                    f"jackd did not answer in {timeout} s ({self._last_answer}): {said}"
                )
            time.sleep(0.02)
        self._previous_env = os.environ.get(ENV)
        os.environ[ENV] = self.name
        return self

    def _answers(self) -> bool:
        result = subprocess.run(
            ["jack_lsp", "-s", self.name], capture_output=True, text=True, timeout=5
        )
        self._last_answer = f"jack_lsp exit {result.returncode}: {result.stderr.strip()[-500:]}"
        return result.returncode == 0 and "system:" in result.stdout

    def ports(self, *options: str) -> list[str]:
        """``jack_lsp`` on this server (``-c`` adds each port's connections, indented)."""
        result = subprocess.run(
            ["jack_lsp", "-s", self.name, *options],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        )
        return result.stdout.splitlines()

    def log(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if os.environ.get(ENV) == self.name:
            if self._previous_env is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = self._previous_env
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        with contextlib.suppress(OSError):
            self._log.unlink()


def realtime_allowed() -> bool:
    """Whether this process may ask for real-time scheduling (root, or an ``rtprio`` limit),
    as ``jackd --realtime`` and its clients' process threads do."""
    import resource

    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0


@contextlib.contextmanager
def running_jack_server(**options: Any) -> Iterator[JackServer]:
    """A private dummy JACK server while the block runs; the test is skipped only if jackd
    is not installed (a jackd that does not start is an error)."""
    if JackServer.binary() is None:
        pytest.skip("jackd is not installed (Debian: apt-get install jackd2): no MIDI receiver")
    server = JackServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jack_server() -> Iterator[JackServer]:
    """A private dummy JACK server for this test (see ``running_jack_server``)."""
    with running_jack_server() as server:
        yield server


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the receiver got it.

    Attributes:
        data: the MIDI bytes.
        jack_s: JACK's receive stamp, seconds after the receiver's first message.
        read_s: ``time.monotonic()`` when the receiver read it (after the stamp).
    """

    data: tuple[int, ...]
    jack_s: float
    read_s: float


class MidiReceiver:
    """A MIDI input on the JACK server that keeps every message with its receive time.

    Args:
        client: the JACK client name (unique on the server).
    """

    def __init__(self, client: str = "receiver") -> None:
        import rtmidi

        self.client = client
        self._in: Any = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client, queue_size_limit=4096)
        self._in.ignore_types(sysex=True, timing=False, active_sense=True)
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._jack_s = 0.0
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"midi-in-{client}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            event = self._in.get_message()
            if event is None:
                time.sleep(0.0002)
                continue
            now = time.monotonic()
            message, delta = event
            with self._lock:
                self._jack_s += delta
                self._messages.append(Received(tuple(message), self._jack_s, now))

    def open_virtual(self, port: str = "in") -> str:
        """Open an unconnected input port; returns its full JACK name."""
        self._in.open_virtual_port(port)
        return f"{self.client}:{port}"

    def connect_from(self, output: str, port: str = "in") -> None:
        """Open an input port connected from the output port named ``output``.

        Raises:
            LookupError: no output port has that name.
        """
        ports = list(self._in.get_ports())
        if output not in ports:
            raise LookupError(f"no output port {output!r}; there are {ports}")
        self._in.open_port(ports.index(output), port)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def of(self, status: int) -> list[Received]:
        """The messages whose first byte is ``status``."""
        return [m for m in self.messages if m.data[0] == status]

    def received_s(self, messages: list[Received] | None = None) -> list[float]:
        """Receive times on ``time.monotonic()``'s scale (s) of ``messages`` (default all)."""
        everything = self.messages
        if not everything:
            return []
        base = min(m.read_s - m.jack_s for m in everything)
        return [base + m.jack_s for m in (everything if messages is None else messages)]

    async def wait_for(self, status: int, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Wait (bounded) until ``count`` messages ``status`` have arrived; the loop runs."""
        deadline = time.monotonic() + timeout
        while len(found := self.of(status)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages 0x{status:02X} arrived")
            await asyncio.sleep(0.005)
        return found

    def close(self) -> None:
        self._closing.set()
        self._reader.join(5)
        self._in.close_port()
        self._in.delete()


def rate_per_s(times: list[float]) -> float:
    """Messages per second over ``times`` (first to last)."""
    if len(times) < 2:
        return math.nan
    return (len(times) - 1) / (times[-1] - times[0])
