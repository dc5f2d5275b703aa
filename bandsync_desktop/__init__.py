"""BandSync Desktop: keep a band on the same beat.

The package is layered one way: ``gui`` -> ``server`` -> ``core``. ``core`` is pure Python
(rules, timeline math, validation), ``server`` is asyncio/aiohttp/python-socketio and never
imports Qt, ``gui`` is the PySide6 leader console.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("bandsync-desktop")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
