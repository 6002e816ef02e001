"""The pipeline joins the real database with the real models."""

from __future__ import annotations

import json

import pytest

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.dumps import parse_dump

TOPICS = {
    "graph": [
        (
            "Graph Neural Networks for Molecules",
            "We learn message passing on molecular graphs. "
            "Graph neural networks predict molecular properties from atoms and bonds.",
        ),
        (
            "Message Passing on Citation Graphs",
            "Graph neural networks with message passing "
            "classify nodes in citation graphs and outperform spectral baselines.",
        ),
        (
            "Expressive Power of Graph Networks",
            "We study the expressive power of message passing "
            "graph neural networks through the Weisfeiler Lehman test on graphs.",
        ),
    ],
    "diffusion": [
        (
            "Video Diffusion Models",
            "Diffusion models generate video by denoising frames. "
            "We scale video diffusion to long clips with a temporal denoiser.",
        ),
        (
            "Faster Diffusion Sampling",
            "We accelerate diffusion model sampling with fewer "
            "denoising steps while keeping image quality of diffusion generators.",
        ),
        (
            "Latent Diffusion for Audio",
            "Latent diffusion models synthesise audio by denoising "
            "compressed latents; diffusion sampling yields high fidelity speech.",
        ),
    ],
}


def dump_bytes(papers) -> bytes:
    return "\n".join(json.dumps({"title": t, "abstract": a}) for t, a in papers).encode()


@pytest.fixture
def world(data_dir, db):
    """Day one: two topics. Day two: one new paper per topic."""
    day1 = [TOPICS["graph"][0], TOPICS["graph"][1], TOPICS["diffusion"][0], TOPICS["diffusion"][1]]
    day2 = [TOPICS["diffusion"][2], TOPICS["graph"][2]]
    d1 = store.record_dump(
        db, parse_dump(dump_bytes(day1), fmt="jsonl", source="d1.jsonl"), dump_date="2026-11-01"
    )
    d2 = store.record_dump(
        db, parse_dump(dump_bytes(day2), fmt="jsonl", source="d2.jsonl"), dump_date="2026-11-02"
    )
    for email in ("ada@example.org", "bob@example.org"):
        db["users"].insert({"email": email, "created_at": "2026-11-01T00:00:00"})
    ids = {row["title"]: row["id"] for row in db.query("SELECT id, title FROM papers")}
    return load_settings(data_dir), d1, d2, ids


def titles(items):
    return [i.title for i in items]


def newest_day(feeds, db, uid, *, day=None, **options):
    """The person's feed of the newest day (``?window=today``), or of ``day``."""
    window = {"window": "day", "day": day} if day else {"window": "today"}
    return list(feeds.feed(db, pipeline.FeedQuery(uid, **window, **options)).items)


def these_papers(feeds, db, uid, paper_ids, limit=20):
    """An explicit set of papers ranked for the person (the search's window)."""
    query = pipeline.FeedQuery(uid, window="papers", papers=tuple(paper_ids), page_size=limit)
    return list(feeds.feed(db, query).items)


@pytest.fixture
def feeds(world, db):
    """A model published for the world's papers (as the scheduler does after an ingest) and a
    fresh serving object over it: readers never fit."""
    settings, *_ = world
    pipeline.refit(db, settings)
    return pipeline.FeedService(settings)


def bundle_count(settings) -> int:
    return len(list((settings.models_dir / "bundles").glob("b*")))


def test_a_like_puts_the_on_topic_new_paper_first(world, db, feeds):
    settings, _, d2, ids = world
    pipeline.record_feedback(db, 1, ids["Graph Neural Networks for Molecules"], 1)
    ranked = newest_day(feeds, db, 1)
    assert titles(ranked) == ["Expressive Power of Graph Networks", "Latent Diffusion for Audio"]
    assert ranked[0].reason == "because you liked “Graph Neural Networks for Molecules”"
    assert ranked[0].dump_id == d2.dump_id
    pipeline.record_feedback(db, 2, ids["Video Diffusion Models"], 1)
    assert titles(newest_day(feeds, db, 2))[0] == "Latent Diffusion for Audio"


