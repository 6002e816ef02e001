"""One feed query: a FeedQuery value turned into a FeedPage by FeedService.feed, whose
links are made from the query (so no link can drop the window)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.dumps import parse_dump
from recommender.ranking import CandidateIndex, Profile, rank_users

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


def test_a_feed_ranks_its_window_as_the_ranker_does_on_the_same_papers(tmp_path):
    """The service's filters (papers shown on an earlier day, rated papers, papers newer than
    the model) hand the ranker exactly the papers a plain reading of the rules gives: the
    feed's scores and order equal rank_users' over that pool, bit for bit, and the papers
    the model does not know follow in window order."""
    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    feeds = pipeline.FeedService(load_settings(data))
    user_id = store.create_user(db, "ada@example.org", None)
    late = [{"title": f"A paper after the refit {i}", "abstract": "graphs"} for i in range(3)]
    dump = "\n".join(json.dumps(p) for p in late).encode()
    store.record_dump(db, parse_dump(dump, fmt="jsonl", source="late.jsonl"), dump_date=NEW_DAY)
    week = pipeline.FeedQuery(user_id, window="week", page_size=1000)
    ids = list(feeds.feed(db, week).window.paper_ids)
    for pid in ids[0:40:4]:
        pipeline.record_feedback(db, user_id, pid, 1)
    for pid in ids[1:20:6]:
        pipeline.record_feedback(db, user_id, pid, -1)
    store.mark_shown(db, user_id, ids[2:60:5], channel="feed", day="2026-11-01")
    page = feeds.feed(db, week)
    window = list(page.window.paper_ids)
    assert window == ids and len(window) > 100

    bundle = feeds.bundle()
    rated = store.rating_values(db, user_id)
    gone = set(ids[2:60:5])
    shown = [p for p in window if p not in gone and p not in rated]
    row = {int(p): i for i, p in enumerate(bundle.paper_ids)}
    pool = np.array(sorted(row[p] for p in shown if p in row))
    profile = Profile(
        liked=np.sort([row[p] for p, v in rated.items() if v > 0]),
        disliked=np.sort([row[p] for p, v in rated.items() if v < 0]),
    )
    # the neighbourhoods of the whole window, rated papers included, as a feed uses them
    whole = np.array(sorted(row[p] for p in window if p in row))
    index = bundle.index if bundle.index.covers(whole) else CandidateIndex.build(bundle.rec, whole)
    (ranked,) = rank_users(bundle.rec, [profile], candidates=pool, n=len(pool), index=index)
    expected = [(int(bundle.paper_ids[x.pidx]), round(float(x.score), 4)) for x in ranked]
    newer = [p for p in shown if p not in row]
    assert len(newer) == 3 and len(expected) == len(shown) - 3
    got = [(i.paper_id, i.score) for i in page.items]
    assert got[: len(expected)] == expected
    assert [p for p, _ in got[len(expected) :]] == newer
    db.close()
