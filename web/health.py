"""``GET /healthz`` for monitoring: ``ok``, ``degraded`` (serving, but something needs an
operator: an older model than the newest, or little free disk) or ``error`` (503)."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, jsonify

from recommender import store
from recommender.fsio import disk_status

from .db import get_db, get_feeds, get_settings

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
            **disk_status(get_settings().data_dir, get_settings().min_free_bytes),
        }
    except sqlite3.Error as exc:
        return jsonify({"status": "error", "database": str(exc)}), 503
    problems = [body[k] for k in ("model_problem", "disk_problem") if body.get(k)]
    if problems:
        body["status"], body["problems"] = "degraded", problems
    return jsonify(body)
