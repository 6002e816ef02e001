"""Search for one person: the store's full-text hits, ordered with what the person likes.

:func:`recommender.store.search_papers` finds and ranks by relevance (author names first,
then bm25). Here, hits of the same relevance (bm25 equal to one decimal) are ordered by
the person's own score from the published model, and papers with a word they muted are
marked, not hidden: a search is a question the person asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from . import reasons, store
from .feed import FeedQuery, FeedService
from .muting import muted_filter

#: Hits ordered per search; later pages than this reach no further.
SEARCH_CAP = 200


@dataclass(frozen=True)
class SearchPage:
    """One page of a person's search: rows as :func:`store.search_papers` gives them, plus
    ``muted`` and ``score`` (the person's, None where the model has none)."""

    query: str
    rows: list[dict]
    matched: str | None  # "all": every word matched; "any": none had all, these have some
    has_next: bool


def search_for_person(
    db: Database, feeds: FeedService, user_id: int, query: str, *, limit: int, offset: int
) -> SearchPage:
    """Page ``[offset, offset + limit)`` of the person's search for ``query``."""
    hits = store.search_papers(db, query, limit=SEARCH_CAP)
    scores = _scores(db, feeds, user_id, [h["id"] for h in hits])
    mute = muted_filter(store.user_profile_fields(db, user_id)["muted_keywords"])
    for hit in hits:
        hit["score"] = scores.get(hit["id"])
        hit["muted"] = bool(mute is not None and mute(hit))
    hits.sort(
        key=lambda h: (
            not h["author_hit"],
            round(h["rank"], 1),
            -(h["score"] if h["score"] is not None else float("-inf")),
            h["rank"],
            h["id"],
        )
    )
    page = hits[offset : offset + limit]
    return SearchPage(
        query=query,
        rows=page,
        matched=hits[0]["matched"] if hits else None,
        has_next=len(hits) > offset + limit,
    )


def _scores(db: Database, feeds: FeedService, user_id: int, paper_ids: list[int]) -> dict:
    """The person's score of each paper the model ranked (not rated, not muted ones)."""
    if not paper_ids:
        return {}
    query = FeedQuery(
        user_id,
        window="papers",
        papers=tuple(paper_ids),
        page_size=len(paper_ids),
        include_seen=True,
    )
    items = feeds.feed(db, query).items
    return {i.paper_id: i.score for i in items if i.reason_kind != reasons.RATED}
