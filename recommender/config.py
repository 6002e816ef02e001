"""Where paperfeed keeps its files, from the environment.

Every setting is an environment variable, documented in the README (a test
checks that). The data directory holds the database, fitted models, and the
inbox/outbox folders.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .fsio import create_exclusive

if TYPE_CHECKING:
    from .sources.settings import SourceSettings

DEFAULT_DATA_DIR = "var"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
DEFAULT_MAIL_FROM = "paperfeed <paperfeed@localhost>"
#: Shortest secret key accepted (a generated one has 64 hex digits).
MIN_SECRET_KEY = 32
KEY_COMMAND = "python -c 'import secrets; print(secrets.token_hex(32))'"


class ConfigError(RuntimeError):
    """paperfeed is misconfigured and refuses to start."""


def env_number(
    name: str, default: float, low: float, high: float, environ: Mapping[str, str] | None = None
) -> float:
    """The number in ``$name`` (``default`` when unset or empty); :class:`ConfigError`
    naming the setting and its range when it is not a number from ``low`` to ``high``."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


def _default_fit_threads() -> int:
    from .blocks import default_threads

    return default_threads()


def _fit_threads(env: Mapping[str, str]) -> int:
    threads = env_number("PAPERFEED_FIT_THREADS", _default_fit_threads(), 1, 64, env)
    if threads != int(threads):
        raise ConfigError(f"PAPERFEED_FIT_THREADS must be a whole number, not {threads:g}")
    return int(threads)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "paperfeed"


def _default_sources():
    from .sources.settings import load_source_settings

    return load_source_settings({})


@dataclass(frozen=True)
class Settings:
    """Every setting, read once from the environment at start (:func:`load_settings`) and
    handed down; nothing below reads the environment again. The README's settings table
    lists them (``tests/test_settings.py`` checks each one reaches its field)."""

    data_dir: Path
    #: PAPERFEED_INBOX_DIR (None: ``<data dir>/inbox``)
    inbox_dir: Path = None  # type: ignore[assignment]
    #: PAPERFEED_CACHE_DIR: the sentence-embedding and term-count caches, for refits and evaluate
    cache_dir: Path = field(default_factory=default_cache_dir)
    #: PAPERFEED_ENV
    env: str = "development"
    #: PAPERFEED_BASE_URL, without a trailing slash
    base_url: str = DEFAULT_BASE_URL
    #: PAPERFEED_MAIL_FROM
    mail_from: str = DEFAULT_MAIL_FROM
    #: PAPERFEED_UNSUBSCRIBE_MAILTO: an address added to digests' ``List-Unsubscribe``
    unsubscribe_mailto: str | None = None
    #: PAPERFEED_SMTP_URL: ``smtp://user:pass@host:587?starttls=1`` or ``smtps://...``;
    #: None: the file backend
    smtp_url: str | None = None
    #: PAPERFEED_REMOTE_IMAGES: pages may show the sources' thumbnails, loaded by the
    #: browser from the source's image host (off: no page loads anything from a third party)
    remote_images: bool = False
    #: PAPERFEED_PROXY_HOPS: reverse proxies whose X-Forwarded-* to trust (0: none)
    proxy_hops: int = 0
    #: PAPERFEED_MIN_FREE_MB, in bytes: below it ``/healthz`` says ``degraded``
    min_free_bytes: int = 200 * 1024 * 1024
    #: PAPERFEED_DB_BUSY_TIMEOUT: seconds a write waits for another process's lock, in all
    busy_timeout: float = 5.0
    #: PAPERFEED_TEXT_MODEL (None: :func:`recommender.text.default_text_kind` chooses)
    text_model: str | None = None
    #: PAPERFEED_FIT_THREADS: threads of a refit or publish (ALS, the kNN bridge's blocks,
    #: the neighbour search's blocks); the same model whatever the count
    fit_threads: int = field(default_factory=_default_fit_threads)
    #: PAPERFEED_SECRET_KEY (see :meth:`secret_key`)
    secret_key_env: str | None = field(default=None, repr=False)
    #: the sources' settings (the fetch, arXiv and Hugging Face rows of the README)
    sources: SourceSettings = field(default_factory=_default_sources)

    def __post_init__(self) -> None:
        if self.inbox_dir is None:
            object.__setattr__(self, "inbox_dir", self.data_dir / "inbox")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "paperfeed.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def text_kind(self) -> str:
        """The text representation refits fit with (:func:`.text.default_text_kind`)."""
        from .text import default_text_kind

        return default_text_kind({"PAPERFEED_TEXT_MODEL": self.text_model or ""})

    def secret_key(self) -> str:
        """The key that signs sessions and email links.

        ``PAPERFEED_SECRET_KEY`` if set (in production at least :data:`MIN_SECRET_KEY`
        characters, and there is no fallback). In development a random key is created
        once in ``<data dir>/secret_key`` (mode 0600), so no two installations share a
        key and sessions survive restarts. An empty or short key file is refused: it is
        never overwritten, since sessions and links signed with it may exist.
        """
        key = self.secret_key_env
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


def load_settings(
    data_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Every setting, read from ``environ`` (default: the process's environment) once.

    The data dir is ``data_dir``, else ``$PAPERFEED_DATA_DIR``, else ``./var``.
    :class:`ConfigError` names a setting whose value is out of range.
    """
    from .sources.settings import load_source_settings

    env = dict(os.environ if environ is None else environ)
    chosen = data_dir or env.get("PAPERFEED_DATA_DIR") or DEFAULT_DATA_DIR
    raw_hops = env.get("PAPERFEED_PROXY_HOPS") or "0"
    try:
        hops = int(raw_hops)
    except ValueError:
        hops = -1
    if not 0 <= hops <= 5:
        raise ConfigError(f"PAPERFEED_PROXY_HOPS must be a number from 0 to 5, not {raw_hops!r}")
    inbox = env.get("PAPERFEED_INBOX_DIR")
    cache = env.get("PAPERFEED_CACHE_DIR")
    return Settings(
        data_dir=Path(chosen).expanduser().resolve(),
        inbox_dir=Path(inbox).expanduser() if inbox else None,  # type: ignore[arg-type]
        cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
        env=env.get("PAPERFEED_ENV") or "development",
        base_url=(env.get("PAPERFEED_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
        mail_from=env.get("PAPERFEED_MAIL_FROM") or DEFAULT_MAIL_FROM,
        unsubscribe_mailto=env.get("PAPERFEED_UNSUBSCRIBE_MAILTO") or None,
        smtp_url=env.get("PAPERFEED_SMTP_URL") or None,
        proxy_hops=hops,
        remote_images=(env.get("PAPERFEED_REMOTE_IMAGES") or "0").strip().lower() in ("1", "true"),
        min_free_bytes=int(env_number("PAPERFEED_MIN_FREE_MB", 200, 0, 10**7, env) * 1024 * 1024),
        busy_timeout=env_number("PAPERFEED_DB_BUSY_TIMEOUT", 5.0, 0, 600, env),
        text_model=(env.get("PAPERFEED_TEXT_MODEL") or "").strip() or None,
        fit_threads=_fit_threads(env),
        secret_key_env=env.get("PAPERFEED_SECRET_KEY") or None,
        sources=load_source_settings(env),
    )
