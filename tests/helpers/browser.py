"""How tests and benchmarks launch Debian's Chromium headless on this closed network."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium keeps trying hosts it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
