"""Which papers: each due person's papers, ranked together in batches (see
:mod:`recommender.digest`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from .. import store
from ..config import Settings
from ..feed import FeedItem, FeedService, RankRequest
from ..reasons import AGAINST_DISLIKE
from ..store.digests import utc_text

#: People ranked per batch call: bounds memory at 10,000s of subscribers.
CHOOSE_BATCH = 5000


def choose_papers_many(
    db: Database, settings: Settings, users: list[dict], now: datetime
) -> list[list[FeedItem]]:
    """The papers for each person's next digest, best first (possibly none), everyone
    ranked together in batches.

    A digest run is a reader like a web worker: it ranks over the published model (its own
    :class:`~recommender.FeedService`) and never fits one.
    """
    feeds = FeedService(settings)
    chosen: list[list[FeedItem]] = []
    for start in range(0, len(users), CHOOSE_BATCH):
        batch = users[start : start + CHOOSE_BATCH]
        fallback = {
            u["id"]: utc_text(now - timedelta(days=7 if u["digest_cadence"] == "weekly" else 1))
            for u in batch
        }
        candidates = store.digest_candidates(db, fallback)
        requests = [
            RankRequest(
                u["id"],
                candidates[u["id"]],
                limit=2 * u["digest_size"],  # room for the papers dropped below
                min_score=u["min_score"],
            )
            for u in batch
        ]
        ranked = feeds.rank_papers_for_people(db, requests, now=now)
        for user, items in zip(batch, ranked, strict=True):
            bar = user["min_score"]
            # The pipeline's cold-start order carries no score; the bar still applies. A paper
            # whose strongest evidence is a dislike is never mailed.
            kept = [
                i
                for i in items
                if (bar is None or i.score >= bar) and i.reason_kind not in AGAINST_DISLIKE
            ]
            chosen.append(kept[: user["digest_size"]])
    return chosen
