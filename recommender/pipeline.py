"""The one place that joins the database with the models, in two halves, one per kind of
process; this module re-exports their public names for the callers that import them here.

- **Writing models**: :func:`recommender.refit.refit` (the scheduler's jobs and
  ``paperfeed refit`` only).
- **Serving**: :class:`recommender.feed.FeedService` and its values
  (:mod:`recommender.feed`), and the feedback it ranks on (:mod:`recommender.feedback`).
"""

from .bundles import WriterBusy
from .feed import (
    DEFAULT_KEY,
    NEW_WINDOW_CAP_DAYS,
    WINDOW_DAYS,
    FeedItem,
    FeedPage,
    FeedQuery,
    FeedSection,
    FeedService,
    FeedWindow,
    Memo,
    RankRequest,
    local_day,
    window_bounds,
    window_papers,
)
from .feedback import mark_shown, record_feedback, user_ratings
from .refit import SERVED_DAYS, refit

__all__ = [
    "DEFAULT_KEY",
    "NEW_WINDOW_CAP_DAYS",
    "SERVED_DAYS",
    "WINDOW_DAYS",
    "FeedItem",
    "FeedPage",
    "FeedQuery",
    "FeedSection",
    "FeedService",
    "FeedWindow",
    "Memo",
    "RankRequest",
    "WriterBusy",
    "local_day",
    "mark_shown",
    "record_feedback",
    "refit",
    "user_ratings",
    "window_bounds",
    "window_papers",
]
