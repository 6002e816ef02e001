"""Full-text search over every paper: titles, abstracts and author names (``/search``,
``/search.json``), with rating buttons; see :mod:`recommender.search`."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request

from recommender import store
from recommender.search import search_for_person

from .auth import login_required
from .db import get_db, get_feeds
from .errors import page_arg

bp = Blueprint("search", __name__)

PAGE_SIZE = 20
MAX_QUERY = 200


#: What a muted paper's card says, instead of hiding it: the person searched for it.
MUTED_REASON = "has a word you muted"


def paper_result(row: dict, rating: int | None) -> dict:
    """A papers row (``authors`` decoded) as a card and JSON item, with the person's rating."""
    return {
        "paper_id": row["id"],
        "title": row["title"],
        "abstract": row["abstract"],
        "url": row["url"],
        "authors": row["authors"],
        "arxiv_id": row["arxiv_id"],
        "links": store.paper_links(row),
        "published": row["published"],
        "rating": rating,
    }


def search_page(user: dict, query: str, page: int) -> dict:
    """``{"query", "results", "matched", "page", "has_next"}``; results carry the person's
    rating and ``muted`` (a muted paper's card says so: ``reason``)."""
    db = get_db()
    query = query.strip()[:MAX_QUERY]
    found = search_for_person(
        db, get_feeds(), user["id"], query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    ratings = store.rating_values(db, user["id"]) if found.rows else {}
    results = [
        {
            **paper_result(row, ratings.get(row["id"])),
            "muted": row["muted"],
            "reason": MUTED_REASON if row["muted"] else None,
        }
        for row in found.rows
    ]
    return {
        "query": query,
        "results": results,
        "matched": found.matched,
        "page": page,
        "has_next": found.has_next,
    }


def _args() -> tuple[str, int]:
    return request.args.get("q", ""), page_arg()


@bp.get("/search")
@login_required
def search():
    return render_template("search.html", **search_page(g.user, *_args()))


@bp.get("/search.json")
@login_required
def search_json():
    page = search_page(g.user, *_args())
    return jsonify(
        {
            "query": page["query"],
            "matched": page["matched"],
            "page": page["page"],
            "next_page": page["page"] + 1 if page["has_next"] else None,
            "papers": [{k: v for k, v in r.items() if k != "reason"} for r in page["results"]],
        }
    )
