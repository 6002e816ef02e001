"""Where paperfeed keeps its files, from the environment.

Every setting is an environment variable, documented in the README (a test
checks that). The data directory holds the database, fitted models, and the
inbox/outbox folders.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .fsio import create_exclusive

DEFAULT_DATA_DIR = "var"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
#: Shortest secret key accepted (a generated one has 64 hex digits).
MIN_SECRET_KEY = 32
KEY_COMMAND = "python -c 'import secrets; print(secrets.token_hex(32))'"


class ConfigError(RuntimeError):
    """paperfeed is misconfigured and refuses to start."""


def env_number(name: str, default: float, low: float, high: float) -> float:
    """The number in ``$name`` (``default`` when unset or empty); :class:`ConfigError`
    naming the setting and its range when it is not a number from ``low`` to ``high``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


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

    @property
    def production(self) -> bool:
        return os.environ.get("PAPERFEED_ENV", "development") == "production"

    @property
    def base_url(self) -> str:
        """Public URL of the web app, for links in emails and feeds."""
        return (os.environ.get("PAPERFEED_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")

    @property
    def mail_from(self) -> str:
        return os.environ.get("PAPERFEED_MAIL_FROM") or "paperfeed <paperfeed@localhost>"

    @property
    def unsubscribe_mailto(self) -> str | None:
        """An address added to digests' ``List-Unsubscribe`` beside the one-click URL."""
        return os.environ.get("PAPERFEED_UNSUBSCRIBE_MAILTO") or None

    @property
    def proxy_hops(self) -> int:
        """How many reverse proxies in front of the app set X-Forwarded-* (0: none, trust none)."""
        raw = os.environ.get("PAPERFEED_PROXY_HOPS") or "0"
        try:
            hops = int(raw)
        except ValueError:
            hops = -1
        if not 0 <= hops <= 5:
            raise ConfigError(f"PAPERFEED_PROXY_HOPS must be a number from 0 to 5, not {raw!r}")
        return hops

    @property
    def smtp_url(self) -> str | None:
        """``smtp://user:pass@host:587?starttls=1`` or ``smtps://...``; None: file backend."""
        return os.environ.get("PAPERFEED_SMTP_URL") or None

    @property
    def min_free_bytes(self) -> int:
        """Free space under the data dir below which ``/healthz`` says ``degraded``."""
        return int(env_number("PAPERFEED_MIN_FREE_MB", 200, 0, 10**7) * 1024 * 1024)

    @property
    def busy_timeout(self) -> float:
        """Seconds a write waits for another process's lock on the database, in all."""
        return env_number("PAPERFEED_DB_BUSY_TIMEOUT", 10.0, 0, 600)

    def secret_key(self) -> str:
        """The key that signs sessions and email links.

        ``PAPERFEED_SECRET_KEY`` if set (in production at least :data:`MIN_SECRET_KEY`
        characters, and there is no fallback). In development a random key is created
        once in ``<data dir>/secret_key`` (mode 0600), so no two installations share a
        key and sessions survive restarts. An empty or short key file is refused: it is
        never overwritten, since sessions and links signed with it may exist.
        """
        key = os.environ.get("PAPERFEED_SECRET_KEY")
        if self.production:
            if not key:
                raise ConfigError(
                    "PAPERFEED_SECRET_KEY is not set: refusing to start in production without "
                    f"a secret key. Generate one with: {KEY_COMMAND}"
                )
            if len(key) < MIN_SECRET_KEY:
                raise ConfigError(
                    f"PAPERFEED_SECRET_KEY is too short ({len(key)} characters; at least "
                    f"{MIN_SECRET_KEY}). Generate one with: {KEY_COMMAND}"
                )
        if key:
            return key
        path = self.data_dir / "secret_key"
        if not path.exists():
            _create_key_file(path)
        key = path.read_text(encoding="ascii", errors="replace").strip()
        if len(key) < MIN_SECRET_KEY:
            what = "empty" if not key else f"too short ({len(key)} characters)"
            raise ConfigError(
                f"The secret key file {path} is {what}: it was cut short or edited by hand. "
                f"Stop paperfeed, delete it (everyone is logged out and email links stop "
                f"working) and start again to make a new one, or set PAPERFEED_SECRET_KEY."
            )
        return key

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.models_dir, self.inbox_dir, self.outbox_dir):
            path.mkdir(parents=True, exist_ok=True)


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` atomically unless a key file exists already.

    The key is written and fsynced under a temporary name, then published with
    ``os.link``, which fails if ``path`` exists: a process that starts at the same time
    never reads a half-written file (``O_EXCL`` on the final name would let it read an
    empty one), and never replaces a key another process published and is using.
    """
    create_exclusive(path, secrets.token_hex(32).encode("ascii"))  # mode 0600


def load_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings for ``data_dir``, else ``$PAPERFEED_DATA_DIR``, else ``./var``."""
    chosen = data_dir or os.environ.get("PAPERFEED_DATA_DIR") or DEFAULT_DATA_DIR
    return Settings(data_dir=Path(chosen).expanduser().resolve())
