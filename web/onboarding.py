"""Onboarding (``/welcome``): topics to start from and a diverse sample of papers to rate."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from recommender import store

from .auth import login_required
from .db import get_db, get_feeds

bp = Blueprint("onboarding", __name__)

SAMPLE_SIZE = 12
MAX_KEYWORDS = 500


def welcome_page(user: dict) -> dict:
    """``{"keywords", "papers" (with the person's rating), "likes"}``."""
    db = get_db()
    ratings = store.rating_values(db, user["id"])
    papers = [
        {
            "paper_id": p["id"],
            "title": p["title"],
            "abstract": p["abstract"],
            "rating": ratings.get(p["id"]),
        }
        for p in get_feeds().onboarding_sample(db, k=SAMPLE_SIZE)
    ]
    likes = sum(1 for v in ratings.values() if v > 0)
    return {"keywords": user["keywords"], "papers": papers, "likes": likes}


@bp.get("/welcome")
@login_required
def welcome():
    return render_template("welcome.html", **welcome_page(g.user))


@bp.get("/welcome.json")
@login_required
def welcome_json():
    return jsonify(welcome_page(g.user))


@bp.post("/welcome/keywords")
@login_required
def save_keywords():
    keywords = " ".join(request.form.get("keywords", "").split())[:MAX_KEYWORDS]
    store.set_keywords(get_db(), g.user["id"], keywords)
    flash("Topics saved: your feed starts from them until you like a few papers.", "success")
    return redirect(url_for("onboarding.welcome") + "#sample")