def test_keywords_alone_rank_before_any_like(world, db, feeds):
    settings, *_ = world
    db.execute("UPDATE users SET keywords = 'diffusion audio' WHERE id = 1")
    ranked = newest_day(feeds, db, 1)
    assert titles(ranked)[0] == "Latent Diffusion for Audio"
    assert ranked[0].reason == "matches ‘diffusion audio’"
    assert ranked[0].reason_kind == "topic"


def test_nobody_to_go_on_gives_the_dump_in_page_order(world, db, feeds):
    settings, *_ = world
    ranked = newest_day(feeds, db, 1)
    assert titles(ranked) == ["Latent Diffusion for Audio", "Expressive Power of Graph Networks"]
    assert {i.reason for i in ranked} == {"new in this dump"}


def test_rated_muted_and_earlier_shown_papers_are_left_out_unless_asked(world, db, feeds):
    settings, d1, _, ids = world
    graph, diffusion = ids["Graph Neural Networks for Molecules"], ids["Video Diffusion Models"]
    pipeline.record_feedback(db, 1, graph, 1)
    pipeline.mark_shown(db, 1, [ids["Faster Diffusion Sampling"]], channel="feed", day="2026-01-01")
    db.execute("UPDATE users SET muted_keywords = ? WHERE id = 1", [json.dumps(["citation"])])
    ranked = newest_day(feeds, db, 1, day="2026-11-01")
    assert titles(ranked) == ["Video Diffusion Models"]
    everything = newest_day(feeds, db, 1, day="2026-11-01", include_seen=True)
    assert [(i.paper_id, i.rating) for i in everything][-1] == (graph, 1)
    assert "Message Passing on Citation Graphs" not in titles(everything)
    assert diffusion in [i.paper_id for i in everything]


def test_undo_removes_the_rating(world, db):
    settings, _, _, ids = world
    paper = ids["Video Diffusion Models"]
    pipeline.record_feedback(db, 1, paper, -1)
    assert store.rating_values(db, 1) == {paper: -1}
    pipeline.record_feedback(db, 1, paper, None)
    assert store.rating_values(db, 1) == {}


def test_a_request_never_fits_papers_newer_than_the_model_follow_the_ranked_ones(world, db, feeds):
    settings, _, d2, ids = world
    pipeline.record_feedback(db, 1, ids["Graph Neural Networks for Molecules"], 1)
    first = feeds.bundle().name
    newer = store.record_dump(
        db,
        parse_dump(
            dump_bytes(
                [
                    ("Brand New Graph Paper", "Graph neural networks with message passing."),
                    ("Brand New Topic Paper", "Quantum error correction with surface codes."),
                ]
            ),
            fmt="jsonl",
        ),
        dump_date="2026-11-03",
    )
    # the newest dump is unknown to the model: shown in page order, nothing fitted
    ranked = newest_day(feeds, db, 1)
    assert titles(ranked) == ["Brand New Graph Paper", "Brand New Topic Paper"]
    assert {i.reason for i in ranked} == {"new in this dump"}
    # a list mixing known and unknown papers: ranked ones first, the new ones after them
    mixed = store.dump_new_paper_ids(db, d2.dump_id) + store.dump_new_paper_ids(db, newer.dump_id)
    items = these_papers(feeds, db, 1, mixed)
    assert titles(items)[0] == "Expressive Power of Graph Networks"
    assert [i.reason for i in items[-2:]] == ["new since the model was fitted"] * 2
    assert feeds.bundle().name == first and bundle_count(settings) == 1
    assert feeds.status(db)["papers_behind"] == 2
    # the scheduler's refit publishes; the same service picks it up without a restart
    pipeline.refit(db, settings)
    assert feeds.bundle().name != first and feeds.status(db)["papers_behind"] == 0
    assert titles(newest_day(feeds, db, 1))[0] == "Brand New Graph Paper"
    bundles = settings.models_dir / "bundles"
    assert (bundles / feeds.bundle().name / "paper_ids.npy").is_file()
    assert not [p for p in bundles.iterdir() if p.name.startswith(".staging")]


def test_similar_papers_and_onboarding_sample(world, db, feeds):
    settings, _, _, ids = world
    similar = feeds.similar_papers(db, ids["Video Diffusion Models"], k=2)
    assert [s["title"] for s in similar] == [
        "Latent Diffusion for Audio",
        "Faster Diffusion Sampling",
    ]
    sample = feeds.onboarding_sample(db, k=2)
    topics = {"graph" if "Graph" in s["title"] else "diffusion" for s in sample}
    assert len(sample) == 2 and topics == {"graph", "diffusion"}


