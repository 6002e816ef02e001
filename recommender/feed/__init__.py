"""The feed: which papers a person is shown, ranked, page by page.

- :mod:`.query`: the window of candidates (:func:`window_bounds`, :func:`window_papers`),
  the query a page is made from (:class:`FeedQuery`) and the page (:class:`FeedPage`);
- :mod:`.service`: :class:`FeedService`, the serving state of one data directory (the
  published bundle and the memos over it) and the one ranking path;
- :mod:`.items`: :class:`FeedItem`, one paper as shown to one person;
- :mod:`.memo`: the bounded memo the service keeps its state in.
"""

from .items import FeedItem
from .memo import Memo
from .query import (
    NEW_WINDOW_CAP_DAYS,
    WINDOW_DAYS,
    FeedPage,
    FeedQuery,
    FeedSection,
    FeedWindow,
    local_day,
    window_bounds,
    window_papers,
)
from .service import DEFAULT_KEY, FeedService, RankRequest

__all__ = [
    "DEFAULT_KEY",
    "NEW_WINDOW_CAP_DAYS",
    "WINDOW_DAYS",
    "FeedItem",
    "FeedPage",
    "FeedQuery",
    "FeedSection",
    "FeedService",
    "FeedWindow",
    "Memo",
    "RankRequest",
    "local_day",
    "window_bounds",
    "window_papers",
]
