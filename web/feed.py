"""The feed (``/``, ``/feed.json``): what is new to the person, ranked for them.

``?window=new`` (default: what arrived since the last visit), ``today``, ``3d``,
``week``, or a day ``YYYY-MM-DD``; ``?dump=ID`` (older links) means that dump's day.
Also what a like on the feed answers app.js (:func:`rerank`), and ``/favicon.ico``.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request, url_for

from recommender import pipeline, store

from .auth import login_required
from .cards import match_label
from .db import get_db, get_feeds

bp = Blueprint("feed", __name__)

PAGE_SIZE = 20
#: At most this many cards of a page are re-ranked after a rating.
RERANK_MAX = 100


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
    chosen = get_feeds().window(db, user["id"], kind, day=day, timezone=user["timezone"])
    in_window = [
        d
        for d in dumps
        if (chosen.first_day or "") <= d["dump_date"] <= (chosen.last_day or "9999")
    ]
    dump = in_window[0] if in_window else None
    items = []
    if dumps:
        items = _ranked(user, chosen, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE, include_seen)
    shown = items[:PAGE_SIZE]
    # Recording impressions on a GET is bookkeeping, not a change the person asked
    # for: it only keeps tomorrow's feed from repeating today's papers.
    today = pipeline.local_day(user["timezone"])
    pipeline.mark_shown(db, user["id"], [i.paper_id for i in shown], channel="feed", day=today)
    likes, ratings = store.rating_counts(db, user["id"])
    days = get_feeds().days(db)
    return {
        "window": chosen,
        "window_value": day or kind,
        "windows": WINDOWS,
        "dump": dump,
        "dumps": dumps,
        "days": days,
        # A day no dump is dated: say so, not "all caught up".
        "day_without_dump": kind == "day" and all(d["day"] != day for d in days),
        "items": shown,
        "page": page,
        "has_next": len(items) > PAGE_SIZE,
        "include_seen": include_seen,
        "likes": likes,
        "ratings": ratings,
    }


def _ranked(user: dict, chosen, limit: int, offset: int, include_seen: bool) -> list:
    return get_feeds().rank_window(
        get_db(), user["id"], chosen, limit=limit, offset=offset, include_seen=include_seen
    )


def rerank(user: dict, page_url: str, visible: str) -> dict:
    """After a rating on a feed page: the page's cards in the feed's new order.

    ``page_url`` is the feed page the rating came from (its form's ``next``),
    ``visible`` the comma-separated paper ids of its cards, as app.js sends them.
    The feed is ranked again exactly as a reload of that page would rank it, from
    its first paper to its last, and the cards are put in that order; a card
    that fell beyond the page comes last. Returns ``{"order": [paper_id, ...],
    "cards": {paper_id: {"match", "reason"}}}`` for the unrated cards (rated
    ones keep their places), or ``{}`` for anything but a feed page.
    """
    url = urlsplit(page_url)
    ids = [int(p) for p in visible.split(",")[:RERANK_MAX] if p.strip().isdigit()]
    if url.path != url_for("feed.index") or not ids:
        return {}
    args = {k: v[-1] for k, v in parse_qs(url.query).items()}
    dump_id = int(args["dump"]) if args.get("dump", "").isdigit() else None
    page = int(args["page"]) if args.get("page", "").isdigit() else 1
    db = get_db()
    dumps = store.list_dumps(db)
    if not dumps:
        return {}
    kind, day = _window_choice(args.get("window", "new"), dumps, dump_id)
    chosen = get_feeds().window(db, user["id"], kind, day=day, timezone=user["timezone"])
    items = _ranked(user, chosen, max(page, 1) * PAGE_SIZE + len(ids), 0, args.get("seen") == "1")
    ranked = [i for i in items if i.paper_id in set(ids) and i.rating is None]
    gone = {i.paper_id for i in ranked} | store.rating_values(get_db(), user["id"]).keys()
    return {
        "order": [i.paper_id for i in ranked] + [p for p in ids if p not in gone],
        "cards": {
            str(i.paper_id): {"match": match_label(i.match), "reason": i.reason} for i in ranked
        },
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


@bp.get("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico whatever the page links; pages link favicon.svg.
    response = current_app.send_static_file("favicon.ico")
    response.cache_control.public = True
    response.cache_control.max_age = 7 * 24 * 3600
    return response
