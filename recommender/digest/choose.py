"""Which papers: each due person's papers, ranked together in batches (see
:mod:`recommender.digest`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlite_utils import Database

from .. import store
from ..config import Settings
from ..feed import FeedItem, FeedQuery, FeedService
from ..reasons import AGAINST_DISLIKE, FOLLOWED
from ..store.digests import utc_text

#: People ranked per batch call: bounds memory at 10,000s of subscribers.
CHOOSE_BATCH = 5000


def choose_papers_many(
    db: Database,
    settings: Settings,
    users: list[dict],
    now: datetime,
    *,
    outcomes: list[str | None] | None = None,
) -> list[list[FeedItem]]:
    """The papers for each person's next digest, best first (possibly none), everyone
    ranked together in batches.

    Each person's digest is their feed's ``digest`` window (:class:`~recommender.feed.
    FeedQuery`: papers since their last digest) through :meth:`FeedService.feeds`, the
    one feed query. A digest run is a reader like a web worker: it ranks over the
    published model (its own :class:`~recommender.feed.FeedService`) and never fits one.
    With ``outcomes``, each person's empty digest gets why (:func:`empty_outcome`), else None.
    """
    feeds = FeedService(settings)
    chosen: list[list[FeedItem]] = []
    for start in range(0, len(users), CHOOSE_BATCH):
        batch = users[start : start + CHOOSE_BATCH]
        queries = [
            FeedQuery(
                u["id"],
                window="digest",
                # before the first digest: the last day's (or week's) papers
                since=utc_text(now - timedelta(days=7 if u["digest_cadence"] == "weekly" else 1)),
                page_size=2 * u["digest_size"],  # room for the papers dropped below
                min_score=u["min_score"],
            )
            for u in batch
        ]
        pages = feeds.feeds(db, queries, now=now)
        failed = failed_fetches(db, now) if outcomes is not None else []
        for user, page in zip(batch, pages, strict=True):
            bar = user["min_score"]
            # The pipeline's cold-start order carries no score; the bar still applies. A paper
            # whose strongest evidence is a dislike is never mailed.
            kept = [
                i
                for i in page.items
                if (bar is None or i.score >= bar or i.reason_kind == FOLLOWED)
                and i.reason_kind not in AGAINST_DISLIKE
            ]
            chosen.append(kept[: user["digest_size"]])
            if outcomes is not None:
                arrived = len(page.window.paper_ids)
                outcomes.append(None if kept else empty_outcome(failed, arrived, page.items))
    return chosen


def failed_fetches(db: Database, now: datetime) -> list[dict]:
    """The sources' days of the last day whose fetch failed (newest first)."""
    since = (now - timedelta(days=1)).date().isoformat()
    return [
        f for f in store.list_fetches(db, limit=10) if f["state"] == "failed" and f["day"] >= since
    ]


def empty_outcome(failed: list[dict], arrived: int, ranked) -> str:
    """Why a period with nothing to send sent nothing, as data (JSON for the ledger row):
    a source that failed in the last day and when it is retried, else how many papers
    arrived and the best score among them."""
    if failed and not arrived:
        f = failed[0]
        return json.dumps(
            {"kind": "source_failed", "source": f["source"], "retry_at": f["next_attempt_at"]}
        )
    if not arrived:
        return json.dumps({"kind": "nothing_new"})
    scores = [i.score for i in ranked if i.score is not None]
    best = round(float(max(scores)), 2) if scores else None
    return json.dumps({"kind": "below_bar", "arrived": arrived, "best": best})
