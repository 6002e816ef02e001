"""Trending (``/trending``, ``/trending.json``): the papers with most Hugging Face upvotes.

Community signal, not personal ranking: papers of the dumps dated within the
window (ending at the newest dump date), most upvoted first, with the person's
rating of each.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, g, jsonify, render_template, request

from recommender import store

from .auth import login_required
from .db import get_db
from .search import paper_result

bp = Blueprint("trending", __name__)

WINDOWS = {"today": ("Newest day", 1), "3d": ("Last 3 days", 3), "week": ("Last week", 7)}
WINDOWS["month"] = ("Last 30 days", 30)
LIMIT = 30


def trending_page(user: dict, window: str) -> dict:
    """``{"window", "windows", "since", "papers"}``; 400 for an unknown window."""
    if window not in WINDOWS:
        abort(400, description=f"Unknown window {window!r}: use {', '.join(WINDOWS)}.")
    db = get_db()
    days = store.list_days(db)
    papers, since = [], None
    if days:
        newest = date.fromisoformat(days[0]["day"])
        since = (newest - timedelta(days=WINDOWS[window][1] - 1)).isoformat()
        rows = store.trending_papers(db, since, limit=LIMIT)
        ratings = store.rating_values(db, user["id"]) if rows else {}
        papers = [
            {
                **paper_result(row, ratings.get(row["id"])),
                "upvotes": row["upvotes"],
                "dump_date": row["dump_date"],
                "reason": f"▲ {row['upvotes']} upvotes on Hugging Face",
            }
            for row in rows
        ]
    return {"window": window, "windows": WINDOWS, "since": since, "papers": papers}


@bp.get("/trending")
@login_required
def trending():
    return render_template(
        "trending.html", **trending_page(g.user, request.args.get("window", "week"))
    )


@bp.get("/trending.json")
@login_required
def trending_json():
    page = trending_page(g.user, request.args.get("window", "week"))
    return jsonify({"window": page["window"], "since": page["since"], "papers": page["papers"]})
