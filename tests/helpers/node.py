"""The page's pure modules under node: a check script reads JSON on stdin, answers on stdout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bandsync_desktop.server.web import WEB_ROOT

NODE = shutil.which("node")

#: Skips a test module where node is absent.
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _answer(args: list[str], request: Any) -> Any:
    """node with ``args``, ``request`` as JSON on stdin; the JSON it writes to stdout."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, *args],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def run_check(script: Path, request: Any) -> Any:
    """Run ``script`` (given the served web root) with ``request`` as JSON; its JSON answer."""
    return _answer([str(script), str(WEB_ROOT)], request)


#: What every module check starts with: the served module named on the command line is
#: ``mod`` (imported as the page imports it, from its source), the JSON on stdin ``request``.
_MODULE_PRELUDE = r"""
import { readFileSync } from 'node:fs';
const source = readFileSync(process.argv[1], 'utf8');
const mod = await import('data:text/javascript;base64,' + Buffer.from(source).toString('base64'));
const request = JSON.parse(readFileSync(0, 'utf8'));
"""


def run_module(module: str, body: str, request: Any) -> Any:
    """Run ``body`` under node with the page's module ``module`` (a file of the web root) as
    ``mod`` and ``request`` as ``request``; its JSON answer (written to stdout)."""
    return _answer(
        ["--input-type=module", "-e", _MODULE_PRELUDE + body, str(WEB_ROOT / module)], request
    )
