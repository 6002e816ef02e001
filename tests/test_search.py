"""Search finds what people type: accented authors, hyphenated terms, any-word fallback,
authors before prefix hits, the person's own score as the tie-break, muted papers marked."""

from __future__ import annotations

import json

import pytest

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.dumps import parse_dump
from recommender.search import search_for_person
from tests._migrations import database_before

FILLER = "We study a problem and our method works well on benchmarks in practice."


def dump(*papers: dict) -> bytes:
    return "\n".join(json.dumps({"abstract": FILLER} | p) for p in papers).encode()


def store_papers(db, *papers: dict) -> None:
    store.record_dump(db, parse_dump(dump(*papers), fmt="jsonl"), dump_date="2026-11-20")


def titles(db, query: str) -> list[str]:
    return [r["title"] for r in store.search_papers(db, query)]


@pytest.fixture
def corpus(db):
    store_papers(
        db,
        {"title": "Accented Authors", "authors": ["Jörg Müller", "José García", "Kenji Tanaka"]},
        {"title": "Sim-to-Real Transfer for Robot Grasping"},
        # Every word of "sim-to-real" as a prefix, but not the phrase: the old AND of
        # prefixes ranked this one first.
        {
            "title": "Realizable Learning Is All You Need",
            "abstract": "We simulate learners and prove realizable bounds to the end.",
        },
        {"title": "Reinforcement Learning for Board Games"},
        {"title": "Shift Happens: Distribution Shift in the Wild"},
        {"title": "Shifting Attention to Shifted Inputs"},
        {"title": "Quiet Graph Kernels", "authors": ["Wei Shi", "Ana Lopez"]},
    )
    return db


@pytest.mark.parametrize(
    "query", ["Müller", "Muller", "müller", "Jörg", "Jorg", "García", "Garcia", "Tanaka"]
)
def test_accented_author_names_are_found_with_or_without_accents(corpus, query):
    assert titles(corpus, query) == ["Accented Authors"]


def test_a_hyphenated_term_is_one_phrase(corpus):
    assert titles(corpus, "sim-to-real") == ["Sim-to-Real Transfer for Robot Grasping"]
    assert titles(corpus, "sim-to-real robot") == ["Sim-to-Real Transfer for Robot Grasping"]


def test_no_paper_with_every_word_falls_back_to_any_word_by_relevance(corpus):
    rows = store.search_papers(corpus, "reinforcement learning robot")
    assert {r["matched"] for r in rows} == {"any"}
    # The paper with two of the three words first.
    assert rows[0]["title"] == "Reinforcement Learning for Board Games"
    assert "Sim-to-Real Transfer for Robot Grasping" in [r["title"] for r in rows]
    assert {r["matched"] for r in store.search_papers(corpus, "learning")} == {"all"}


def test_an_author_name_comes_before_prefix_hits(corpus):
    rows = store.search_papers(corpus, "Shi")
    assert [r["title"] for r in rows][0] == "Quiet Graph Kernels"
    assert [r["author_hit"] for r in rows] == [True, False, False]
    assert titles(corpus, "Wei Shi") == ["Quiet Graph Kernels"]


def test_edits_keep_the_plain_author_index_in_step(corpus):
    corpus.execute("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")
    with store.transaction(corpus):
        corpus.execute(
            "UPDATE papers SET authors = ? WHERE title = 'Accented Authors'",
            [json.dumps(["Zoë Brontë"])],
        )
    corpus.execute("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")
    assert titles(corpus, "Muller") == []
    assert titles(corpus, "Zoe Bronte") == ["Accented Authors"]


def test_upgrading_reindexes_the_authors_of_stored_papers(tmp_path):
    db = database_before(tmp_path, "000*.sql")
    db.execute(
        "INSERT INTO dumps (id, file_name, content_hash, format, dump_date, ingested_at, papers,"
        " new_papers, repeats) VALUES (1, 'a.jsonl', 'h', 'jsonl', '2026-11-19', 'now', 1, 1, 0)"
    )
    db.execute(
        "INSERT INTO papers (id, norm_title, title, abstract, authors, first_dump_id, created_at)"
        " VALUES (1, 'old paper', 'Old Paper', 'About it.', ?, 1, 'now')",
        [json.dumps(["Jörg Müller"])],
    )
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")
    db.conn.commit()
    assert titles(db, "Muller") == []  # the JSON escapes of the old index
    assert "0010_search_plain_authors" in store.migrate(db)
    assert titles(db, "Muller") == titles(db, "Jörg") == ["Old Paper"]
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")


def test_ties_follow_the_persons_own_score_and_muted_papers_are_marked(data_dir, db):
    twins = [
        {"title": "Graph Kernels for Molecules", "abstract": "Molecules bonds atoms chemistry."},
        {"title": "Graph Kernels for Proteins", "abstract": "Proteins folding residues amino."},
    ]
    others = [
        {"title": f"{topic} study {i}", "abstract": f"{topic} {words} {FILLER}"}
        for i in range(6)
        for topic, words in [
            ("Chemistry", "molecules bonds atoms"),
            ("Biology", "proteins folding residues"),
        ]
    ]
    store_papers(db, *twins, *others)
    settings = load_settings(data_dir)
    pipeline.refit(db, settings)
    feeds = pipeline.FeedService(settings)
    ids = {r["title"]: r["id"] for r in store.search_papers(db, "graph kernels")}
    assert len(ids) == 2
    ranks = {round(r["rank"], 1) for r in store.search_papers(db, "graph kernels")}
    assert len(ranks) == 1  # equal relevance: the person decides

    def order(address: str, liked_topic: str) -> list[str]:
        user_id = store.create_user(db, address, "x" * 60)
        for row in store.search_papers(db, liked_topic):
            if row["title"].startswith(liked_topic):
                store.set_rating(db, user_id, row["id"], 1)
        page = search_for_person(db, feeds, user_id, "graph kernels", limit=20, offset=0)
        return [r["title"] for r in page.rows]

    assert order("chem@example.org", "Chemistry") == [t["title"] for t in twins]
    assert order("bio@example.org", "Biology") == [t["title"] for t in reversed(twins)]

    user_id = store.create_user(db, "mute@example.org", "x" * 60)
    store.set_muted_keywords(db, user_id, ["proteins"])
    page = search_for_person(db, feeds, user_id, "graph kernels", limit=20, offset=0)
    assert {r["title"]: r["muted"] for r in page.rows} == {
        "Graph Kernels for Molecules": False,
        "Graph Kernels for Proteins": True,
    }
