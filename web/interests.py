"""Managing interests (``/interests``): create, rename, merge, delete; every form a POST
with its CSRF token, each answered by a redirect back (``next``) with what it did.

The same forms sit in settings (``#interests``) and on the feed; ``/interests.json`` lists
the person's interests with their likes.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, request

from recommender import store

from .auth import login_required, safe_next
from .db import get_db

bp = Blueprint("interests", __name__)


def person_interests(user_id: int) -> tuple[dict, ...]:
    """The person's interests, ``{"key", "name", "likes"}``, the default one first; empty
    when they named none (:func:`recommender.store.interests_many`)."""
    found = store.interests_many(get_db(), [user_id])[user_id]
    return tuple({k: i[k] for k in ("key", "name", "likes")} for i in found)


def interest_key(value: str | None, user: dict) -> int | None:
    """A form's or URL's interest (``"0"``: the default) as a key the person owns; None if
    absent; :class:`store.InterestError` for anything else."""
    if value is None or value == "":
        return None
    keys = {i["key"] for i in person_interests(user["id"])} | {0}
    if not value.isdigit() or int(value) not in keys:
        raise store.InterestError("No such interest: it may have been deleted or merged.")
    return int(value)


def _back(message: str, category: str = "success"):
    flash(message, f"{category}@interests")
    return redirect(safe_next(request.form.get("next")))


def _do(action):
    try:
        return _back(action(get_db(), g.user["id"]))
    except store.InterestError as exc:
        return _back(f"Nothing changed: {exc}", "error")


@bp.post("/interests")
@login_required
def create():
    name = request.form.get("name", "")

    def action(db, uid):
        store.create_interest(db, uid, name)
        return f"Interest “{store.clean_name(name)}” created: file likes under it as you like them."

    return _do(action)


@bp.post("/interests/<int:interest_id>/rename")
@login_required
def rename(interest_id: int):
    name = request.form.get("name", "")

    def action(db, uid):
        store.rename_interest(db, uid, interest_id, name)
        return f"Renamed to “{store.clean_name(name)}”."

    return _do(action)


@bp.post("/interests/<int:interest_id>/merge")
@login_required
def merge(interest_id: int):
    def action(db, uid):
        target = interest_key(request.form.get("into"), g.user)
        if target is None:
            raise store.InterestError("Choose the interest to merge into.")
        moved = store.merge_interests(db, uid, interest_id, target or None)
        return f"Merged: {moved} rating{'s' if moved != 1 else ''} moved."

    return _do(action)


@bp.post("/interests/<int:interest_id>/delete")
@login_required
def delete(interest_id: int):
    def action(db, uid):
        moved = store.delete_interest(db, uid, interest_id)
        return (
            f"Interest deleted; its {moved} rating{'s' if moved != 1 else ''} went back to "
            f"{store.DEFAULT_INTEREST}."
        )

    return _do(action)


@bp.get("/interests.json")
@login_required
def list_json():
    return jsonify({"interests": list(person_interests(g.user["id"]))})
