"""One feed query: a FeedQuery value turned into a FeedPage by FeedService.feed, whose
links are made from the query (so no link can drop the window)."""

from __future__ import annotations

from dataclasses import replace

from recommender import pipeline, store
from recommender.config import load_settings

from ._web import NEW_DAY, OLD_DAY, copy_corpus


def test_a_feed_page_and_its_links_come_from_one_query(tmp_path):
    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    feeds = pipeline.FeedService(load_settings(data))
    user_id = store.create_user(db, "ada@example.org", None)
    week = pipeline.FeedQuery(user_id, window="week", page=2)
    page = feeds.feed(db, week)
    assert (page.window.first_day, page.window.last_day) == ("2026-11-14", NEW_DAY)
    assert len(page.items) == 20 and page.has_next
    assert page.next_args == {"window": "week", "page": 3, "seen": None}
    assert page.previous_args == {"window": "week", "page": None, "seen": None}
    assert page.seen_args == {"window": "week", "page": None, "seen": 1}
    assert [d["day"] for d in page.days] == [NEW_DAY, OLD_DAY] and not page.day_without_dump
    # Pages of one query never overlap, and together they are the window.
    first = feeds.feed(db, replace(week, page=1))
    assert not {i.paper_id for i in first.items} & {i.paper_id for i in page.items}
    everything = feeds.feed(db, replace(week, page=1, page_size=1000))
    assert {i.paper_id for i in everything.items} == set(page.window.paper_ids)
    # A day: its papers only; a day without a dump says so and has nothing.
    day = feeds.feed(db, pipeline.FeedQuery(user_id, window="day", day=OLD_DAY))
    assert {i.dump_date for i in day.items} == {OLD_DAY}
    assert day.next_args["window"] == OLD_DAY
    empty = feeds.feed(db, pipeline.FeedQuery(user_id, window="day", day="2026-11-01"))
    assert empty.day_without_dump and empty.items == () and not empty.has_next
    db.close()


def test_the_feed_service_ranks_through_one_query_only():
    """Two ranking paths drift apart: feed (one person) and feeds (a digest's batch of the
    same queries) are the service's only ways to rank."""
    public = {name for name in vars(pipeline.FeedService) if not name.startswith("_")}
    assert public == {
        "bundle",
        "status",
        "feed",
        "feeds",
        "similar_papers",
        "onboarding_sample",
        "days",
    }
