"""Where paperfeed keeps its files, from the environment.

Every setting is an environment variable, documented in the README (a test
checks that). The data directory holds the database, fitted models, and the
inbox/outbox folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "var"


@dataclass(frozen=True)
class Settings:
    """Paths derived from one data directory."""

    data_dir: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "paperfeed.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def inbox_dir(self) -> Path:
        return Path(os.environ.get("PAPERFEED_INBOX_DIR") or self.data_dir / "inbox")

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.models_dir, self.inbox_dir, self.outbox_dir):
            path.mkdir(parents=True, exist_ok=True)


def load_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings for ``data_dir``, else ``$PAPERFEED_DATA_DIR``, else ``./var``."""
    chosen = data_dir or os.environ.get("PAPERFEED_DATA_DIR") or DEFAULT_DATA_DIR
    return Settings(data_dir=Path(chosen).expanduser().resolve())
