"""The paperfeed web app: a thin Flask client of :mod:`recommender`."""

from __future__ import annotations

from flask import Flask

from recommender.config import ConfigError, load_settings

__all__ = ["ConfigError", "create_app"]


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory. ``test_config`` overrides settings (tests pass DATA_DIR)."""
    app = Flask(__name__)
    test_config = test_config or {}
    settings = load_settings(test_config.get("DATA_DIR"))
    production = settings.production
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
        app.config["SECRET_KEY"] = settings.secret_key()

    from . import db, feed, health
    from .extensions import csrf

    csrf.init_app(app)
    db.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(feed.bp)
    return app
