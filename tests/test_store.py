"""The SQLite store: migrations, ingest idempotency, atomicity, de-duplication, search."""

from __future__ import annotations

import sqlite3

import pytest

from recommender import store
from recommender.dumps import parse_dump, parse_dump_file
from recommender.ingest import IngestError, ingest_paths
from recommender.store.db import _split_statements

from .conftest import SAMPLE_COUNTS, SAMPLE_DUMPS, snapshot

ABSTRACT = "We study a problem. Our method works well on benchmarks and is fast in practice."


def jsonl(*papers: tuple[str, str], ident: str | None = None) -> bytes:
    import json

    rows = [{"title": t, "abstract": a} | ({"id": ident} if ident else {}) for t, a in papers]
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_migrations_create_the_schema_on_an_empty_file(data_dir):
    db = store.connect(data_dir / "new.db")
    assert store.pending_migrations(db)[0] == "0001_papers_and_dumps"
    assert store.migrate(db) == sorted(p.stem for p in store.migrations_dir().glob("*.sql"))
    assert {"papers", "dumps", "dump_papers", "papers_fts"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrating_twice_applies_nothing_the_second_time(data_dir):
    db = store.connect(data_dir / "new.db")
    store.migrate(db)
    before = snapshot(db)
    assert store.migrate(db) == []
    assert snapshot(db) == before
    rows = db.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert [r[0] for r in rows] == sorted(p.stem for p in store.migrations_dir().glob("*.sql"))


def test_a_failing_migration_leaves_nothing_behind(data_dir, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);")
    (folder / "0002_broken.sql").write_text(
        "CREATE TABLE b (x INTEGER);\nINSERT INTO nope VALUES (1);"
    )
    db = store.connect(data_dir / "m.db")
    with pytest.raises(sqlite3.OperationalError, match="nope"):
        store.migrate(db, folder)
    assert "a" in db.table_names() and "b" not in db.table_names()
    assert store.pending_migrations(db, folder) == ["0002_broken"]


def test_statement_splitter_keeps_triggers_whole():
    sql = (
        "CREATE TABLE t (x);\n-- note; with a semicolon\n"
        "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    )
    statements = _split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("-- note") and statements[1].endswith("END;")


def test_ingesting_the_sample_dumps_gives_one_row_per_distinct_paper(db):
    results = ingest_paths(db, [SAMPLE_DUMPS])
    assert [r.record.papers for r in results] == [SAMPLE_COUNTS[k] for k in sorted(SAMPLE_COUNTS)]
    distinct = set()
    for name in SAMPLE_COUNTS:
        distinct |= {p.norm_title for p in parse_dump_file(SAMPLE_DUMPS / name).papers}
    assert store.count_papers(db) == len(distinct)
    assert sum(r.record.new_papers for r in results) == len(distinct)
    assert sum(r.record.repeats for r in results) == sum(SAMPLE_COUNTS.values()) - len(distinct)
    links = db.execute("SELECT count(*) FROM dump_papers").fetchone()[0]
    assert links == sum(SAMPLE_COUNTS.values())


def test_reingesting_a_dump_changes_nothing(db):
    ingest_paths(db, [SAMPLE_DUMPS])
    before = snapshot(db)
    again = ingest_paths(db, [SAMPLE_DUMPS])
    assert all(r.record.already_ingested for r in again)
    assert snapshot(db) == before


def test_a_paper_in_two_dumps_records_both_and_the_first(db):
    first = parse_dump(
        jsonl(("Linear Attention", ABSTRACT), ("Kernels", ABSTRACT)),
        fmt="jsonl",
        source="day1.jsonl",
    )
    second = parse_dump(
        jsonl(("linear attention.", ABSTRACT), ("Graphs", ABSTRACT)),
        fmt="jsonl",
        source="day2.jsonl",
    )
    r1 = store.record_dump(db, first, dump_date="2026-01-01")
    r2 = store.record_dump(db, second, dump_date="2026-01-02")
    assert (r2.new_papers, r2.repeats) == (1, 1)
    rows = list(db.query("SELECT title, first_dump_id FROM papers ORDER BY id"))
    assert rows == [
        {"title": "Linear Attention", "first_dump_id": r1.dump_id},
        {"title": "Kernels", "first_dump_id": r1.dump_id},
        {"title": "Graphs", "first_dump_id": r2.dump_id},
    ]
    paper = store.get_paper(db, 1)
    assert [d["file_name"] for d in paper["dumps"]] == ["day1.jsonl", "day2.jsonl"]
    assert [p["title"] for p in store.dump_papers(db, r2.dump_id)] == ["Graphs"]
    assert len(store.dump_papers(db, r2.dump_id, new_only=False)) == 2


def test_a_source_id_identifies_a_paper_even_when_the_title_changes(db):
    store.record_dump(db, parse_dump(jsonl(("Old Title", ABSTRACT), ident="x1"), fmt="jsonl"))
    r = store.record_dump(
        db, parse_dump(jsonl(("New Title v2", ABSTRACT), ident="x1"), fmt="jsonl")
    )
    assert (r.new_papers, r.repeats) == (0, 1)
    assert store.count_papers(db) == 1


def test_a_failure_part_way_through_a_dump_leaves_the_database_unchanged(db):
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"])
    before = snapshot(db)
    # A real SQLite failure after 100 link rows have been written.
    db.execute(
        "CREATE TEMP TRIGGER fail_midway BEFORE INSERT ON dump_papers "
        "WHEN (SELECT count(*) FROM dump_papers WHERE dump_id = NEW.dump_id) >= 100 "
        "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="simulated"):
        ingest_paths(db, [SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt"])
    assert snapshot(db) == before
    db.execute("DROP TRIGGER fail_midway")
    (result,) = ingest_paths(db, [SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt"])
    assert result.record.papers == SAMPLE_COUNTS["2026-11-18_002_928061713d22a60e.txt"]


def test_one_malformed_file_among_several_ingests_none(db, tmp_path):
    bad = tmp_path / "zzz_bad.txt"
    bad.write_text("Subscribe\nA Title\n" + ABSTRACT + "\nA Dangling Title\n")
    with pytest.raises(IngestError) as info:
        ingest_paths(db, [SAMPLE_DUMPS, bad])
    assert "zzz_bad.txt:4" in str(info.value)
    assert store.count_papers(db) == 0 and store.list_dumps(db) == []


def test_full_text_search_finds_words_and_survives_syntax_characters(db):
    store.record_dump(
        db,
        parse_dump(
            jsonl(
                ("Linear Attention for Long Documents", ABSTRACT),
                ("Graph Kernels", "Kernels on graphs. " + ABSTRACT),
            ),
            fmt="jsonl",
        ),
    )
    assert [r["title"] for r in store.search_papers(db, "attention")] == [
        "Linear Attention for Long Documents"
    ]
    assert [r["title"] for r in store.search_papers(db, "kernel")] == ["Graph Kernels"]
    # No paper has both words: the papers with either come instead, marked so.
    assert [(r["title"], r["matched"]) for r in store.search_papers(db, 'attent" -( NEAR')] == [
        ("Linear Attention for Long Documents", "any")
    ]
    assert len(store.search_papers(db, '"attent -(')) == 1
    assert store.search_papers(db, "   ") == []


def test_full_text_index_matches_the_papers_after_ingest_edit_and_delete(db):
    ingest_paths(db, [SAMPLE_DUMPS])
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")
    with store.transaction(db):
        db.execute("UPDATE papers SET title = 'Zyxwv Renamed' WHERE id = 1")
        db.execute("DELETE FROM dump_papers WHERE paper_id = 2")
        db.execute("DELETE FROM papers WHERE id = 2")
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")
    assert [r["id"] for r in store.search_papers(db, "zyxwv")] == [1]
    fts_rows = db.execute("SELECT count(*) FROM papers_fts").fetchone()[0]
    assert fts_rows == store.count_papers(db)


def test_a_writer_waits_for_the_lock_and_gives_up_after_the_busy_timeout(data_dir, monkeypatch):
    import threading
    import time

    from recommender.store import db as dbmod

    path = data_dir / "paperfeed.db"
    store.open_db(path).close()
    # The wait comes from the caller (settings.busy_timeout), never from the environment.
    monkeypatch.setenv("PAPERFEED_DB_BUSY_TIMEOUT", "30")
    first, second = store.connect(path), store.connect(path, busy_timeout=0.3)
    assert first.execute("PRAGMA busy_timeout").fetchone()[0] == dbmod.BUSY_TIMEOUT_MS

    def hold(seconds: float, taken: threading.Event, email: str):
        with dbmod.transaction(first):
            first.execute("INSERT INTO users (email, created_at) VALUES (?, 'now')", [email])
            taken.set()
            time.sleep(seconds)

    # Held briefly: the second writer waits, then commits after the first.
    taken = threading.Event()
    holder = threading.Thread(target=hold, args=(0.05, taken, "a@x.org"))
    holder.start()
    assert taken.wait(10)
    with dbmod.transaction(second):
        second.execute("INSERT INTO users (email, created_at) VALUES ('b@x.org', 'now')")
    holder.join()
    assert [r[0] for r in second.execute("SELECT email FROM users ORDER BY id")] == [
        "a@x.org",
        "b@x.org",
    ]
    # Held past the timeout: a clear "database is locked", nothing written, still usable.
    taken = threading.Event()
    holder = threading.Thread(target=hold, args=(1.0, taken, "d@x.org"))
    holder.start()
    assert taken.wait(10)
    with pytest.raises(sqlite3.OperationalError, match="locked"), dbmod.transaction(second):
        second.execute("INSERT INTO users (email, created_at) VALUES ('c@x.org', 'now')")
    holder.join()
    assert not second.conn.in_transaction
    assert second.execute("SELECT count(*) FROM users").fetchone()[0] == 3
    assert second.execute("PRAGMA busy_timeout").fetchone()[0] == 300


def test_one_persons_reads_equal_the_batch_reads(db):
    """The one-person paths of rating_values_many and shown_before_many (a feed load)
    give what the many-people paths give for that person."""
    ingest_paths(db, [SAMPLE_DUMPS])
    ada = store.create_user(db, "ada@example.org", "x")
    bob = store.create_user(db, "bob@example.org", "x")
    papers = [r[0] for r in db.execute("SELECT id FROM papers ORDER BY id LIMIT 30")]
    for i, paper in enumerate(papers[:12]):
        store.set_rating(db, ada, paper, 1 if i % 3 else -1)
        store.set_rating(db, bob, paper, -1)
    for i, paper in enumerate(papers):
        store.mark_shown(db, ada, [paper], channel="feed", day=f"2026-11-{10 + i % 5:02d}")
        store.mark_shown(db, bob, [paper], channel="feed", day="2026-11-01")
    both = store.rating_values_many(db, [ada, bob])
    assert store.rating_values_many(db, [ada]) == {ada: both[ada]}
    assert len(both[ada]) == 12
    day = "2026-11-12"
    asked = papers[5:25]
    everyone = store.shown_before_many(db, {ada: day, bob: day})
    alone = store.shown_before_many(db, {ada: day}, asked)
    assert alone == {ada: everyone[ada] & set(asked)}
    assert 0 < len(alone[ada]) < len(asked)  # some shown before the day, some on or after
