"""Near-duplicates stored before ingest merged them become one paper, nothing rated lost:
the real pair of the 2026-11-18 sample dump, as two rows of a real SQLite file."""

from __future__ import annotations

import json

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.dumps import normalise_title
from recommender.ingest import ingest_paths

from .conftest import SAMPLE_DUMPS
from .test_cli import run

TRP = "TRP: Trained Rank Pruning for Efficient Deep Neural Networks"
TRAINED = "Trained Rank Pruning for Efficient Deep Neural Networks"


def an_old_database(data_dir):
    """The sample dump of 2026-11-18 ingested (it links TRP to TRAINED), then TRP stored as
    a second paper of a later dump, as a database filled before ingest merged titles."""
    db = store.open_db(data_dir / "paperfeed.db")
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt"])
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-20_004_993749e1571ba9fe.txt"])
    trained = db.execute("SELECT id, first_dump_id FROM papers WHERE title = ?", [TRAINED])
    kept, first_dump = trained.fetchone()
    later = store.latest_dump(db)["id"]
    dup = (
        db["papers"]
        .insert(
            {
                "norm_title": normalise_title(TRP),
                "external_id": "arxiv:1812.02402",
                "arxiv_id": "1812.02402",
                "title": TRP,
                "abstract": "We propose Trained Rank Pruning (TRP).",
                "authors": json.dumps(["Yuhui Xu", "Yuxi Li"]),
                "first_dump_id": later,
                "created_at": "2026-11-20T08:00:00Z",
            }
        )
        .last_pk
    )
    with db.conn:  # linked and indexed as record_dump does
        db.execute("INSERT INTO dump_papers VALUES (?, ?, 999)", [later, dup])
        db.execute(
            "INSERT INTO papers_fts(rowid, title, abstract, authors)"
            " SELECT id, title, abstract, authors FROM papers_search WHERE id = ?",
            [dup],
        )
    people = {n: store.create_user(db, f"{n}@example.org", None) for n in ("ada", "bob", "cy")}
    store.set_rating(db, people["ada"], dup, 1)  # liked only the duplicate
    store.set_rating(db, people["bob"], kept, -1)  # disliked one, liked the other
    store.set_rating(db, people["bob"], dup, 1)
    store.set_rating(db, people["cy"], kept, 1)  # liked one, disliked the other
    store.set_rating(db, people["cy"], dup, -1)
    store.mark_shown(db, people["ada"], [dup], channel="digest", day="2026-11-20")
    return db, kept, dup, first_dump, people


def test_dedupe_merges_the_stored_trp_pair_and_keeps_every_like(data_dir):
    db, kept, dup, first_dump, people = an_old_database(data_dir)
    assert [(k, d) for k, d in store.find_near_duplicates(db)] == [(kept, dup)]
    db.close()

    result = run(data_dir, "dedupe", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"kept": kept, "merged": dup, "kept_title": TRAINED, "merged_title": TRP}
    ]

    db = store.open_db(data_dir / "paperfeed.db")
    assert db.execute("SELECT count(*) FROM papers WHERE id = ?", [dup]).fetchone()[0] == 0
    assert {
        r["user_id"]: r["value"]
        for r in db.query("SELECT user_id, value FROM ratings WHERE paper_id = ?", [kept])
    } == {people["ada"]: 1, people["bob"]: 1, people["cy"]: 1}
    assert db.execute("SELECT count(*) FROM ratings WHERE paper_id = ?", [dup]).fetchone()[0] == 0
    assert list(
        db.query("SELECT user_id, channel FROM impressions WHERE paper_id = ?", [kept])
    ) == [{"user_id": people["ada"], "channel": "digest"}]
    paper = store.get_paper(db, kept)
    assert paper["title"] == TRAINED and paper["arxiv_id"] == "1812.02402"  # gained its id
    assert paper["authors"] == ["Yuhui Xu", "Yuxi Li"] and paper["first_dump_id"] == first_dump
    assert {d["id"] for d in paper["dumps"]} == {d["id"] for d in store.list_dumps(db)}
    hits = [h["id"] for h in store.search_papers(db, "Trained Rank Pruning")]
    assert hits[0] == kept and dup not in hits
    db.close()

    again = run(data_dir, "dedupe")
    assert again.returncode == 0 and again.stdout.strip() == "0 near-duplicate papers merged"


def test_a_refit_merges_first_so_the_model_holds_one_paper(data_dir):
    db, kept, dup, *_ = an_old_database(data_dir)
    report = pipeline.refit(db, load_settings(data_dir))
    assert report["merged"] == 1
    bundle = pipeline.FeedService(load_settings(data_dir)).bundle()
    assert kept in bundle.pidx_of and dup not in bundle.pidx_of
    db.close()


def test_a_merge_stamps_the_ratings_it_moves_as_changed(data_dir):
    """A moved rating is a changed one: a refit deciding whether its tuned blend weights
    still hold counts it (refit.py), however old its stamp was."""
    db, kept, dup, *_ = an_old_database(data_dir)
    with db.conn:
        db.execute("UPDATE ratings SET updated_at = '2026-01-01T00:00:00+00:00'")
    before = "2026-06-01T00:00:00+00:00"
    assert store.all_ratings_and_changes(db, before)[1] == 0
    store.merge_near_duplicates(db)
    rows, since = store.all_ratings_and_changes(db, before)
    assert sorted(p for _, p, _ in rows) == [kept] * 3 and since == 3
    db.close()
