"""A paper's page (``/papers/<id>``, ``.json``) and rating a paper (POST, form or fetch)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request

from recommender import pipeline, store
from recommender.authors import author_key

from .auth import login_required, safe_next
from .db import get_db, get_feeds
from .errors import error_response, wants_json
from .feed import rerank
from .interests import interest_key

bp = Blueprint("papers", __name__)

RATING_VALUES = {"like": 1, "dislike": -1, "undo": None}
SIMILAR = 8


def paper_page(user: dict, paper_id: int) -> dict:
    """``{"paper", "rating", "similar", "text_model"}``; 404 if there is no such paper.

    ``text_model``: what the similarity compares (``embeddings``: meaning; ``tfidf``:
    words), from the published model; None before the first.
    """
    db = get_db()
    paper = store.get_paper(db, paper_id) or abort(404)
    if paper.get("library_of") not in (None, user["id"]):
        abort(404)  # someone else's library paper: private
    bundle = get_feeds().bundle()
    followed = {f["author_key"] for f in store.followed_authors(db, user["id"])}
    return {
        "paper": paper,
        "authors": [
            (name, author_key(name), author_key(name) in followed) for name in paper["authors"]
        ],
        "rating": store.rating_values(db, user["id"]).get(paper_id),
        "similar": get_feeds().similar_papers(db, paper_id, k=SIMILAR),
        "text_model": bundle.info.get("text_model") if bundle is not None else None,
    }


def rate_paper(user: dict, paper_id: int, value: int | None, interest: str | None = None) -> str:
    """Record the person's rating, a like filed under ``interest`` (the form's key, ``"0"``
    the default; absent: where it was); return the paper's title (404: no such paper)."""
    db = get_db()
    title = store.paper_title(db, paper_id)
    if title is None:
        abort(404)
    key = interest_key(interest, user)
    pipeline.record_feedback(db, user["id"], paper_id, value, source="web", interest=key)
    return title


@bp.get("/papers/<int:paper_id>")
@login_required
def show(paper_id: int):
    return render_template("paper.html", **paper_page(g.user, paper_id))


@bp.get("/papers/<int:paper_id>.json")
@login_required
def show_json(paper_id: int):
    page = paper_page(g.user, paper_id)
    paper = page["paper"]
    keys = ("id", "title", "abstract", "url", "authors", "published", "external_id", "arxiv_id")
    keys += ("links", "upvotes", "days", "dumps")
    return jsonify(
        {
            **{k: paper[k] for k in keys},
            "rating": page["rating"],
            "similar": page["similar"],
            "similarity": page["text_model"],
        }
    )


@bp.post("/papers/<int:paper_id>/rate")
@login_required
def rate(paper_id: int):
    choice = request.form.get("value", "")
    if choice not in RATING_VALUES:
        return error_response(400, "Choose like, dislike or undo.")
    try:
        title = rate_paper(g.user, paper_id, RATING_VALUES[choice], request.form.get("interest"))
    except store.InterestError as exc:
        return error_response(400, str(exc))
    if wants_json():
        # With the ids of the page's cards, the answer carries their new order (app.js).
        order = rerank(g.user, request.form.get("next", ""), request.form.get("visible", ""))
        return jsonify({"paper_id": paper_id, "rating": RATING_VALUES[choice], **order})
    verb = {"like": "Liked", "dislike": "Disliked", "undo": "Removed your rating of"}[choice]
    flash(f"{verb} “{title}”.", "success")
    return redirect(safe_next(request.form.get("next")))
