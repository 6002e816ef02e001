"""Full-text search over every paper: titles, abstracts and author names (``/search``,
``/search.json``), with rating buttons."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request

from recommender import store

from .auth import login_required
from .db import get_db

bp = Blueprint("search", __name__)

PAGE_SIZE = 20
MAX_QUERY = 200


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
    """``{"query", "results", "page", "has_next"}``; results carry the person's rating."""
    db = get_db()
    query = query.strip()[:MAX_QUERY]
    rows = store.search_papers(db, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    ratings = store.rating_values(db, user["id"]) if rows else {}
    results = [paper_result(row, ratings.get(row["id"])) for row in rows[:PAGE_SIZE]]
    return {"query": query, "results": results, "page": page, "has_next": len(rows) > PAGE_SIZE}


def _args() -> tuple[str, int]:
    return request.args.get("q", ""), max(1, request.args.get("page", 1, type=int))


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
            "page": page["page"],
            "next_page": page["page"] + 1 if page["has_next"] else None,
            "papers": page["results"],
        }
    )
