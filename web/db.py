"""The database connection of a request, and the settings of this app.

Each worker thread keeps one connection per database file and lends it to the
requests it serves. Opening and closing per request cost more than most pages
(closing the last connection to a WAL database checkpoints it), and SQLite
connections are cheap to keep. A request that ends with a transaction still
open (an exception mid-write) has it rolled back before the next one starts.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask, current_app, g
from sqlite_utils import Database

from recommender import store
from recommender.config import Settings, load_settings
from recommender.feed import FeedService


def get_settings() -> Settings:
    """The :class:`Settings` of the data dir this app serves (made once per app: the
    object only holds the data dir; everything else is read from the environment
    when asked)."""
    settings = current_app.extensions.get("paperfeed.settings")
    if settings is None:
        settings = current_app.extensions["paperfeed.settings"] = load_settings(
            current_app.config["DATA_DIR"]
        )
    return settings


def get_feeds() -> FeedService:
    """The :class:`FeedService` of this app: made by the app factory, one per app (and data
    dir), so two apps in one process never share a bundle or a memo."""
    return current_app.extensions["paperfeed.feeds"]


_local = threading.local()


def get_db() -> Database:
    if "db" not in g:
        settings = get_settings()
        path = settings.db_path
        mine: dict[Path, Database] = _local.__dict__.setdefault("connections", {})
        if path not in mine:
            if len(mine) >= 4:  # several apps in one process (tests): keep the newest few
                mine.pop(next(iter(mine))).close()
            mine[path] = store.connect(path, busy_timeout=settings.busy_timeout)
        g.db = mine[path]
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    """Return the connection at teardown: never with a transaction left open."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.rollback()


def init_app(app: Flask) -> None:
    """Migrate once at start-up, and close connections after each request."""
    settings = load_settings(app.config["DATA_DIR"])
    settings.ensure_dirs()
    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        store.migrate(db)
    app.teardown_appcontext(close_db)
