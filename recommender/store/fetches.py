"""The fetch ledger (one row per source and day) and the arXiv title-lookup cache."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlite_utils import Database

from .db import select, transaction
from .papers import arxiv_links


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def get_fetch(db: Database, source: str, day: str) -> dict | None:
    rows = select(db, "SELECT * FROM fetches WHERE source = ? AND day = ?", [source, day])
    return rows[0] if rows else None


def record_fetch_done(
    db: Database, source: str, day: str, *, dump_id: int | None, papers: int, new_papers: int
) -> None:
    """The day was fetched and stored (or was empty): attempts start again from 0."""
    with transaction(db):
        db.execute(
            "INSERT INTO fetches (source, day, state, attempts, last_error, dump_id, papers,"
            " new_papers, next_attempt_at, updated_at) VALUES (?, ?, 'done', 0, NULL, ?, ?, ?,"
            " NULL, ?) ON CONFLICT (source, day) DO UPDATE SET state = 'done', attempts = 0,"
            " last_error = NULL, dump_id = coalesce(excluded.dump_id, dump_id),"
            " papers = excluded.papers, new_papers = new_papers + excluded.new_papers,"
            " next_attempt_at = NULL, updated_at = excluded.updated_at",
            [source, day, dump_id, papers, new_papers, _now()],
        )


def record_fetch_failed(
    db: Database, source: str, day: str, error: str, next_attempt_at: str
) -> int:
    """Count one more failed run of the day; returns the attempts so far."""
    with transaction(db):
        db.execute(
            "INSERT INTO fetches (source, day, state, attempts, last_error, next_attempt_at,"
            " updated_at) VALUES (?, ?, 'failed', 1, ?, ?, ?) ON CONFLICT (source, day) DO UPDATE"
            " SET state = 'failed', attempts = attempts + 1, last_error = excluded.last_error,"
            " next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
            [source, day, error[:1000], next_attempt_at, _now()],
        )
        return db.execute(
            "SELECT attempts FROM fetches WHERE source = ? AND day = ?", [source, day]
        ).fetchone()[0]


def list_fetches(db: Database, *, limit: int = 50) -> list[dict]:
    return select(db, "SELECT * FROM fetches ORDER BY day DESC, source LIMIT ?", [limit])


# -- enrich: text-dump titles resolved to arXiv ids ---------------------------------------------


def papers_without_arxiv_id(db: Database, *, limit: int | None = None) -> list[dict]:
    """Papers with no arXiv id and a title never looked up: ``{"id", "title", "norm_title"}``."""
    sql = (
        "SELECT p.id, p.title, p.norm_title FROM papers p WHERE p.arxiv_id IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM arxiv_lookups l WHERE l.norm_title = p.norm_title)"
        " ORDER BY p.id"
    )
    params: list = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return select(db, sql, params)


def enrich_counts(db: Database) -> tuple[int, int]:
    """``(left, not_found)``: papers without an arXiv id whose title was never looked up,
    and those whose title was looked up and not found."""
    left, not_found = db.execute(
        "SELECT count(*) FILTER (WHERE l.norm_title IS NULL),"
        " count(*) FILTER (WHERE l.norm_title IS NOT NULL) FROM papers p"
        " LEFT JOIN arxiv_lookups l ON l.norm_title = p.norm_title WHERE p.arxiv_id IS NULL"
    ).fetchone()
    return left, not_found


def record_arxiv_lookups(
    db: Database, looked_up: Sequence[str], found: Iterable[tuple[int, str, dict]]
) -> int:
    """Store one batch of title searches in one transaction.

    ``looked_up``: the normalised titles asked (cached, found or not); ``found``:
    ``(paper_id, arxiv_id, metadata)`` with metadata ``authors`` (list), ``published``
    and ``url``. A found paper gains its arXiv id, links, and the authors and date it
    lacked; an arXiv id that another paper already has is left alone. Returns the
    papers updated.
    """
    now = _now()
    updated = 0
    with transaction(db):
        found = list(found)
        by_title = {}
        for paper_id, arxiv_id, _ in found:
            row = db.execute("SELECT norm_title FROM papers WHERE id = ?", [paper_id]).fetchone()
            if row:
                by_title[row[0]] = arxiv_id
        db.conn.executemany(
            "INSERT OR REPLACE INTO arxiv_lookups (norm_title, arxiv_id, looked_up_at)"
            " VALUES (?, ?, ?)",
            [(t, by_title.get(t), now) for t in looked_up],
        )
        for paper_id, arxiv_id, meta in found:
            taken = db.execute("SELECT id FROM papers WHERE arxiv_id = ?", [arxiv_id]).fetchone()
            if taken and taken[0] != paper_id:
                continue
            external = f"arxiv:{arxiv_id}"
            if db.execute("SELECT 1 FROM papers WHERE external_id = ?", [external]).fetchone():
                external = None  # held by another paper (a unique column)
            links = arxiv_links(arxiv_id)
            cursor = db.execute(
                "UPDATE papers SET arxiv_id = ?, external_id = coalesce(external_id, ?),"
                " url = coalesce(url, ?), pdf_url = coalesce(pdf_url, ?),"
                " authors = CASE WHEN authors = '[]' THEN ? ELSE authors END,"
                " published = coalesce(published, ?) WHERE id = ? AND arxiv_id IS NULL",
                [
                    arxiv_id,
                    external,
                    links["abs"],
                    links["pdf"],
                    json.dumps(list(meta.get("authors") or [])),
                    meta.get("published"),
                    paper_id,
                ],
            )
            updated += cursor.rowcount
    return updated
