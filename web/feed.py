"""The feed (``/``, ``/feed.json``): what is new to the person, ranked for them.

``?window=new`` (default: what arrived since the last visit), ``today``, ``3d``,
``week``, or a day ``YYYY-MM-DD``; ``?dump=ID`` (older links) means that dump's day.
Also what a like on the feed answers app.js (:func:`rerank`), and ``/favicon.ico``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request, url_for

from recommender import pipeline, store

from .auth import login_required
from .cards import match_label
from .db import get_db, get_feeds
from .errors import parse_page
from .interests import interest_key, person_interests

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


def feed_query(user: dict, args: dict, dumps: list[dict]) -> pipeline.FeedQuery:
    """The :class:`~recommender.feed.FeedQuery` of a feed URL's query arguments
    (``window``, ``dump``, ``page``, ``seen``, ``interest``); 404 for an unknown dump or
    interest, 400 for a bad window or a page beyond :data:`~web.errors.MAX_PAGE`. The page
    and the re-rank after a rating both read their URL here, once."""
    try:
        interest = interest_key(args.get("interest"), user)
    except store.InterestError as exc:
        abort(404, description=str(exc))
    common = {
        "interest": interest,
        "user_id": user["id"],
        "page": parse_page(args.get("page")),
        "include_seen": args.get("seen") == "1",
        "page_size": PAGE_SIZE,
    }
    if str(args.get("dump", "")).isdigit():  # older links: a dump means its day
        dump_id = int(args["dump"])
        dump = next((d for d in dumps if d["id"] == dump_id), None) or abort(404)
        return pipeline.FeedQuery(window="day", day=dump["dump_date"], **common)
    window = args.get("window", "new")
    if window in WINDOWS:
        return pipeline.FeedQuery(window=window, **common)
    try:
        day = date.fromisoformat(window).isoformat()
    except ValueError:
        abort(400, description=f"Unknown window {window!r}: use new, today, 3d, week or a date.")
    return pipeline.FeedQuery(window="day", day=day, **common)


def feed_page(user: dict, args: dict) -> dict:
    """One page of the person's feed (:meth:`FeedService.feed`) and what frames it.

    Returns ``{"feed" (FeedPage), "window" (FeedWindow), "dump", "dumps", "windows",
    "likes", "ratings"}``. ``dump``: the newest dump in the window (None when there is
    none). Every link of the page is rendered from ``feed``.
    """
    db = get_db()
    dumps = store.list_dumps(db)
    feed = get_feeds().feed(db, feed_query(user, args, dumps))
    chosen = feed.window
    in_window = [
        d
        for d in dumps
        if (chosen.first_day or "") <= d["dump_date"] <= (chosen.last_day or "9999")
    ]
    # Recording impressions on a GET is bookkeeping, not a change the person asked
    # for: it only keeps tomorrow's feed from repeating today's papers.
    today = pipeline.local_day(user["timezone"])
    pipeline.mark_shown(db, user["id"], [i.paper_id for i in feed.items], channel="feed", day=today)
    likes, ratings = store.rating_counts(db, user["id"])
    return {
        "feed": feed,
        "window": chosen,
        "windows": WINDOWS,
        "dump": in_window[0] if in_window else None,
        "dumps": dumps,
        "likes": likes,
        "ratings": ratings,
    }


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
    if person_interests(user["id"]) and "interest=" not in url.query:
        return {}  # sections: the page is reloaded, a paper may change section
    db = get_db()
    dumps = store.list_dumps(db)
    if not dumps:
        return {}
    query = feed_query(user, {k: v[-1] for k, v in parse_qs(url.query).items()}, dumps)
    # The page's query from its first paper to its last, and the cards that were on it.
    whole = replace(query, page=1, page_size=query.page * PAGE_SIZE + len(ids))
    items = get_feeds().feed(db, whole).items
    ranked = [i for i in items if i.paper_id in set(ids) and i.rating is None]
    gone = {i.paper_id for i in ranked} | store.rating_values(db, user["id"]).keys()
    return {
        "order": [i.paper_id for i in ranked] + [p for p in ids if p not in gone],
        "cards": {
            str(i.paper_id): {"match": match_label(i.match), "reason": i.reason} for i in ranked
        },
    }


@bp.get("/")
@login_required
def index():
    return render_template("feed.html", **feed_page(g.user, request.args))


@bp.get("/feed.json")
@login_required
def index_json():
    page = feed_page(g.user, request.args)
    feed, dump = page["feed"], page["dump"]
    return jsonify(
        {
            "dump": dump
            and {"id": dump["id"], "date": dump["dump_date"], "file": dump["file_name"]},
            "window": {
                "kind": feed.window.kind,
                "first_day": feed.window.first_day,
                "last_day": feed.window.last_day,
                "since": feed.window.since,
                "candidates": len(feed.window.paper_ids),
            },
            "days": list(feed.days),
            "dumps": [
                {"id": d["id"], "date": d["dump_date"], "new_papers": d["new_papers"]}
                for d in page["dumps"]
            ],
            "page": feed.query.page,
            "next_page": feed.query.page + 1 if feed.has_next else None,
            "include_seen": feed.query.include_seen,
            "ratings": page["ratings"],
            "interest": feed.query.interest,
            "interests": list(feed.interests),
            "sections": [
                {
                    "key": s.key,
                    "name": s.name,
                    "likes": s.likes,
                    "papers": [i.paper_id for i in s.items],
                }
                for s in feed.sections
            ],
            "papers": [item.as_dict() for item in feed.items],
        }
    )


@bp.get("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico whatever the page links; pages link favicon.svg.
    response = current_app.send_static_file("favicon.ico")
    response.cache_control.public = True
    response.cache_control.max_age = 7 * 24 * 3600
    return response
