"""Feedback and impressions: a person's likes, dislikes and what they were shown."""

from __future__ import annotations

import logging
import sqlite3

from sqlite_utils import Database

from . import store

log = logging.getLogger(__name__)


def record_feedback(
    db: Database,
    user_id: int,
    paper_id: int,
    value: int | None,
    *,
    source: str = "web",
    interest: int | None = None,
) -> None:
    """Like (+1), dislike (-1) or undo (None). Durable when this returns.

    ``interest``: the interest a like is filed under (``0``: the default one, see
    :data:`recommender.feed.DEFAULT_KEY`); None keeps the rating's interest (a new one goes
    to the default).

    No refit is needed: the next :meth:`recommender.feed.FeedService.feed` solves the person's
    collaborative factors from their current ratings.
    """
    if value is None:
        store.delete_rating(db, user_id, paper_id)
    else:
        filed = {} if interest is None or value < 0 else {"interest_id": interest or None}
        store.set_rating(db, user_id, paper_id, value, source=source, **filed)


def mark_shown(db: Database, user_id: int, paper_ids, *, channel: str, day: str) -> None:
    """Record impressions; a locked database or a full disk skips them (logged): reading
    never depends on a write succeeding."""
    try:
        store.mark_shown(db, user_id, paper_ids, channel=channel, day=day)
    except sqlite3.OperationalError as exc:
        if not (store.is_busy(exc) or store.is_disk_full(exc)):
            raise
        log.warning("impressions of person %d not recorded (%s); the page is served", user_id, exc)


def user_ratings(db: Database, user_id: int) -> list[dict]:
    return store.user_ratings(db, user_id)
