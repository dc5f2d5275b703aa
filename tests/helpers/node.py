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


def run_check(script: Path, request: Any) -> Any:
    """Run ``script`` (given the served web root) with ``request`` as JSON; its JSON answer."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(script), str(WEB_ROOT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)
