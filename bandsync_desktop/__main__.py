"""``python -m bandsync_desktop`` / ``bandsync-desktop``: the console, or ``--headless``.

Headless mode never imports PySide6; the console is imported only when asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--headless" in args:
        args.remove("--headless")
        from .server.cli import main as headless_main

        return headless_main(args)
    try:
        from .app import main as console_main
    except ImportError as exc:
        print(
            f"The console is not available ({exc}). Run with --headless for the server alone.",
            file=sys.stderr,
        )
        return 2
    return console_main(args)


if __name__ == "__main__":
    sys.exit(main())
