"""The private Atom feed (``/atom/<token>.xml``) and its JSON twin (``/atom/<token>.json``).

No session: the secret token in the URL is the credential, so feed readers can
poll it. The person can revoke or replace the token on the settings page.

Feed readers poll often, so the feed answers conditional requests: its ``ETag``
is a hash of the document (any change of ranking, reason or paper changes it)
and ``Last-Modified`` is the newest entry's date, which is also the feed's
``<updated>``; a matching ``If-None-Match`` or ``If-Modified-Since`` gets 304
Not Modified without a body. The document is deterministic (no "now" in it),
so the same ranking always hashes the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, jsonify, request, url_for

from recommender import pipeline, store
from recommender.dumps import strip_unrenderable

from .db import get_db, get_feeds, get_settings

bp = Blueprint("atom", __name__)

ENTRIES = 30
#: ``<updated>`` of a feed with no entries yet: a fixed instant keeps the document stable.
EMPTY_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)


def entry_updated(item: pipeline.FeedItem) -> datetime:
    """An entry's ``<updated>``: the day the paper arrived (its dump's date), at 00:00 UTC."""
    day = item.dump_date or EMPTY_UPDATED.date().isoformat()
    return datetime.fromisoformat(day[:10]).replace(tzinfo=UTC)


def feed_updated(items: list[pipeline.FeedItem]) -> datetime:
    """The feed's ``<updated>`` and ``Last-Modified``: its newest entry's."""
    return max((entry_updated(i) for i in items), default=EMPTY_UPDATED)


def atom_items(token: str) -> tuple[dict, list[pipeline.FeedItem]]:
    """The token's owner and their ranked feed; 404 for an unknown or revoked token."""
    db = get_db()
    user = store.get_user_by_feed_token(db, token) or abort(404)
    # The newest day's papers (every dump of that day: a fetched day and a text dump).
    query = pipeline.FeedQuery(user["id"], window="today", page_size=ENTRIES)
    items = list(get_feeds().feed(db, query).items)
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
    feed.updated(feed_updated(items))
    for item in reversed(items):  # feedgen prepends entries: add the best last
        entry = feed.add_entry()
        entry.id(f"{base}/papers/{item.paper_id}")
        # lxml refuses NUL and control characters: stripped here whatever the database holds.
        entry.title(strip_unrenderable(item.title))
        # The entry opens the paper (its abstract page), else its page here. One link only:
        # feedgen 1.0 drops a link's rel and type, so a PDF link would read as a second
        # alternate; the PDF's address goes in the summary instead.
        page = base + url_for("papers.show", paper_id=item.paper_id)
        entry.link(href=item.links.get("abs") or page)
        if item.authors:
            entry.author([{"name": strip_unrenderable(name)} for name in item.authors])
        by = f"{', '.join(item.authors)}\n\n" if item.authors else ""
        pdf = f"\n\nPDF: {item.links['pdf']}" if item.links.get("pdf") else ""
        tldr = f"TL;DR by Hugging Face: {item.tldr}\n\n" if item.tldr else ""
        if item.section:  # the interest whose section lists it
            entry.category(term=strip_unrenderable(item.section))
        entry.summary(strip_unrenderable(f"{by}{item.reason}\n\n{tldr}{item.abstract}{pdf}"))
        entry.updated(entry_updated(item))
    return feed.atom_str(pretty=True)


@bp.get("/atom/<token>.xml")
def feed(token: str):
    user, items = atom_items(token)
    response = Response(render_atom(user, items, token), mimetype="application/atom+xml")
    response.add_etag()
    response.last_modified = feed_updated(items)
    # Private: a shared cache must not keep it; a reader revalidates with the ETag.
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.get("/atom/<token>.json")
def feed_json(token: str):
    _, items = atom_items(token)
    return jsonify({"papers": [item.as_dict() for item in items]})
