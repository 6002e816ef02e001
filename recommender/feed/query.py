"""What a feed asks for: its window of candidate papers (:func:`window_bounds`,
:func:`window_papers`), the query a page is made from (:class:`FeedQuery`) and the page it
gets back (:class:`FeedPage`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from .. import store
from .items import FeedItem

WINDOW_DAYS = {"today": 1, "3d": 3, "week": 7}
#: "new since your last visit" looks back at most this far, both in when papers arrived and
#: in their dumps' dates (a backfill of older dumps is browsed by day, not shown as new).
#: At most :data:`recommender.refit.SERVED_DAYS`, so the window's papers are those whose
#: neighbourhoods a publish precomputes.
NEW_WINDOW_CAP_DAYS = 30


@dataclass(frozen=True)
class FeedWindow:
    """The candidates of a feed: ``kind`` is ``new``, ``today``, ``3d``, ``week`` or ``day``."""

    kind: str
    paper_ids: tuple[int, ...]
    first_day: str | None = None
    last_day: str | None = None
    since: str | None = None  # "new": the last visit day the window starts from


@dataclass(frozen=True)
class FeedQuery:
    """What one person asks their feed for: the one value every reader of a feed is made
    from (:meth:`FeedService.feed`): the page, its JSON twin, the Atom feed, the re-rank
    after a rating, the digest and search.

    ``window``: ``new``, ``today``, ``3d``, ``week``, ``day`` with ``day`` set, ``digest``
    (the papers of dumps ingested since the person's last digest, or since ``since`` before
    their first; none they rated or were mailed) or ``papers`` (exactly ``papers``: search
    hits). ``min_score`` drops the ranked papers below it.
    """

    user_id: int
    window: str = "new"
    day: str | None = None
    page: int = 1
    include_seen: bool = False
    page_size: int = 20
    min_score: float | None = None
    since: str | None = None
    papers: tuple[int, ...] = ()
    #: one interest chosen in the picker (``0``: the default one, else its id); None: a
    #: section each (for a person with named interests; one list for everyone else)
    interest: int | None = None

    @property
    def value(self) -> str:
        """The window as the picker and ``?window=`` spell it: a name or a date."""
        return self.day or self.window

    def args(self, **changes) -> dict:
        """The query string of this query with ``changes`` (``page=2``): every link of a
        page is made here, so none can drop the window."""
        query = replace(self, **changes)
        return {
            "window": query.value,
            "page": query.page if query.page > 1 else None,
            "seen": 1 if query.include_seen else None,
            **({"interest": query.interest} if query.interest is not None else {}),
        }


@dataclass(frozen=True)
class FeedSection:
    """One interest's part of a feed page: ``key`` is :data:`DEFAULT_KEY` or the interest's
    id, ``name`` what it is called, ``items`` its papers on this page."""

    key: int
    name: str
    items: tuple[FeedItem, ...]
    likes: int = 0


@dataclass(frozen=True)
class FeedPage:
    """One page of a person's feed and what frames it: the window it ranks, the days the
    picker lists (:func:`store.list_days`), and the links to other pages of the same query."""

    query: FeedQuery
    window: FeedWindow
    items: tuple[FeedItem, ...]
    has_next: bool
    days: tuple[dict, ...]
    #: one per interest when the person has named interests and chose none (``items`` is
    #: then every section's items, in order); empty for one interest or a chosen one
    sections: tuple[FeedSection, ...] = ()
    #: the person's interests, for the picker and the like form: ``{"key", "name", "likes"}``
    interests: tuple[dict, ...] = ()

    @property
    def day_without_dump(self) -> bool:
        """A day was asked for and no dump is dated that day."""
        return self.query.day is not None and all(d["day"] != self.query.day for d in self.days)

    @property
    def next_args(self) -> dict | None:
        return self.query.args(page=self.query.page + 1) if self.has_next else None

    @property
    def previous_args(self) -> dict | None:
        return self.query.args(page=self.query.page - 1) if self.query.page > 1 else None

    @property
    def seen_args(self) -> dict:
        """The first page of this window with rated and seen papers shown."""
        return self.query.args(page=1, include_seen=True)


def window_bounds(
    db: Database,
    user_id: int,
    window: str = "new",
    *,
    day: str | None = None,
    timezone: str | None = None,
    now: datetime | None = None,
    days: Sequence[dict] | None = None,
) -> FeedWindow:
    """Which papers a feed ranks together, as bounds (``paper_ids`` left empty: fill them
    with :func:`window_papers`, or :meth:`FeedService.feed`, which keeps the lists).

    ``day``: the papers first seen in dumps dated that day (two dumps of a day are
    one day). ``today``/``3d``/``week``: those of dumps dated within the last 1, 3
    or 7 days ending at the newest dump date (so a weekend without papers does not
    empty the feed). ``new``: the papers that arrived since the person's last visit
    on an earlier day (the feed's impressions), at most
    :data:`NEW_WINDOW_CAP_DAYS` back, from dumps dated at most as far before the newest
    (a backfill of old dumps is not new); on a first visit, the newest day's.
    Papers shown on an earlier day are dropped later by the ranking as always.
    """
    days = store.list_days(db) if days is None else days  # days: store.list_days, if read
    if not days:
        return FeedWindow(window if day is None else "day", ())
    newest = days[0]["day"]
    if day is not None:
        return FeedWindow("day", (), day, day)
    if window in WINDOW_DAYS:
        first = (date.fromisoformat(newest) - timedelta(days=WINDOW_DAYS[window] - 1)).isoformat()
        return FeedWindow(window, (), first, newest)
    today = local_day(timezone, now)
    last = store.last_visit_day(db, user_id, today)
    if last is None:
        return FeedWindow("new", (), newest, newest)
    floor = (date.fromisoformat(today) - timedelta(days=NEW_WINDOW_CAP_DAYS)).isoformat()
    return FeedWindow("new", (), since=max(last, floor))


def window_papers(db: Database, bounds: FeedWindow) -> tuple[int, ...]:
    """The papers of a window from :func:`window_bounds`."""
    if bounds.since is not None:
        return tuple(store.papers_arrived_since(db, bounds.since, dated_within=NEW_WINDOW_CAP_DAYS))
    if bounds.first_day is None:
        return ()
    return tuple(store.papers_first_dated_between(db, bounds.first_day, bounds.last_day))


# -- serving ------------------------------------------------------------------------------------


def local_day(timezone: str | None, now: datetime | None = None) -> str:
    """The person's calendar day (YYYY-MM-DD) in their IANA time zone."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date().isoformat()
