"""Papers, dumps and full-text search."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlite_utils import Database

from ..dumps import ParsedDump, ParsedPaper
from .db import select, transaction

# SQLite's default limit on host parameters is 32766; stay well below.
_CHUNK = 500


class StoreError(RuntimeError):
    """A write the store refused; nothing was written."""


@dataclass(frozen=True)
class DumpRecord:
    """What ingesting one dump did (or, for a repeat, what it did the first time)."""

    dump_id: int
    file_name: str
    dump_date: str
    papers: int
    new_papers: int
    repeats: int
    already_ingested: bool = False

    def as_dict(self) -> dict:
        return {
            "dump_id": self.dump_id,
            "file": self.file_name,
            "dump_date": self.dump_date,
            "papers": self.papers,
            "new": self.new_papers,
            "repeats": self.repeats,
            "already_ingested": self.already_ingested,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def find_dump_by_hash(db: Database, content_hash: str) -> dict | None:
    rows = select(db, "SELECT * FROM dumps WHERE content_hash = ?", [content_hash])
    return rows[0] if rows else None


def _existing_ids(db: Database, column: str, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {column}, id FROM papers WHERE {column} IN ({marks})"
        found.update({key: pid for key, pid in db.execute(sql, list(chunk)).fetchall()})
    return found


def record_dump(
    db: Database,
    dump: ParsedDump,
    *,
    dump_date: date | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> DumpRecord:
    """Store a parsed dump and its papers in one transaction.

    A paper already in the database (same external id, else same normalised
    title) is linked, not duplicated; a new one is inserted with this dump as
    its first. If a dump with the same content hash was ingested before,
    nothing changes and the earlier record comes back with
    ``already_ingested=True``. On any error the transaction rolls back.
    """
    day = str(dump_date or date.today().isoformat())
    with transaction(db):
        previous = find_dump_by_hash(db, dump.content_hash)
        if previous:
            return DumpRecord(
                dump_id=previous["id"],
                file_name=previous["file_name"],
                dump_date=previous["dump_date"],
                papers=previous["papers"],
                new_papers=previous["new_papers"],
                repeats=previous["repeats"],
                already_ingested=True,
            )
        cursor = db.execute(
            "INSERT INTO dumps (file_name, content_hash, format, dump_date, ingested_at,"
            " papers, new_papers, repeats) VALUES (?, ?, ?, ?, ?, 0, 0, 0)",
            [dump.source, dump.content_hash, dump.format, day, _now()],
        )
        dump_id = cursor.lastrowid
        by_id = _existing_ids(
            db, "external_id", [p.external_id for p in dump.papers if p.external_id]
        )
        by_title = _existing_ids(db, "norm_title", [p.norm_title for p in dump.papers])
        next_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM papers").fetchone()[0]
        new_rows, links = [], []
        created = _now()
        for position, paper in enumerate(dump.papers):
            paper_id = (paper.external_id and by_id.get(paper.external_id)) or by_title.get(
                paper.norm_title
            )
            if paper_id is None:
                paper_id = next_id
                next_id += 1
                new_rows.append(_paper_row(paper, paper_id, dump_id, created))
            links.append((dump_id, paper_id, position))
            if progress and position % 1000 == 999:
                progress(1000)
        db.conn.executemany(
            "INSERT INTO papers (id, norm_title, external_id, title, abstract, url, authors,"
            " published, first_dump_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            new_rows,
        )
        db.execute(
            "INSERT INTO papers_fts (rowid, title, abstract)"
            " SELECT id, title, abstract FROM papers WHERE first_dump_id = ?",
            [dump_id],
        )
        db.conn.executemany(
            "INSERT INTO dump_papers (dump_id, paper_id, position) VALUES (?, ?, ?)", links
        )
        new, repeats = len(new_rows), len(links) - len(new_rows)
        db.execute(
            "UPDATE dumps SET papers = ?, new_papers = ?, repeats = ? WHERE id = ?",
            [len(links), new, repeats, dump_id],
        )
        if progress:
            progress(len(dump.papers) % 1000)
    return DumpRecord(dump_id, dump.source, day, len(links), new, repeats)


def _paper_row(paper: ParsedPaper, paper_id: int, dump_id: int, created: str) -> tuple:
    return (
        paper_id,
        paper.norm_title,
        paper.external_id,
        paper.title,
        paper.abstract,
        paper.url,
        json.dumps(list(paper.authors)),
        paper.published,
        dump_id,
        created,
    )


def count_papers(db: Database) -> int:
    return db.execute("SELECT count(*) FROM papers").fetchone()[0]


def list_dumps(db: Database) -> list[dict]:
    """Every dump, newest first."""
    return select(db, "SELECT * FROM dumps ORDER BY dump_date DESC, id DESC")


def latest_dump(db: Database) -> dict | None:
    dumps = select(db, "SELECT * FROM dumps ORDER BY dump_date DESC, id DESC LIMIT 1")
    return dumps[0] if dumps else None


def get_paper(db: Database, paper_id: int) -> dict | None:
    """A paper with ``authors`` decoded and the dumps it appeared in, or None."""
    rows = select(db, "SELECT * FROM papers WHERE id = ?", [paper_id])
    if not rows:
        return None
    paper = rows[0]
    paper["authors"] = json.loads(paper["authors"])
    paper["dumps"] = select(
        db,
        "SELECT d.id, d.file_name, d.dump_date FROM dump_papers dp"
        " JOIN dumps d ON d.id = dp.dump_id WHERE dp.paper_id = ?"
        " ORDER BY d.dump_date, d.id",
        [paper_id],
    )
    return paper


_FTS_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """Turn what a person typed into a safe FTS5 query: every word, as a prefix.

    FTS5 has its own syntax (quotes, NEAR, column filters); passing raw input
    would make ``"`` or ``-`` a syntax error. Words are quoted and AND-ed.
    """
    words = _FTS_TOKEN.findall(text)
    if not words:
        return None
    return " ".join(f'"{word}"*' for word in words[:32])


def search_papers(db: Database, text: str, *, limit: int = 20, offset: int = 0) -> list[dict]:
    """Full-text search over titles and abstracts, best match first (bm25)."""
    query = fts_query(text)
    if query is None:
        return []
    return select(
        db,
        "SELECT p.id, p.title, p.abstract, p.url, p.first_dump_id,"
        " bm25(papers_fts, 5.0, 1.0) AS rank"
        " FROM papers_fts JOIN papers p ON p.id = papers_fts.rowid"
        " WHERE papers_fts MATCH ? ORDER BY rank LIMIT ? OFFSET ?",
        [query, limit, offset],
    )


def dump_papers(db: Database, dump_id: int, *, new_only: bool = True) -> list[dict]:
    """Papers of a dump in page order; with ``new_only``, those first seen in it."""
    sql = (
        "SELECT p.id, p.title, p.abstract, p.url, p.first_dump_id FROM dump_papers dp"
        " JOIN papers p ON p.id = dp.paper_id WHERE dp.dump_id = ?"
        + (" AND p.first_dump_id = dp.dump_id" if new_only else "")
        + " ORDER BY dp.position"
    )
    return select(db, sql, [dump_id])
