"""The feed (``/``, ``/feed.json``): the newest dump's new papers ranked for the person."""

from __future__ import annotations

from flask import Blueprint, abort, g, jsonify, render_template, request

from recommender import pipeline, store

from .auth import login_required
from .db import get_db, get_feeds

bp = Blueprint("feed", __name__)

PAGE_SIZE = 20


def feed_page(user: dict, *, dump_id: int | None, page: int, include_seen: bool) -> dict:
    """One page of the person's feed for a dump (default: the newest) and what frames it.

    Returns ``{"dump", "dumps", "items" (FeedItem), "page", "has_next", "include_seen",
    "likes", "ratings"}``. 404 for an unknown dump.
    """
    db = get_db()
    dumps = store.list_dumps(db)
    if dump_id is None:
        dump = dumps[0] if dumps else None
    else:
        dump = next((d for d in dumps if d["id"] == dump_id), None) or abort(404)
    items = []
    if dump is not None:
        items = get_feeds().rank_for_person(
            db,
            user["id"],
            dump_id=dump["id"],
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
        "dump": dump,
        "dumps": dumps,
        "items": shown,
        "page": page,
        "has_next": len(items) > PAGE_SIZE,
        "include_seen": include_seen,
        "likes": likes,
        "ratings": ratings,
    }


def _args() -> dict:
    return {
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
