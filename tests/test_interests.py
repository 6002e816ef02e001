"""Interests (issue 18): each named interest ranked on its own, a paper in its best section,
and nothing new for a person with one interest."""

from __future__ import annotations

import json

import pytest

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.ingest import ingest_paths

from ._corpus import TOPICS

#: Day one: papers to like; day two: the feed's candidates, a few per topic.
OLD, NEW = "2026-11-19", "2026-11-20"


def _dump(path, day, texts):
    path.write_text(
        "".join(
            json.dumps({"id": f"{day}-{n}", "title": t, "abstract": t + " results"}) + "\n"
            for n, t in enumerate(texts)
        )
    )
    return path


@pytest.fixture
def topical(tmp_path):
    """A data dir: every topic's first four papers on day one, the last two on day two
    (plus one paper that speaks of both astro and bio), fitted with TF-IDF."""
    data = tmp_path / "data"
    db = store.open_db(data / "paperfeed.db")
    old = [t for titles in TOPICS.values() for t in titles[:4]]
    new = [t for titles in TOPICS.values() for t in titles[4:]]
    new.append("galaxy telescope survey of protein enzyme folding")
    ingest_paths(db, [_dump(tmp_path / "old.jsonl", OLD, old)], dump_date=OLD)
    ingest_paths(db, [_dump(tmp_path / "new.jsonl", NEW, new)], dump_date=NEW)
    pipeline.refit(db, load_settings(data))
    ids = {row["title"]: row["id"] for row in db["papers"].rows}
    yield db, pipeline.FeedService(load_settings(data)), ids
    db.close()


def _topic(title: str) -> str:
    return next((t for t, titles in TOPICS.items() if title in titles), "both")


def test_each_interest_ranks_its_own_likes_neighbours_first_and_a_paper_appears_once(topical):
    db, feeds, ids = topical
    uid = store.create_user(db, "ada@example.org", None)
    astro = store.create_interest(db, uid, "Sky surveys")
    bio = store.create_interest(db, uid, "Proteins")
    for title in TOPICS["astro"][:2]:
        store.set_rating(db, uid, ids[title], 1, interest_id=astro)
    for title in TOPICS["bio"][:2]:
        store.set_rating(db, uid, ids[title], 1, interest_id=bio)
    page = feeds.feed(db, pipeline.FeedQuery(uid, window="day", day=NEW))
    # The default interest has no likes and no topics: no section of its own.
    assert [(s.name, s.likes) for s in page.sections] == [("Sky surveys", 2), ("Proteins", 2)]
    sky, proteins = page.sections
    # Each section leads with its own likes' neighbours: the two new papers of its topic,
    # and the paper of both topics in one of them only.
    top_sky = [_topic(i.title) for i in sky.items[:3]]
    top_proteins = [_topic(i.title) for i in proteins.items[:3]]
    assert {"astro"} <= set(top_sky) and "astro" not in top_proteins
    assert {"bio"} <= set(top_proteins) and "bio" not in top_sky
    assert set(top_sky[:2]) <= {"astro", "both"} and set(top_proteins[:2]) <= {"bio", "both"}
    assert {i.section for i in sky.items} == {"Sky surveys"}
    listed = [i.paper_id for s in page.sections for i in s.items]
    assert len(listed) == len(set(listed)) == len(page.window.paper_ids)
    # The page's items are the sections taken in turn: each one's best, then each second.
    assert sorted(i.paper_id for i in page.items) == sorted(listed)
    assert [i.section for i in page.items[:4]] == ["Sky surveys", "Proteins"] * 2
    both = ids["galaxy telescope survey of protein enzyme folding"]
    assert listed.count(both) == 1
    # One interest chosen in the picker: its own ranking of the whole window.
    chosen = feeds.feed(db, pipeline.FeedQuery(uid, window="day", day=NEW, interest=bio))
    assert chosen.sections == () and len(chosen.items) == len(page.window.paper_ids)
    assert set(_topic(i.title) for i in chosen.items[:3]) == {"bio", "both"}
    assert chosen.next_args is None and chosen.seen_args["interest"] == bio
    # Moving a like to the other interest re-ranks at once (the memo key changes).
    store.file_rating(db, uid, ids[TOPICS["bio"][0]], astro)
    store.file_rating(db, uid, ids[TOPICS["bio"][1]], astro)
    again = feeds.feed(db, pipeline.FeedQuery(uid, window="day", day=NEW))
    assert [(s.name, s.likes) for s in again.sections] == [("Sky surveys", 4)]


def _page_bytes(feeds, db, uid) -> bytes:
    page = feeds.feed(db, pipeline.FeedQuery(uid, window="day", day=NEW))
    assert page.sections == () and page.interests == ()
    return json.dumps([i.as_dict() for i in page.items]).encode()


def test_a_person_with_one_interest_gets_the_same_ranking_byte_for_byte(topical):
    db, feeds, ids = topical
    uid = store.create_user(db, "ada@example.org", None)
    for title in [*TOPICS["astro"][:2], TOPICS["bio"][0], TOPICS["ml"][1]]:
        store.set_rating(db, uid, ids[title], 1)
    store.set_rating(db, uid, ids[TOPICS["ml"][0]], -1)
    before = _page_bytes(feeds, db, uid)
    # The same as the batch path's (a digest run) for the same query.
    [batch] = feeds.feeds(db, [pipeline.FeedQuery(uid, window="day", day=NEW)])
    assert before == json.dumps([i.as_dict() for i in batch.items]).encode()
    # Naming an interest, filing likes under it, then deleting it: back to one interest,
    # nothing lost, the same bytes.
    named = store.create_interest(db, uid, "Sky surveys")
    store.file_rating(db, uid, ids[TOPICS["astro"][0]], named)
    assert feeds.feed(db, pipeline.FeedQuery(uid, window="day", day=NEW)).sections
    assert store.delete_interest(db, uid, named) == 1
    assert _page_bytes(feeds, db, uid) == before


