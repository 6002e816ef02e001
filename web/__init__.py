"""The paperfeed web app: a thin Flask client of :mod:`recommender`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from recommender.config import load_settings


class ConfigError(RuntimeError):
    """The app is misconfigured and refuses to start."""


def _secret_key(data_dir: Path, production: bool) -> str:
    key = os.environ.get("PAPERFEED_SECRET_KEY")
    if key:
        return key
    if production:
        raise ConfigError(
            "PAPERFEED_SECRET_KEY is not set: refusing to start in production without a "
            "secret key. Generate one with: "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    # Development: a random key kept in the data dir, so sessions survive restarts
    # and no key is ever shared between installations.
    path = data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory. ``test_config`` overrides settings (tests pass DATA_DIR)."""
    app = Flask(__name__)
    test_config = test_config or {}
    settings = load_settings(test_config.get("DATA_DIR"))
    production = os.environ.get("PAPERFEED_ENV", "development") == "production"
    app.config.update(
        DATA_DIR=str(settings.data_dir),
        PRODUCTION=production,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
    )
    app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings.data_dir, production)

    from . import db, feed, health

    db.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(feed.bp)
    return app
