"""The feed (``/``, ``/feed.json``): what is new to the person, ranked for them.

``?window=new`` (default: what arrived since the last visit), ``today``, ``3d``,
``week``, or a day ``YYYY-MM-DD``; ``?dump=ID`` (older links) means that dump's day.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, g, jsonify, render_template, request

from recommender import pipeline, store

from .auth import login_required
from .db import get_db, get_settings

bp = Blueprint("feed", __name__)

PAGE_SIZE = 20


WINDOWS = {
    "new": "New since your last visit",
    "today": "Newest day",
    "3d": "Last 3 days",
    "week": "Last week",
}


def _window_choice(window: str, dumps: list[dict], dump_id: int | None) -> tuple[str, str | None]:
    """``(window, day)`` from the query; 404 for an unknown dump, 400 for a bad window."""
    if dump_id is not None:
        dump = next((d for d in dumps if d["id"] == dump_id), None) or abort(404)
        return "day", dump["dump_date"]
    if window in WINDOWS:
        return window, None
    try:
        return "day", date.fromisoformat(window).isoformat()
    except ValueError:
        abort(400, description=f"Unknown window {window!r}: use new, today, 3d, week or a date.")


def feed_page(
    user: dict, *, window: str, dump_id: int | None, page: int, include_seen: bool
) -> dict:
    """One page of the person's feed over a window of days and what frames it.

    Returns ``{"window" (FeedWindow), "dump", "dumps", "days", "items" (FeedItem),
    "page", "has_next", "include_seen", "likes", "ratings"}``. ``dump``: the newest
    dump in the window (None when there is none).
    """
    db = get_db()
    dumps = store.list_dumps(db)
    kind, day = _window_choice(window, dumps, dump_id)
    chosen = pipeline.window_candidates(db, user["id"], kind, day=day, timezone=user["timezone"])
    in_window = [
        d
        for d in dumps
        if (chosen.first_day or "") <= d["dump_date"] <= (chosen.last_day or "9999")
    ]
    dump = in_window[0] if in_window else None
    items = []
    if dumps:
        items = pipeline.rank_papers_for_person(
            db,
            get_settings(),
            user["id"],
            chosen.paper_ids,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
            include_seen=include_seen,
        )
    shown = items[:PAGE_SIZE]
    # Recording impressions on a GET is bookkeeping, not a change the person asked
    # for: it only keeps tomorrow's feed from repeating today's papers.
    day = pipeline.local_day(user["timezone"])
    pipeline.mark_shown(db, user["id"], [i.paper_id for i in shown], channel="feed", day=day)
    likes, ratings = store.rating_counts(db, user["id"])
    return {
        "window": chosen,
        "window_value": day or kind,
        "windows": WINDOWS,
        "dump": dump,
        "dumps": dumps,
        "days": store.list_days(db),
        "items": shown,
        "page": page,
        "has_next": len(items) > PAGE_SIZE,
        "include_seen": include_seen,
        "likes": likes,
        "ratings": ratings,
    }


def _args() -> dict:
    return {
        "window": request.args.get("window", "new"),
        "dump_id": request.args.get("dump", type=int),
        "page": max(1, request.args.get("page", 1, type=int)),
        "include_seen": request.args.get("seen") == "1",
    }


@bp.get("/")
@login_required
def index():
    return render_template("feed.html", **feed_page(g.user, **_args()))


@bp.get("/feed.json")
@login_required
def index_json():
    page = feed_page(g.user, **_args())
    dump = page["dump"]
    return jsonify(
        {
            "dump": dump
            and {"id": dump["id"], "date": dump["dump_date"], "file": dump["file_name"]},
            "window": {
                "kind": page["window"].kind,
                "first_day": page["window"].first_day,
                "last_day": page["window"].last_day,
                "since": page["window"].since,
                "candidates": len(page["window"].paper_ids),
            },
            "days": page["days"],
            "dumps": [
                {"id": d["id"], "date": d["dump_date"], "new_papers": d["new_papers"]}
                for d in page["dumps"]
            ],
            "page": page["page"],
            "next_page": page["page"] + 1 if page["has_next"] else None,
            "include_seen": page["include_seen"],
            "ratings": page["ratings"],
            "papers": [item.as_dict() for item in page["items"]],
        }
    )