def test_the_digest_takes_each_interest_in_turn(topical):
    db, feeds, ids = topical
    uid = store.create_user(db, "ada@example.org", None)
    other = store.create_user(db, "grace@example.org", None)
    astro = store.create_interest(db, uid, "Sky surveys")
    store.set_rating(db, uid, ids[TOPICS["astro"][0]], 1, interest_id=astro)
    store.set_rating(db, uid, ids[TOPICS["ml"][0]], 1)  # the default interest
    store.set_rating(db, other, ids[TOPICS["ml"][0]], 1)
    mine, theirs = (
        page.items
        for page in feeds.feeds(
            db,
            [
                pipeline.FeedQuery(uid, window="day", day=NEW, page_size=4),
                pipeline.FeedQuery(other, window="day", day=NEW, page_size=4),
            ],
        )
    )
    assert [i.section for i in mine] == ["General", "Sky surveys", "General", "Sky surveys"]
    assert [_topic(i.title) for i in mine[:2]] == ["ml", "astro"]
    assert {i.section for i in theirs} == {None}


def test_interest_names_and_ownership_are_checked(topical):
    db, _, ids = topical
    uid = store.create_user(db, "ada@example.org", None)
    other = store.create_user(db, "grace@example.org", None)
    first = store.create_interest(db, uid, "  RL   for robotics ")
    assert store.list_interests(db, uid) == [{"id": first, "name": "RL for robotics", "likes": 0}]
    for bad, message in [
        ("", "Give the interest a name"),
        ("x" * 81, "at most 80"),
        ("rl FOR robotics", "already have"),
        ("general", "default interest"),
    ]:
        with pytest.raises(store.InterestError, match=message):
            store.create_interest(db, uid, bad)
    with pytest.raises(store.InterestError, match="No such interest"):
        store.rename_interest(db, other, first, "Mine now")
    with pytest.raises(ValueError, match="no such interest"):
        store.set_rating(db, other, ids[TOPICS["ml"][0]], 1, interest_id=first)
    second = store.create_interest(db, uid, "Diffusion for video")
    store.set_rating(db, uid, ids[TOPICS["ml"][0]], 1, interest_id=second)
    store.rename_interest(db, uid, second, "Video diffusion")
    assert store.merge_interests(db, uid, second, first) == 1
    assert store.list_interests(db, uid) == [{"id": first, "name": "RL for robotics", "likes": 1}]
    # A re-rating keeps its interest unless told otherwise.
    store.set_rating(db, uid, ids[TOPICS["ml"][0]], -1)
    store.set_rating(db, uid, ids[TOPICS["ml"][0]], 1)
    assert store.list_interests(db, uid)[0]["likes"] == 1


@pytest.mark.parametrize("fmt", ["csv", "json", "bibtex"])
def test_export_and_import_carry_each_ratings_interest(topical, fmt):
    from recommender.ratings_io import read_ratings, records_from_rows, write_ratings

    db, _, ids = topical
    ada = store.create_user(db, "ada@example.org", None)
    grace = store.create_user(db, "grace@example.org", None)
    sky = store.create_interest(db, ada, "Sky surveys")
    store.set_rating(db, ada, ids[TOPICS["astro"][0]], 1, interest_id=sky)
    store.set_rating(db, ada, ids[TOPICS["bio"][0]], 1)
    store.set_rating(db, ada, ids[TOPICS["ml"][0]], -1)
    text = write_ratings(records_from_rows(store.ratings_for_export(db, ada)), fmt)
    records = read_ratings(text, fmt)
    assert sorted((r.title, r.interest) for r in records) == sorted(
        [
            (TOPICS["astro"][0], "Sky surveys"),
            (TOPICS["bio"][0], None),
            (TOPICS["ml"][0], None),
        ]
    )
    result = store.import_ratings(
        db, grace, [(r.external_id, r.title, r.value, r.interest) for r in records]
    )
    assert result["imported"] == 3
    [made] = store.list_interests(db, grace)
    assert (made["name"], made["likes"]) == ("Sky surveys", 1)
    filed = store.like_interests_many(db, [grace])[grace]
    assert filed == {ids[TOPICS["astro"][0]]: made["id"]}
    # Importing the same file again changes nothing, nor does a file without interests;
    # a file naming the default interest moves the like there.
    again = store.import_ratings(
        db, grace, [(r.external_id, r.title, r.value, r.interest) for r in records]
    )
    assert (again["imported"], again["unchanged"]) == (0, 3)
    plain = store.import_ratings(db, grace, [(None, TOPICS["astro"][0], 1)])
    assert plain["unchanged"] == 1 and store.list_interests(db, grace)[0]["likes"] == 1
    moved = store.import_ratings(db, grace, [(None, TOPICS["astro"][0], 1, "General")])
    assert moved["imported"] == 1 and store.list_interests(db, grace)[0]["likes"] == 0


def test_an_import_with_an_unusable_interest_name_imports_nothing(topical):
    db, _, ids = topical
    uid = store.create_user(db, "ada@example.org", None)
    items = [(None, TOPICS["astro"][0], 1, "Sky"), (None, TOPICS["bio"][0], 1, "x" * 81)]
    with pytest.raises(store.InterestError, match="at most 80"):
        store.import_ratings(db, uid, items)
    assert store.rating_values(db, uid) == {} and store.list_interests(db, uid) == []
