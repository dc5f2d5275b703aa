"""Entry point of the frozen app: ``bandsync-desktop`` (console) or ``bandsync-server``.

PyInstaller runs this file as the bundle's main script. The Windows build ships the same
program twice (a windowed ``bandsync-desktop.exe`` and a console ``bandsync-server.exe``);
the executable's name picks headless mode for the second.
"""

from __future__ import annotations

import sys
from pathlib import PureWindowsPath

from bandsync_desktop.__main__ import main


def _argv() -> list[str]:
    args = sys.argv[1:]
    # PureWindowsPath splits on both "\\" and "/", so this reads any OS's argv[0].
    name = PureWindowsPath(sys.argv[0]).stem.lower()
    if name == "bandsync-server" and "--headless" not in args:
        args.insert(0, "--headless")
    return args


if __name__ == "__main__":
    sys.exit(main(_argv()))