def test_unknown_person_is_an_error(world, db, feeds):
    settings, *_ = world
    with pytest.raises(LookupError):
        newest_day(feeds, db, 999)


def test_batch_ranking_equals_ranking_each_person_alone(tmp_path):
    """The digest ranks everyone in one batch over a shared pool; the feed ranks one person
    over their own papers. Both must give each person the same papers, order and scores."""
    import random

    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    feeds = pipeline.FeedService(load_settings(data))
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 1")]
    new = store.dump_new_paper_ids(db, 2)
    rng = random.Random(7)
    requests = []
    for n in range(8):
        uid = store.create_user(db, f"p{n}@example.org", "x")
        for paper in rng.sample(old, 1 + 4 * n):
            store.set_rating(db, uid, paper, 1 if rng.random() < 0.75 else -1)
        if n % 3 == 0:  # rated and earlier-shown papers inside the pool
            store.set_rating(db, uid, rng.choice(new), -1)
            store.mark_shown(db, uid, rng.sample(new, 5), channel="feed", day="2026-01-01")
        if n == 2:
            db.execute("UPDATE users SET keywords = 'video generation' WHERE id = ?", [uid])
        if n == 4:
            db.execute("UPDATE users SET muted_keywords = ? WHERE id = ?", ['["agent"]', uid])
        own = sorted(rng.sample(new, rng.randint(20, len(new))))
        size = rng.choice([5, 15])
        requests.append(pipeline.FeedQuery(uid, window="papers", papers=tuple(own), page_size=size))
    batch = feeds.feeds(db, requests)
    for request, page in zip(requests, batch, strict=True):
        together = page.items
        alone = feeds.feed(db, request).items
        assert len(alone) == request.page_size
        assert [i.paper_id for i in together] == [i.paper_id for i in alone]
        assert [i.score for i in together] == pytest.approx([i.score for i in alone], abs=1e-3)
        assert [i.reason for i in together] == [i.reason for i in alone]
    db.close()


def test_the_ranking_cache_never_serves_a_stale_ranking(tmp_path):
    """Feed loads reuse a person's ranking while nothing it depends on changed; every
    rating, undo, keyword change and refit must show at once, as if nothing were cached."""
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    settings = load_settings(data)
    feeds = pipeline.FeedService(settings)
    uid = store.create_user(db, "ada@example.org", "x")
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 1 LIMIT 40")]
    for paper in old[:10]:
        pipeline.record_feedback(db, uid, paper, 1)

    def ranked(service=feeds):
        items = newest_day(service, db, uid)
        return [(i.paper_id, i.score, i.reason) for i in items]

    def uncached():
        return ranked(pipeline.FeedService(settings))  # nothing kept: a fresh serving object

    first = ranked()
    assert ranked() == first == uncached()
    steps = [
        lambda: pipeline.record_feedback(db, uid, old[20], 1),
        lambda: pipeline.record_feedback(db, uid, old[21], -1),
        lambda: pipeline.record_feedback(db, uid, old[20], None),
        lambda: pipeline.record_feedback(db, uid, first[0][0], -1),
        lambda: db.execute("UPDATE users SET keywords = 'robot' WHERE id = ?", [uid]),
        lambda: pipeline.refit(db, settings),
    ]
    seen = [first]
    for step in steps:
        step()
        now = ranked()
        assert now == uncached()
        seen.append(now)
    assert len({tuple(s) for s in seen}) >= 4  # the steps really changed the ranking
    db.close()


