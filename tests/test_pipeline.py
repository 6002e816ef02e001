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


def test_a_like_puts_the_on_topic_new_paper_first(world, db):
    settings, _, d2, ids = world
    pipeline.record_feedback(db, 1, ids["Graph Neural Networks for Molecules"], 1)
    ranked = pipeline.rank_for_person(db, settings, 1)
    assert titles(ranked) == ["Expressive Power of Graph Networks", "Latent Diffusion for Audio"]
    assert ranked[0].reason == "because you liked “Graph Neural Networks for Molecules”"
    assert ranked[0].dump_id == d2.dump_id
    pipeline.record_feedback(db, 2, ids["Video Diffusion Models"], 1)
    assert titles(pipeline.rank_for_person(db, settings, 2))[0] == "Latent Diffusion for Audio"


def test_keywords_alone_rank_before_any_like(world, db):
    settings, *_ = world
    db.execute("UPDATE users SET keywords = 'diffusion audio' WHERE id = 1")
    ranked = pipeline.rank_for_person(db, settings, 1)
    assert titles(ranked)[0] == "Latent Diffusion for Audio"
    assert ranked[0].reason.startswith("matches:")


def test_nobody_to_go_on_gives_the_dump_in_page_order(world, db):
    settings, *_ = world
    ranked = pipeline.rank_for_person(db, settings, 1)
    assert titles(ranked) == ["Latent Diffusion for Audio", "Expressive Power of Graph Networks"]
    assert {i.reason for i in ranked} == {"new in this dump"}


def test_rated_muted_and_earlier_shown_papers_are_left_out_unless_asked(world, db):
    settings, d1, _, ids = world
    graph, diffusion = ids["Graph Neural Networks for Molecules"], ids["Video Diffusion Models"]
    pipeline.record_feedback(db, 1, graph, 1)
    pipeline.mark_shown(db, 1, [ids["Faster Diffusion Sampling"]], channel="feed", day="2026-01-01")
    db.execute("UPDATE users SET muted_keywords = ? WHERE id = 1", [json.dumps(["citation"])])
    ranked = pipeline.rank_for_person(db, settings, 1, dump_id=d1.dump_id)
    assert titles(ranked) == ["Video Diffusion Models"]
    everything = pipeline.rank_for_person(db, settings, 1, dump_id=d1.dump_id, include_seen=True)
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


def test_a_new_dump_triggers_a_refit_before_ranking(world, db):
    settings, *_ = world
    pipeline.refit(db, settings)
    first = pipeline.model_version(settings)
    store.record_dump(
        db,
        parse_dump(
            dump_bytes(
                [
                    (
                        "Brand New Topic Paper",
                        "Quantum error correction with surface codes. We decode faster.",
                    )
                ]
            ),
            fmt="jsonl",
        ),
        dump_date="2026-11-03",
    )
    ranked = pipeline.rank_for_person(db, settings, 1)
    assert titles(ranked) == ["Brand New Topic Paper"]
    assert pipeline.model_version(settings) != first
    bundles = settings.models_dir / "bundles"
    assert (bundles / pipeline.model_version(settings) / "paper_ids.npy").is_file()
    assert not [p for p in bundles.iterdir() if p.name.startswith(".staging")]


def test_similar_papers_and_onboarding_sample(world, db):
    settings, _, _, ids = world
    similar = pipeline.similar_papers(db, settings, ids["Video Diffusion Models"], k=2)
    assert [s["title"] for s in similar] == [
        "Latent Diffusion for Audio",
        "Faster Diffusion Sampling",
    ]
    sample = pipeline.onboarding_sample(db, settings, k=2)
    topics = {"graph" if "Graph" in s["title"] else "diffusion" for s in sample}
    assert len(sample) == 2 and topics == {"graph", "diffusion"}


def test_rank_dump_for_everyone_stores_each_persons_top(world, db):
    settings, _, d2, ids = world
    pipeline.record_feedback(db, 1, ids["Graph Neural Networks for Molecules"], 1)
    pipeline.record_feedback(db, 2, ids["Video Diffusion Models"], 1)
    assert pipeline.rank_dump_for_everyone(db, settings, d2.dump_id, top_n=1) == 2
    rows = db.execute(
        "SELECT user_id, paper_id, rank FROM feed_rankings ORDER BY user_id"
    ).fetchall()
    assert rows == [
        (1, ids["Expressive Power of Graph Networks"], 1),
        (2, ids["Latent Diffusion for Audio"], 1),
    ]


