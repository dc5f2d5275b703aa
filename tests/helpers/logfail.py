"""Fail a test on an unexpected WARNING (or worse) in the log, as qutebrowser does.

A test that expects a warning says so with ``@pytest.mark.expect_log("regex", ...)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_warning_log(request: pytest.FixtureRequest) -> Iterator[None]:
    collector = _Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    allowed = [
        re.compile(pattern)
        for marker in request.node.iter_markers("expect_log")
        for pattern in marker.args
    ]
    unexpected = [
        r
        for r in collector.records
        if not any(p.search(r.getMessage()) for p in allowed)
        # asyncio's own noise about sockets closed by the other side is not ours
        and not (r.name == "asyncio" and "socket.send() raised exception" in r.getMessage())
    ]
    if unexpected:
        lines = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in unexpected)
        pytest.fail(f"unexpected log records:\n{lines}", pytrace=False)
