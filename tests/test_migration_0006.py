"""Migration 0006 on a database that already holds papers (an upgrade, not a fresh install)."""

from __future__ import annotations

from recommender import store
from tests._migrations import database_before


def test_upgrading_keeps_papers_backfills_arxiv_ids_and_indexes_authors(tmp_path):
    db = database_before(tmp_path, "000[1-5]_*.sql")
    db.execute(
        "INSERT INTO dumps (id, file_name, content_hash, format, dump_date, ingested_at, papers,"
        " new_papers, repeats)"
        " VALUES (1, 'a.xml', 'h', 'atom', '2026-11-19', '2026-11-19', 2, 2, 0)"
    )
    db.execute(
        "INSERT INTO papers (id, norm_title, external_id, title, abstract, url, authors,"
        " first_dump_id, created_at) VALUES"
        " (1, 'graph flows', 'arxiv:2301.00001', 'Graph Flows', 'About graphs.',"
        " 'http://arxiv.org/abs/2301.00001v1', '[\"Ada Lovelace\"]', 1, 'now'),"
        " (2, 'text only', NULL, 'Text Only', 'About text.', NULL, '[]', 1, 'now')"
    )
    db.conn.commit()

    assert store.migrate(db)[0] == "0006_paper_sources"  # (and any later ones)
    rows = db.execute("SELECT id, arxiv_id, pdf_url, upvotes FROM papers ORDER BY id").fetchall()
    assert rows == [
        (1, "2301.00001", "https://arxiv.org/pdf/2301.00001", None),
        (2, None, None, None),
    ]
    assert db.execute("SELECT source FROM dumps").fetchall() == [("file",)]
    # The rebuilt index holds the old papers, authors included, and follows edits.
    assert [r["id"] for r in store.search_papers(db, "Lovelace")] == [1]
    assert [r["id"] for r in store.search_papers(db, "text")] == [2]
    db.execute("UPDATE papers SET authors = '[\"Grace Hopper\"]' WHERE id = 2")
    assert [r["id"] for r in store.search_papers(db, "Hopper")] == [2]
    assert store.search_papers(db, "Lovelace")[0]["links"] == {
        "abs": "http://arxiv.org/abs/2301.00001v1",
        "pdf": "https://arxiv.org/pdf/2301.00001",
    }