def test_unknown_person_is_an_error(world, db):
    settings, *_ = world
    with pytest.raises(LookupError):
        pipeline.rank_for_person(db, settings, 999)


def test_batch_ranking_equals_ranking_each_person_alone(tmp_path):
    """The digest ranks everyone in one batch over a shared pool; the feed ranks one person
    over their own papers. Both must give each person the same papers, order and scores."""
    import random

    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    settings = load_settings(data)
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
        requests.append(pipeline.RankRequest(uid, own, limit=rng.choice([5, 15]), min_score=None))
    batch = pipeline.rank_papers_for_people(db, settings, requests)
    for request, together in zip(requests, batch, strict=True):
        alone = pipeline.rank_papers_for_person(
            db, settings, request.user_id, list(request.paper_ids), limit=request.limit
        )
        assert len(alone) == request.limit
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
    uid = store.create_user(db, "ada@example.org", "x")
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 1 LIMIT 40")]
    for paper in old[:10]:
        pipeline.record_feedback(db, uid, paper, 1)

    def ranked():
        items = pipeline.rank_for_person(db, settings, uid)
        return [(i.paper_id, i.score, i.reason) for i in items]

    def uncached():
        pipeline._rank_cache.clear()
        rec = pipeline.load_bundle(settings).rec
        rec._sim_cache.clear()
        rec._floor_values = None
        return ranked()

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


def test_rating_todays_papers_keeps_similarity_rows_against_the_whole_dump(tmp_path):
    """A like takes a paper out of the person's candidates; the rows kept for re-ranking stay
    those of the dump (one set), so the next re-rank computes only the new like's row."""
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    db = store.open_db(data / "paperfeed.db")
    settings = load_settings(data)
    uid = store.create_user(db, "ada@example.org", "x")
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id = 1 LIMIT 10")]
    for paper in old:
        pipeline.record_feedback(db, uid, paper, 1)
    today = [i.paper_id for i in pipeline.rank_for_person(db, settings, uid, limit=5)]
    rec = pipeline.load_bundle(settings).rec
    for paper in today[:3]:
        pipeline.record_feedback(db, uid, paper, 1)
        pipeline.rank_for_person(db, settings, uid)
    assert len(rec._sim_cache) == 1
    kept = next(iter(rec._sim_cache.values()))
    assert set(old) | set(today[:3]) <= {
        int(pipeline.load_bundle(settings).paper_ids[r]) for r in kept
    }


def test_the_model_version_follows_every_publish(world, db):
    settings, *_ = world
    assert pipeline.model_version(settings) is None
    first = pipeline.refit(db, settings)["version"]
    assert pipeline.model_version(settings) == first
    second = pipeline.refit(db, settings)["version"]
    assert second != first and pipeline.model_version(settings) == second
    (settings.models_dir / "CURRENT").unlink()
    assert pipeline.model_version(settings) is None


def test_kept_dump_papers_belong_to_their_database_and_dump(tmp_path):
    """Two databases whose first dump has the same id but other papers: each gets its own."""
    lists = []
    for name, papers in (("a", TOPICS["graph"]), ("b", TOPICS["diffusion"][:2])):
        db = store.open_db(tmp_path / name / "paperfeed.db")
        dump = parse_dump(dump_bytes(papers), fmt="jsonl", source=f"{name}.jsonl")
        dump_id = store.record_dump(db, dump, dump_date="2026-11-01").dump_id
        assert dump_id == 1
        kept = pipeline._dump_new_papers(db, dump_id)
        assert list(kept) == store.dump_new_paper_ids(db, dump_id)
        assert pipeline._dump_new_papers(db, 1) is kept
        rows = store.papers_by_ids(db, kept)
        titles = {row["title"] for row in rows.values()}
        assert titles == {t for t, _ in papers}
        lists.append(len(kept))
        later = parse_dump(dump_bytes([TOPICS["graph"][0]]), fmt="jsonl", source="later.jsonl")
        second = store.record_dump(db, later, dump_date="2026-11-02").dump_id
        assert list(pipeline._dump_new_papers(db, second)) == store.dump_new_paper_ids(db, second)
    assert lists == [3, 2]
