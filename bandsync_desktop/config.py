"""Settings: one frozen dataclass. Precedence: defaults < settings file < environment < CLI.

No Qt here: headless mode reads the same settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "BANDSYNC_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a server (headless or inside the console) is configured by."""

    host: str = "0.0.0.0"
    port: int = 3001
    redis_url: str | None = None
    band_session_id: str = "band"
    default_tempo: float = 120.0
    default_beats_per_bar: int = 4
    default_beat_unit: int = 4
    tick_hz: float = 10.0
    leader_grace_s: float = 10.0
    idle_expiry_s: float = 30 * 60.0
    sweep_interval_s: float = 5 * 60.0
    housekeeping_interval_s: float = 1.0
    heartbeat_interval_s: float = 10.0
    max_members: int = 64
    # Sessions one peer address may have made that still exist (0: no cap; the addresses in
    # connection_cap_exempt are not capped), and sessions in all (0: no cap). Sessions
    # outlive their connections until they idle out, so without these one phone could
    # create thousands (docs/security.md, finding 7).
    max_sessions_per_address: int = 8
    max_sessions: int = 2000
    # Places in one session that one address may hold (0: no cap; connection_cap_exempt is
    # exempt): a phone's connections must not fill the band's session.
    max_members_per_address: int = 4
    # Engine.IO connections one address may hold (0: no cap). Loopback is exempt: it is this
    # machine (the console's own page, benchmarks, a local reverse proxy).
    max_connections_per_address: int = 64
    connection_cap_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    max_payload_bytes: int = 128 * 1024
    rate_limit_per_s: float = 30.0
    rate_limit_burst: int = 60
    lead_ms: float = 200.0
    cors_origins: tuple[str, ...] = ()
    # Host names a browser may reach the server by, besides IP addresses, localhost and
    # *.local (mDNS): anything else is refused to browsers (DNS rebinding, docs/security.md).
    allowed_hosts: tuple[str, ...] = ()
    # TCP connections, guarded at accept before any HTTP parsing (server/tcpguard.py,
    # docs/security.md, finding 3). One address may hold max_tcp_per_address (0: no cap;
    # connection_cap_exempt is exempt): above the Engine.IO cap, for a phone's websocket,
    # polling and page loads. In all, max_tcp_connections (0: the open-files limit minus
    # fd_reserve, the descriptors kept for the store, logs, the page's files and Qt); past it
    # newcomers are refused and members keep theirs. A new connection must send its first
    # request's headers within http_header_timeout_s; an idle keep-alive connection is
    # closed after http_keepalive_timeout_s. Requests in progress (websockets, long-polls)
    # are never cut.
    max_tcp_per_address: int = 96
    max_tcp_connections: int = 0
    fd_reserve: int = 256
    http_header_timeout_s: float = 10.0
    http_keepalive_timeout_s: float = 5.0
    # Floods (docs/security.md, finding 4). Every frame a connection sends is counted before
    # it is decoded (server/engine.py): frame_rate_factor times the event budget above (0:
    # off), so a client within its event budget never meets it; the excess is dropped
    # unread. A connection that drops flood_cutoff_s seconds' worth of its frame budget
    # without a quiet second is closed. Membership changes (join_session, create_session,
    # leave_session, set_role) have a smaller budget of their own: each one costs every
    # member of the session a notice and a snapshot.
    frame_rate_factor: float = 3.0
    flood_cutoff_s: float = 10.0
    membership_rate_per_s: float = 2.0
    membership_burst: int = 5

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **clean)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for f in fields(self):
            if isinstance(data[f.name], tuple):
                data[f.name] = list(data[f.name])
        return data


def _coerce(name: str, raw: str) -> Any:
    field_type = {f.name: f.type for f in fields(Settings)}[name]
    text = str(field_type)
    try:
        if "tuple" in text:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}: {exc}") from exc
    return raw or None if "None" in text else raw


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overrides taken from ``BANDSYNC_*`` environment variables."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for f in fields(Settings):
        key = ENV_PREFIX + f.name.upper()
        if key in env:
            out[f.name] = _coerce(f.name, env[key])
    return out


def from_file(path: Path) -> dict[str, Any]:
    """Overrides from a JSON settings file; a missing file means none."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: settings must be a JSON object")
    known = {f.name for f in fields(Settings)}
    out = {k: v for k, v in data.items() if k in known}
    for f in fields(Settings):  # JSON has lists where the settings keep tuples
        if f.name in out and "tuple" in str(f.type) and isinstance(out[f.name], list):
            out[f.name] = tuple(out[f.name])
    return out


def load(
    cli: Mapping[str, Any] | None = None,
    *,
    settings_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings: defaults < file < environment < CLI."""
    settings = Settings()
    if settings_file is not None:
        settings = settings.with_overrides(from_file(settings_file))
    settings = settings.with_overrides(from_environment(environ))
    return settings.with_overrides(dict(cli or {}))
