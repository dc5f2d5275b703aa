"""Sessions the core tests start from: a band with its members joined, on a clock the test
chooses (times are plain numbers)."""

from __future__ import annotations

from bandsync_desktop.core.session import Rules, Session


def joined(s: Session, now: float, client_id: str, name: str, rules: Rules) -> Session:
    """``s`` with the member ``client_id`` (display name ``name``) joined at ``now``."""
    s.join(
        now,
        f"sock-{client_id}",
        client_id=client_id,
        display_name=name,
        role=None,
        key=None,
        device=None,
        rules=rules,
    )
    return s


def console_band(now: float, rules: Rules, tempo: float = 120.0, name: str = "B") -> Session:
    """The console's band session at ``tempo`` in 4/4 with one follower, ``b``."""
    s = Session.create("band", now, console_hosted=True, tempo_bpm=tempo)
    return joined(s, now, "b", name, rules)
