"""The feed: the newest dump's papers."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from recommender import store

from .db import get_db

bp = Blueprint("feed", __name__)


def _latest_papers() -> tuple[dict | None, list[dict]]:
    db = get_db()
    dump = store.latest_dump(db)
    return dump, store.dump_papers(db, dump["id"]) if dump else []


@bp.get("/")
def index():
    dump, papers = _latest_papers()
    return render_template("feed.html", dump=dump, papers=papers)


@bp.get("/feed.json")
def index_json():
    dump, papers = _latest_papers()
    return jsonify({"dump": dump, "papers": papers})