def test_neighbourhoods_stored_at_publish_equal_a_fresh_computation(tmp_path):
    """The bundle holds the served papers' neighbourhoods, computed once by the refit; they
    are what a request would compute itself, and ranking with them changes nothing."""
    import numpy as np

    from recommender.ranking import CandidateIndex, Profile, rank_users
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    bundle = pipeline.FeedService(load_settings(data)).bundle()
    assert (
        pipeline.SERVED_DAYS >= pipeline.NEW_WINDOW_CAP_DAYS >= max(pipeline.WINDOW_DAYS.values())
    )
    served = bundle.rows_of(store.recent_paper_ids(db, pipeline.SERVED_DAYS))
    assert len(served) and np.array_equal(bundle.index.candidates, np.unique(served))
    fresh = CandidateIndex.build(bundle.rec, served)
    stored = bundle.index.neighbours_t.tocsr()
    assert (stored != fresh.neighbours_t.tocsr()).nnz == 0  # same entries, same values
    k = min(bundle.rec.content.k, bundle.rec.n_items - 1)
    assert np.all(np.diff(stored.tocsc().indptr) == k)  # each candidate: its k nearest
    today = bundle.rows_of(store.dump_new_paper_ids(db, 2))
    old = bundle.rows_of(
        [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 1")]
    )
    profile = Profile(liked=old[:12], disliked=old[12:15])
    with_stored = rank_users(bundle.rec, [profile], candidates=today, n=20, index=bundle.index)
    assert with_stored == rank_users(bundle.rec, [profile], candidates=today, n=20)
    db.close()


def test_the_served_bundle_follows_every_publish(world, db):
    settings, *_ = world
    feeds = pipeline.FeedService(settings)
    assert feeds.bundle() is None
    assert newest_day(feeds, db, 1)  # no model yet: the dump in page order, nothing fitted
    assert feeds.bundle() is None and not settings.models_dir.joinpath("bundles").exists()
    first = pipeline.refit(db, settings)["version"]
    assert feeds.bundle().name == first
    second = pipeline.refit(db, settings)["version"]
    assert second != first and feeds.bundle().name == second
    (settings.models_dir / "CURRENT").unlink()
    assert feeds.bundle() is None


def test_kept_windows_belong_to_their_database(tmp_path):
    """Two databases whose first dump has the same id and date but other papers: each feed
    gets its own papers, even from one serving object."""
    feeds = pipeline.FeedService(load_settings(tmp_path))
    lists = []
    for name, papers in (("a", TOPICS["graph"]), ("b", TOPICS["diffusion"][:2])):
        db = store.open_db(tmp_path / name / "paperfeed.db")
        db["users"].insert({"email": "ada@example.org", "created_at": "2026-11-01T00:00:00"})
        dump = parse_dump(dump_bytes(papers), fmt="jsonl", source=f"{name}.jsonl")
        assert store.record_dump(db, dump, dump_date="2026-11-01").dump_id == 1
        kept = newest_day(feeds, db, 1)
        assert titles(kept) == [t for t, _ in papers]
        assert newest_day(feeds, db, 1) == kept
        lists.append(len(kept))
        later = parse_dump(dump_bytes([TOPICS["graph"][0]]), fmt="jsonl", source="later.jsonl")
        store.record_dump(db, later, dump_date="2026-11-02")
        assert titles(newest_day(feeds, db, 1)) == ([] if name == "a" else [TOPICS["graph"][0][0]])
        db.close()
    assert lists == [3, 2]


BACKFILL = [
    (
        "Equivariant Graph Networks for Crystals",
        "Message passing graph neural networks respect crystal symmetry and predict "
        "material properties from atoms.",
    ),
    (
        "Consistency Models for Fast Diffusion",
        "We distil diffusion models into consistency models that sample images in one "
        "denoising step.",
    ),
]


def backfilled(world, db):
    """``world``'s first day seen by ada on 2026-11-02, with a like; on the next day, its
    second dump arrives with a backfill of a dump dated two months before, and a refit
    publishes the lot."""
    settings, d1, d2, ids = world
    uid = 1
    db.execute(
        "UPDATE dumps SET ingested_at = '2026-11-01T08:00:00+00:00' WHERE id = ?", [d1.dump_id]
    )
    db.execute(
        "UPDATE dumps SET ingested_at = '2026-11-03T07:00:00+00:00' WHERE id = ?", [d2.dump_id]
    )
    db.execute(
        "INSERT INTO impressions (user_id, paper_id, channel, shown_on) VALUES (?, ?, 'feed', ?)",
        [uid, ids[TOPICS["graph"][0][0]], "2026-11-02"],
    )
    db.conn.commit()
    pipeline.record_feedback(db, uid, ids[TOPICS["graph"][0][0]], 1)
    old = store.record_dump(
        db,
        parse_dump(dump_bytes(BACKFILL), fmt="jsonl", source="old.jsonl"),
        dump_date="2026-09-01",
    )
    db.execute(
        "UPDATE dumps SET ingested_at = '2026-11-03T08:00:00+00:00' WHERE id = ?", [old.dump_id]
    )
    db.conn.commit()
    pipeline.refit(db, settings)
    backfill = {
        r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = ?", [old.dump_id])
    }
    assert len(backfill) == len(BACKFILL)
    return settings, uid, backfill


def test_a_backfill_of_old_dumps_is_browsed_by_day_not_shown_as_new(world, db):
    """Papers of a dump dated long before the newest arrive, but are not news: neither the
    "new" window nor the next digest holds them, so a feed never searches the
    neighbourhoods of papers the published model does not index (a whole corpus of them,
    the day after a bulk ingest: 84.6 s for one request at 50,728 papers). Their day still
    opens, ranked, with neighbourhoods searched for that day alone."""
    from datetime import UTC, datetime

    settings, uid, backfill = backfilled(world, db)
    feeds = pipeline.FeedService(settings)
    bundle = feeds.bundle()
    assert not bundle.index.covers(bundle.rows_of(sorted(backfill)))  # not served
    now = datetime(2026, 11, 3, 9, tzinfo=UTC)
    page = feeds.feed(db, pipeline.FeedQuery(uid), now=now)
    assert page.window.kind == "new" and page.window.since == "2026-11-02"
    day2 = {r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 2")}
    assert set(page.window.paper_ids) == day2  # the new dump's papers, not the backfill
    assert len(feeds.indexes) == 0  # the published neighbourhoods served it
    assert store.papers_arrived_since(db, "2026-11-02") != list(page.window.paper_ids)
    since = {uid: "2026-11-02T00:00:00+00:00"}
    assert set(store.digest_candidates(db, since)[uid]) >= backfill  # without the bound...
    found = store.digest_candidates(db, since, dated_within=pipeline.NEW_WINDOW_CAP_DAYS)[uid]
    assert found and not set(found) & backfill  # ...and with it, as the digest asks
    digest = feeds.feed(db, pipeline.FeedQuery(uid, window="digest", since=since[uid]), now=now)
    assert set(digest.window.paper_ids) == set(found) and len(feeds.indexes) == 0
    day = feeds.feed(db, pipeline.FeedQuery(uid, window="day", day="2026-09-01"), now=now)
    assert {i.paper_id for i in day.items} == backfill
    assert all(i.score is not None for i in day.items)
    (index,) = feeds.indexes.values()
    k = min(bundle.rec.content.k, bundle.rec.n_items - 1)
    assert index.neighbours_t.nnz == k * len(backfill)  # searched: each its k nearest


def test_a_window_past_the_request_search_budget_is_ranked_without_searching(world, db):
    """A request never searches more than its budget of similarities: past it, the
    candidates the published model indexes keep their stored neighbourhoods and the others
    are ranked on their other signals."""
    import numpy as np

    from recommender.features import CandidateIndex

    settings, uid, backfill = backfilled(world, db)
    feeds = pipeline.FeedService(settings, search_cells=1)
    bundle = feeds.bundle()
    old = bundle.rows_of(sorted(backfill))
    served = bundle.index.candidates
    both = np.sort(np.concatenate([old, served]))
    part = CandidateIndex.published_part(bundle.rec, both, bundle.index)
    at = part.positions(served)
    stored = bundle.index.neighbours_t.tocsr()
    assert part.neighbours_t.nnz == stored.nnz  # every published entry, zeros included
    assert (part.neighbours_t.tocsr()[:, at] != stored).nnz == 0  # in its column
    assert part.neighbours_t.tocsr()[:, part.positions(old)].nnz == 0  # none searched
    assert np.array_equal(part.floor[at], bundle.index.floor)
    ids = tuple(sorted(backfill | set(bundle.paper_ids[served].tolist())))
    query = pipeline.FeedQuery(uid, window="papers", papers=ids, page_size=len(ids))
    page = feeds.feed(db, query)
    ranked = {i.paper_id for i in page.items}
    assert backfill <= ranked  # ranked all the same
    (index,) = feeds.indexes.values()
    assert index.neighbours_t.nnz == bundle.index.neighbours_t.nnz  # nothing searched
    wide = pipeline.FeedService(settings)  # the default budget searches these few
    wide.feed(db, query)
    (searched,) = wide.indexes.values()
    assert searched.neighbours_t.nnz > index.neighbours_t.nnz
