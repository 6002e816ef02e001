"""One database connection per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlite_utils import Database

from recommender import store
from recommender.config import load_settings


def get_db() -> Database:
    if "db" not in g:
        g.db = store.connect(load_settings(current_app.config["DATA_DIR"]).db_path)
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
