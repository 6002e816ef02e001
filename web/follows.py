"""Following authors: follow from a paper page or card, unfollow and choose in settings
whether a followed author's paper passes muted words (all POST, with the form's CSRF token)."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, request, url_for

from recommender import store

from .auth import login_required, safe_next
from .db import get_db
from .errors import error_response, wants_json

bp = Blueprint("follows", __name__)

#: An author name longer than this is not a name.
MAX_NAME = 200


@bp.post("/follows")
@login_required
def follow():
    name = " ".join(request.form.get("name", "").split())
    if not name or len(name) > MAX_NAME:
        return error_response(400, f"Give an author's name (at most {MAX_NAME} characters).")
    try:
        key = store.follow_author(get_db(), g.user["id"], name)
    except ValueError as exc:
        return error_response(400, f"{exc}.")
    if wants_json():
        return jsonify({"name": name, "author_key": key, "following": True})
    flash(f"You follow {name}: their new papers top your feed.", "success@follows")
    return redirect(safe_next(request.form.get("next"), "settings.show"))


@bp.post("/follows/remove")
@login_required
def unfollow():
    key = request.form.get("author_key", "")
    removed = store.unfollow_author(get_db(), g.user["id"], key)
    if wants_json():
        return jsonify({"author_key": key, "following": False, "removed": removed})
    if removed:
        flash("Unfollowed.", "success@follows")
    next_url = request.form.get("next")
    return redirect(safe_next(next_url) if next_url else url_for("settings.show") + "#follows")


@bp.post("/settings/follows")
@login_required
def save_follow_settings():
    passes = request.form.get("follows_pass_muted") == "1"
    store.set_follows_pass_muted(get_db(), g.user["id"], passes)
    flash(
        "Followed authors' papers are shown even when they contain a muted word."
        if passes
        else "Muted words hide followed authors' papers too.",
        "success@follows",
    )
    return redirect(url_for("settings.show") + "#follows")
