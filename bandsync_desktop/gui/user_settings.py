"""Per-user console settings: a JSON file in the user's config directory (platformdirs).

The file holds the server settings the leader chose (host, port, Redis URL, default tempo and
meter) under the same names as ``config.Settings``, so ``config.load(settings_file=...)``
reads them; the console's own entries (window geometry) sit beside them and are ignored there.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "BandSync Desktop"
SERVER_KEYS = (
    "host",
    "port",
    "redis_url",
    "default_tempo",
    "default_beats_per_bar",
    "default_beat_unit",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """Where this user's files live: settings file and set-list directory."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def default(cls) -> Profile:
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        )

    @classmethod
    def under(cls, root: Path) -> Profile:
        """Everything under one directory (tests, screenshots, a portable install)."""
        return cls(root / "config", root / "data")

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def sets_dir(self) -> Path:
        return self.data_dir / "sets"


class UserSettings:
    """Reads and writes the settings file, keeping entries it does not know."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def load(self) -> UserSettings:
        """Read the file; a missing file is empty, a broken one raises ``ValueError``."""
        if not self.path.exists():
            self.data = {}
            return self
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read settings file {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: settings must be a JSON object")
        self.data = data
        return self

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def update(self, **values: Any) -> None:
        """Change entries and save at once (``None`` removes an entry)."""
        for key, value in values.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".settings-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.data, out, indent=2)
        os.replace(tmp, self.path)
