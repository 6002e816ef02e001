"""Followed authors: their new papers top the day, matched by name with accents folded."""

from __future__ import annotations

import json

import pytest

from recommender import pipeline, store
from recommender.authors import author_key
from recommender.config import load_settings
from recommender.dumps import parse_dump

from ._web import post, sign_up, user_id


def day_feed(feeds, db, uid, dump, **options):
    """The person's feed of one dump's day (``?window=YYYY-MM-DD``)."""
    query = pipeline.FeedQuery(uid, window="day", day=dump.dump_date, **options)
    return list(feeds.feed(db, query).items)


def test_author_keys_fold_accents_case_and_spacing():
    assert author_key("Jörg  Müller") == author_key("jorg muller") == "jorg muller"
    assert author_key("MÜLLER") == author_key("Muller")
    assert author_key("Søren Østergaard") == "soren ostergaard"
    assert author_key("Jean-Luc Picard") == "jean luc picard"


DAY = [
    {
        "title": "Video Diffusion Models",
        "abstract": "Diffusion models generate video by denoising frames with a temporal denoiser.",
        "authors": ["Grace Hopper"],
    },
    {
        "title": "Faster Diffusion Sampling",
        "abstract": "We accelerate diffusion model sampling with fewer denoising steps.",
        "authors": ["Alan Turing"],
    },
    {
        "title": "Message Passing on Citation Graphs",
        "abstract": "Graph neural networks with message passing classify citation graph nodes.",
        "authors": ["Jörg Müller", "Ada Lovelace"],
    },
]


@pytest.fixture
def day(data_dir, db):
    body = "\n".join(json.dumps(p) for p in DAY).encode()
    dump = store.record_dump(
        db, parse_dump(body, fmt="jsonl", source="d.jsonl"), dump_date="2026-11-02"
    )
    db["users"].insert({"email": "ada@example.org", "created_at": "2026-11-01T00:00:00"})
    ids = {row["title"]: row["id"] for row in db.query("SELECT id, title FROM papers")}
    settings = load_settings(data_dir)
    pipeline.refit(db, settings)
    return pipeline.FeedService(settings), dump, ids


def test_a_followed_authors_new_paper_tops_the_day(day, db):
    feeds, dump, ids = day
    pipeline.record_feedback(db, 1, ids["Video Diffusion Models"], 1)
    before = [i.title for i in day_feed(feeds, db, 1, dump)]
    assert before == ["Faster Diffusion Sampling", "Message Passing on Citation Graphs"]
    store.follow_author(db, 1, "Jorg Muller")  # typed without the accents
    ranked = day_feed(feeds, db, 1, dump)
    assert [i.title for i in ranked] == before[::-1]
    assert ranked[0].reason == "by Jörg Müller, whom you follow"
    assert (ranked[0].reason_kind, ranked[0].followed_author) == ("followed", "Jörg Müller")
    # even with a score bar it would not pass, and on a page of one
    top = day_feed(feeds, db, 1, dump, page_size=1, min_score=1e9)
    assert [i.title for i in top] == ["Message Passing on Citation Graphs"]


def test_a_muted_word_hides_a_followed_paper_unless_the_person_says_so(day, db):
    feeds, dump, ids = day
    store.follow_author(db, 1, "Ada Lovelace")
    store.set_muted_keywords(db, 1, ["citation"])
    assert "Message Passing on Citation Graphs" not in [
        i.title for i in day_feed(feeds, db, 1, dump)
    ]
    store.set_follows_pass_muted(db, 1, True)
    ranked = day_feed(feeds, db, 1, dump)
    assert ranked[0].title == "Message Passing on Citation Graphs"
    assert ranked[0].reason == "by Ada Lovelace, whom you follow"


def test_follow_from_a_paper_page_and_manage_follows_in_settings(day, db, app, client):
    feeds, dump, ids = day
    sign_up(client, "bob@example.org")
    bob = user_id(db, "bob@example.org")
    paper = ids["Message Passing on Citation Graphs"]
    page = client.get(f"/papers/{paper}").get_data(as_text=True)
    assert 'action="/follows"' in page and "Follow Jörg Müller" in page
    # no state change without the form's token, nor on GET
    assert client.post("/follows", data={"name": "Jörg Müller"}).status_code == 400
    assert client.get("/follows").status_code in (404, 405)
    response = post(client, "/follows", {"name": "Jörg Müller", "next": f"/papers/{paper}"})
    assert response.status_code == 302 and response.headers["Location"] == f"/papers/{paper}"
    assert [f["name"] for f in store.followed_authors(db, bob)] == ["Jörg Müller"]
    page = client.get(f"/papers/{paper}").get_data(as_text=True)
    assert "Following Jörg Müller" in page
    settings = client.get("/settings").get_data(as_text=True)
    assert 'id="follows"' in settings and "Jörg Müller" in settings
    post(client, "/follows/remove", {"author_key": "jorg muller"})
    assert store.followed_authors(db, bob) == []
    post(client, "/settings/follows", {"follows_pass_muted": "1"})
    assert store.get_user(db, bob)["follows_pass_muted"] == 1
