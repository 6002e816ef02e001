"""One database connection per request, closed at teardown; the settings of this app."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlite_utils import Database

from recommender import store
from recommender.config import Settings, load_settings


def get_settings() -> Settings:
    """The :class:`Settings` of the data dir this app serves."""
    if "settings" not in g:
        g.settings = load_settings(current_app.config["DATA_DIR"])
    return g.settings


def get_db() -> Database:
    if "db" not in g:
        g.db = store.connect(get_settings().db_path)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    """Migrate once at start-up, and close connections after each request."""
    settings = load_settings(app.config["DATA_DIR"])
    settings.ensure_dirs()
    with store.connect(settings.db_path) as db:
        store.migrate(db)
    app.teardown_appcontext(close_db)
