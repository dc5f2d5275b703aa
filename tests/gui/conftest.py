"""The qasync loop for GUI tests, and a console with a real server on loopback.

pytest-qt has no qasync support of its own. Tests stay synchronous: the ``qloop`` fixture
builds ``QEventLoop(qapp, already_running=True)`` and ``run`` drives a coroutine on it with
``ensure_future`` + ``qtbot.waitUntil(fut.done)``, so Qt events and asyncio callbacks are
processed together while the test waits.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QEventLoop
from pytestqt.qtbot import QtBot

from bandsync_desktop.config import Settings
from bandsync_desktop.core.clock import Clock, ManualClock
from bandsync_desktop.gui.bridge import Bridge
from bandsync_desktop.gui.main_window import MainWindow
from bandsync_desktop.gui.setlist import SetLibrary
from bandsync_desktop.gui.theme import STYLESHEET
from bandsync_desktop.gui.user_settings import UserSettings

from ..helpers.clients import Recorder

T = TypeVar("T")
Run = Callable[..., Any]


@pytest.fixture
def qloop(qapp: Any) -> Iterator[qasync.QEventLoop]:
    """A qasync loop on the Qt event loop pytest-qt already runs."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    # The loop's executor (getaddrinfo, to_thread) runs QThreads: they are stopped here, as
    # the app's loop.close() stops them, or Qt aborts the process at exit ("QThread:
    # Destroyed while thread is still running").
    executor = qasync.QThreadExecutor(2)
    loop.set_default_executor(executor)
    try:
        yield loop
    finally:
        executor.shutdown(wait=True)
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        _settle(qapp, loop, leftovers)
        # already_running=True marked this loop as the thread's running loop and installed
        # its async-generator hooks; undo both, or every later asyncio test in the session
        # finds "another loop is running".
        asyncio.events._set_running_loop(None)
        loop._after_run_forever()
        asyncio.set_event_loop(None)


def _settle(qapp: Any, loop: qasync.QEventLoop, cancelled: list[asyncio.Task[Any]]) -> None:
    """Let the cancelled tasks and open async generators finish on this loop, then collect
    the test's garbage here, on the Qt thread. Left to the collector, a socket or stream made
    on this loop could be finalised later in another test's thread, where closing it calls
    this loop's ``call_soon`` and Qt warns "Timers cannot be started from another thread"
    (seen once in CI, in the fuzz test's server thread)."""
    closing = asyncio.ensure_future(loop.shutdown_asyncgens(), loop=loop)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not (
        closing.done() and all(task.done() for task in cancelled)
    ):
        qapp.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    gc.collect()
    qapp.processEvents()


@pytest.fixture
def run(qloop: qasync.QEventLoop, qtbot: QtBot) -> Run:
    """``run(coroutine, timeout=10)``: drive it on the qasync loop and return its result."""

    def run_(awaitable: Awaitable[T], timeout: float = 10.0) -> T:
        future = asyncio.ensure_future(awaitable, loop=qloop)
        qtbot.waitUntil(future.done, timeout=int(timeout * 1000))
        return future.result()

    return run_


@pytest.fixture
def tap_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server_clock() -> Clock | None:
    """The server's clock: the real one unless a test module overrides this fixture."""
    return None


@pytest.fixture
def console(
    qapp: Any,
    qtbot: QtBot,
    run: Run,
    tmp_path: Path,
    tap_clock: ManualClock,
    server_clock: Clock | None,
) -> Iterator[MainWindow]:
    """The main window with its server running on a free loopback port."""
    qapp.setStyleSheet(STYLESHEET)
    settings = Settings(host="127.0.0.1", port=0)
    bridge = Bridge(settings, clock=server_clock)
    window = MainWindow(
        bridge,
        UserSettings(tmp_path / "config" / "settings.json"),
        SetLibrary(tmp_path / "sets"),
        interactive=False,
        clock=tap_clock,
    )
    # Not qtbot.addWidget: pytest-qt would close the window before this fixture stops the
    # server; here the server stops first, as it does when the leader closes the window.
    assert run(window.start_server())
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        run(bridge.stop())
        window.close()
        window.deleteLater()


@pytest.fixture
def followers(console: MainWindow, run: Run) -> Iterator[Callable[..., Recorder]]:
    """``followers(name, timeline=False, user_agent=None)``: a real socket.io client joined
    to the band (``user_agent`` is the User-Agent header it connects with)."""
    made: list[Recorder] = []
    runner = console.bridge.runner
    assert runner is not None
    url = f"http://127.0.0.1:{runner.port}"

    def make(
        name: str = "Ana",
        *,
        join: bool = True,
        timeline: bool = False,
        user_agent: str | None = None,
    ) -> Recorder:
        client = Recorder(url, name, reconnection=False)
        headers = {"User-Agent": user_agent} if user_agent is not None else {}
        run(client.connect(headers=headers))
        made.append(client)
        if join:
            payload: dict[str, Any] = {"sessionId": "band", "displayName": name}
            if timeline:
                payload["capabilities"] = ["timeline"]
            answer = run(client.call("join_session", payload))
            assert answer["ok"] is True, answer
        return client

    yield make
    for client in made:
        run(client.close())
