"""``GET /healthz`` for monitoring."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, jsonify

from recommender import store

from .db import get_db, get_feeds

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db = get_db()
        latest = store.latest_dump(db)
        body = {
            "status": "ok",
            "database": "ok",
            "papers": store.count_papers(db),
            "dumps": len(store.list_dumps(db)),
            "latest_dump": latest and {"id": latest["id"], "date": latest["dump_date"]},
            **get_feeds().status(db),
        }
        return jsonify(body)
    except sqlite3.Error as exc:
        return jsonify({"status": "error", "database": str(exc)}), 503
