"""The private Atom feed (``/atom/<token>.xml``) and its JSON twin (``/atom/<token>.json``).

No session: the secret token in the URL is the credential, so feed readers can
poll it. The person can revoke or replace the token on the settings page.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, jsonify, url_for

from recommender import pipeline, store
from recommender.dumps import strip_unrenderable

from .db import get_db, get_settings

bp = Blueprint("atom", __name__)

ENTRIES = 30


def atom_items(token: str) -> tuple[dict, list[pipeline.FeedItem]]:
    """The token's owner and their ranked feed; 404 for an unknown or revoked token."""
    db = get_db()
    user = store.get_user_by_feed_token(db, token) or abort(404)
    items = pipeline.rank_for_person(db, get_settings(), user["id"], limit=ENTRIES)
    day = pipeline.local_day(user["timezone"])
    pipeline.mark_shown(db, user["id"], [i.paper_id for i in items], channel="atom", day=day)
    return user, items


def render_atom(user: dict, items: list[pipeline.FeedItem], token: str) -> bytes:
    """An Atom document; feedgen escapes every text field."""
    base = get_settings().base_url
    feed = FeedGenerator()
    feed.id(f"{base}/atom/feed-{user['id']}")
    feed.title("paperfeed: new papers for you")
    feed.author({"name": "paperfeed"})
    feed.link(href=base + url_for("atom.feed", token=token), rel="self")
    feed.link(href=base + url_for("feed.index"), rel="alternate")
    feed.updated(datetime.now(UTC))
    for item in reversed(items):  # feedgen prepends entries: add the best last
        entry = feed.add_entry()
        entry.id(f"{base}/papers/{item.paper_id}")
        # lxml refuses NUL and control characters: stripped here whatever the database holds.
        entry.title(strip_unrenderable(item.title))
        entry.link(href=base + url_for("papers.show", paper_id=item.paper_id))
        entry.summary(strip_unrenderable(f"{item.reason}\n\n{item.abstract}"))
        day = item.dump_date or datetime.now(UTC).date().isoformat()
        entry.updated(datetime.fromisoformat(day).replace(tzinfo=UTC))
    return feed.atom_str(pretty=True)


@bp.get("/atom/<token>.xml")
def feed(token: str):
    user, items = atom_items(token)
    return Response(render_atom(user, items, token), mimetype="application/atom+xml")


@bp.get("/atom/<token>.json")
def feed_json(token: str):
    _, items = atom_items(token)
    return jsonify({"papers": [item.as_dict() for item in items]})
