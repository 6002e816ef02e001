"""Papers, dumps and full-text search."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlite_utils import Database

from ..dumps import NearTitles, ParsedDump, ParsedPaper
from .db import select, transaction

# SQLite's default limit on host parameters is 32766; stay well below.
_CHUNK = 500

#: A new-style (2301.00001) or old-style (hep-th/9901001) arXiv id, optional version.
ARXIV_ID = re.compile(
    r"^(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$", re.IGNORECASE
)
_DAY_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


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


def arxiv_id_of(external_id: str | None) -> str | None:
    """The bare arXiv id (no version) in ``arxiv:2301.00001v2``, ``2301.00001`` etc., or None."""
    match = ARXIV_ID.match((external_id or "").strip())
    return match.group(1) if match else None


def arxiv_links(arxiv_id: str) -> dict[str, str]:
    """The abstract page and PDF of an arXiv paper."""
    return {"abs": f"https://arxiv.org/abs/{arxiv_id}", "pdf": f"https://arxiv.org/pdf/{arxiv_id}"}


def paper_links(row: dict) -> dict[str, str]:
    """``{"abs", "pdf", "hf"}`` of a papers row, each only where known and http(s)."""
    links = {"abs": row.get("url"), "pdf": row.get("pdf_url"), "hf": row.get("hf_url")}
    return {
        k: v
        for k, v in links.items()
        if isinstance(v, str) and v.startswith(("http://", "https://"))
    }


def day_in_name(name: str) -> str | None:
    """A valid ``YYYY-MM-DD`` in a file name (``2026-11-30.txt``, ``hf_2026-11-30.jsonl``)."""
    for match in _DAY_IN_NAME.finditer(name):
        try:
            return date(*map(int, match.groups())).isoformat()
        except ValueError:
            continue
    return None


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
    source: str = "file",
    progress: Callable[[int], None] | None = None,
) -> DumpRecord:
    """Store a parsed dump and its papers in one transaction.

    A paper already in the database (same arXiv id, else same external id, else
    same normalised title) is linked, not duplicated, and gains what it lacked
    (arXiv id, authors, links, date: a text-dump paper met again in a fetched
    day becomes that paper); a new one is inserted with this dump as its first.
    The dump is dated ``dump_date``, else by a ``YYYY-MM-DD`` in its file name,
    else today. If a dump with the same content hash was ingested before,
    nothing changes and the earlier record comes back with
    ``already_ingested=True``. On any error the transaction rolls back.
    """
    day = str(dump_date or day_in_name(dump.source) or date.today().isoformat())
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
            " papers, new_papers, repeats, source) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?)",
            [dump.source, dump.content_hash, dump.format, day, _now(), source],
        )
        dump_id = cursor.lastrowid
        arxiv_ids = [arxiv_id_of(p.external_id) for p in dump.papers]
        by_arxiv = _existing_ids(db, "arxiv_id", [a for a in arxiv_ids if a])
        by_id = _existing_ids(
            db, "external_id", [p.external_id for p in dump.papers if p.external_id]
        )
        by_title = _existing_ids(db, "norm_title", [p.norm_title for p in dump.papers])
        near = _near_duplicates(db, dump.papers, arxiv_ids, by_arxiv, by_id, by_title)
        next_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM papers").fetchone()[0]
        new_rows, links, fills = [], [], []
        linked: set[int] = set()
        created = _now()
        for position, (paper, arxiv_id) in enumerate(zip(dump.papers, arxiv_ids, strict=True)):
            paper_id = (
                (arxiv_id and by_arxiv.get(arxiv_id))
                or (paper.external_id and by_id.get(paper.external_id))
                or by_title.get(paper.norm_title)
                or near.get(position)
            )
            if paper_id is None:
                paper_id = next_id
                next_id += 1
                new_rows.append(_paper_row(paper, arxiv_id, paper_id, dump_id, created))
            elif paper_id in linked:  # two near-duplicates of one stored paper
                continue
            elif arxiv_id or paper.authors or paper.url or paper.published or paper.ai_summary:
                fills.append(_fill_row(paper, arxiv_id, paper_id))
            linked.add(paper_id)
            links.append((dump_id, paper_id, position))
            if progress and position % 1000 == 999:
                progress(1000)
        db.conn.executemany(
            "INSERT INTO papers (id, norm_title, external_id, title, abstract, url, authors,"
            " published, first_dump_id, created_at, arxiv_id, pdf_url, hf_url, upvotes,"
            " ai_summary, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            new_rows,
        )
        db.execute(
            "INSERT INTO papers_fts (rowid, title, abstract, authors)"
            " SELECT id, title, abstract, authors FROM papers_search WHERE id IN"
            " (SELECT id FROM papers WHERE first_dump_id = ?)",
            [dump_id],
        )
        _fill_metadata(db, fills)
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


def _near_duplicates(
    db: Database,
    papers: Sequence[ParsedPaper],
    arxiv_ids: list[str | None],
    *matched: dict[str, int],
) -> dict[int, int]:
    """``{position: paper_id}`` for the dump's papers that no id or exact title matched
    but that are a stored paper's near-duplicate (:class:`recommender.dumps.NearTitles`:
    an abbreviation in front, or a title 95 % alike; never two different arXiv ids).

    Only what could match is read: every stored title when a paper without an arXiv id
    is to be matched, else only the stored papers without one.
    """
    by_arxiv, by_id, by_title = matched
    todo = [
        i
        for i, (p, a) in enumerate(zip(papers, arxiv_ids, strict=True))
        if not ((a and a in by_arxiv) or (p.external_id in by_id) or p.norm_title in by_title)
    ]
    if not todo:
        return {}
    every = any(arxiv_ids[i] is None for i in todo)
    stored = db.execute(
        "SELECT id, title, norm_title, arxiv_id FROM papers WHERE library_of IS NULL"
        + ("" if every else " AND arxiv_id IS NULL")
    )
    near = NearTitles()
    for paper_id, title, norm, arxiv_id in stored:
        near.add(title, norm, arxiv_id, paper_id)
    found = {i: near.find(papers[i].title, papers[i].norm_title, arxiv_ids[i]) for i in todo}
    return {i: paper_id for i, paper_id in found.items() if paper_id is not None}


def _paper_row(
    paper: ParsedPaper, arxiv_id: str | None, paper_id: int, dump_id: int, created: str
) -> tuple:
    links = arxiv_links(arxiv_id) if arxiv_id else {}
    return (
        paper_id,
        paper.norm_title,
        paper.external_id,
        paper.title,
        paper.abstract,
        paper.url or links.get("abs"),
        json.dumps(list(paper.authors)),
        paper.published,
        dump_id,
        created,
        arxiv_id,
        links.get("pdf"),
        paper.hf_url,
        paper.upvotes,
        paper.ai_summary,
        paper.thumbnail,
    )


def _fill_row(paper: ParsedPaper, arxiv_id: str | None, paper_id: int) -> dict:
    links = arxiv_links(arxiv_id) if arxiv_id else {}
    return {
        "id": paper_id,
        "arxiv_id": arxiv_id,
        "external_id": paper.external_id,
        "url": paper.url or links.get("abs"),
        "pdf_url": links.get("pdf"),
        "hf_url": paper.hf_url,
        "authors": json.dumps(list(paper.authors)) if paper.authors else None,
        "published": paper.published,
        "upvotes": paper.upvotes,
        "ai_summary": paper.ai_summary,
        "thumbnail": paper.thumbnail,
    }


def _fill_metadata(db: Database, fills: list[dict]) -> None:
    """Give papers met again what they lacked; never overwrite what they have.

    An arXiv id or external id already held by another paper is left alone (the
    unique indexes would refuse it): two rows that are one paper are not merged here.
    """
    if not fills:
        return
    taken_arxiv = _existing_ids(db, "arxiv_id", [f["arxiv_id"] for f in fills if f["arxiv_id"]])
    taken_ext = _existing_ids(
        db, "external_id", [f["external_id"] for f in fills if f["external_id"]]
    )
    for fill in fills:
        if fill["arxiv_id"] and taken_arxiv.get(fill["arxiv_id"], fill["id"]) != fill["id"]:
            fill["arxiv_id"] = None
        if fill["external_id"] and taken_ext.get(fill["external_id"], fill["id"]) != fill["id"]:
            fill["external_id"] = None
    db.conn.executemany(
        "UPDATE papers SET arxiv_id = coalesce(arxiv_id, :arxiv_id),"
        " external_id = coalesce(external_id, :external_id), url = coalesce(url, :url),"
        " pdf_url = coalesce(pdf_url, :pdf_url), hf_url = coalesce(hf_url, :hf_url),"
        " authors = CASE WHEN authors = '[]' AND :authors IS NOT NULL THEN :authors"
        " ELSE authors END, published = coalesce(published, :published),"
        " upvotes = coalesce(:upvotes, upvotes), ai_summary = coalesce(:ai_summary, ai_summary),"
        " thumbnail = coalesce(:thumbnail, thumbnail) WHERE id = :id",
        fills,
    )


def count_papers(db: Database) -> int:
    return db.execute("SELECT count(*) FROM papers").fetchone()[0]


def list_days(db: Database) -> list[dict]:
    """Every day that has a dump, newest first: ``{"day", "dumps", "new_papers"}``.

    Two dumps dated the same day (a text dump and the fetched day, or a day fetched
    twice) are one day here. ``new_papers`` counts the papers whose earliest dump is
    dated that day, exactly the papers that day's feed ranks
    (:func:`papers_first_dated_between`): a day fetched after a later day brought its
    papers is where they are new, not "0 new".
    """
    return select(
        db,
        "WITH first AS (SELECT min(d.dump_date) AS day FROM dump_papers dp"
        " JOIN dumps d ON d.id = dp.dump_id GROUP BY dp.paper_id)"
        " SELECT days.day, days.dumps, coalesce(f.n, 0) AS new_papers"
        " FROM (SELECT dump_date AS day, count(*) AS dumps FROM dumps GROUP BY dump_date) days"
        " LEFT JOIN (SELECT day, count(*) AS n FROM first GROUP BY day) f ON f.day = days.day"
        " ORDER BY days.day DESC",
    )


def papers_first_dated_between(db: Database, first_day: str, last_day: str) -> list[int]:
    """Papers whose earliest dump is dated within ``[first_day, last_day]``, newest day
    first, then in page order. A paper that appeared before the window is not new in it."""
    rows = db.execute(
        "SELECT dp.paper_id, min(d.dump_date) AS first_day, min(d.id * 1000000 + dp.position)"
        " AS seq FROM dump_papers dp JOIN dumps d ON d.id = dp.dump_id"
        " WHERE dp.paper_id IN (SELECT w.paper_id FROM dump_papers w JOIN dumps wd"
        " ON wd.id = w.dump_id WHERE wd.dump_date BETWEEN ? AND ?)"
        " GROUP BY dp.paper_id HAVING first_day >= ? ORDER BY first_day DESC, seq",
        [first_day, last_day, first_day],
    )
    return [r[0] for r in rows.fetchall()]


#: SQL: the dump ``d`` is the newest (latest dated) or dated at most ``?`` days before it
#: (parameter: ``-N days``); with :func:`recent_paper_ids`, the papers a model indexes.
DATED_RECENTLY = (
    "(d.id = (SELECT id FROM dumps ORDER BY dump_date DESC, id DESC LIMIT 1)"
    " OR d.dump_date >= date((SELECT max(dump_date) FROM dumps), ?))"
)


def papers_arrived_since(db: Database, since: str, *, dated_within: int | None = None) -> list[int]:
    """Papers first stored at or after ``since`` (UTC ISO-8601 or a day), newest dump first.

    ``dated_within``: only those of the newest dump or of dumps dated at most that many days
    before it. A backfill of old dumps arrives today but is not news: those papers are
    browsed by their day, and a window of them would reach past the papers a published
    model indexes (:data:`recommender.refit.SERVED_DAYS`)."""
    sql = (
        "SELECT p.id FROM papers p JOIN dumps d ON d.id = p.first_dump_id WHERE d.ingested_at >= ?"
    )
    params: list = [since]
    if dated_within is not None:
        sql += f" AND {DATED_RECENTLY}"
        params.append(f"-{int(dated_within)} days")
    rows = db.execute(sql + " ORDER BY d.dump_date DESC, d.id DESC, p.id", params)
    return [r[0] for r in rows.fetchall()]


def last_visit_day(db: Database, user_id: int, before_day: str) -> str | None:
    """The last local day before ``before_day`` on which the person was shown their feed."""
    row = db.execute(
        "SELECT max(shown_on) FROM impressions WHERE user_id = ? AND channel = 'feed'"
        " AND shown_on < ?",
        [user_id, before_day],
    ).fetchone()
    return row[0] if row else None


def trending_papers(db: Database, since_day: str, *, limit: int = 30) -> list[dict]:
    """Papers with Hugging Face upvotes in dumps dated ``since_day`` or later, most first."""
    rows = select(
        db,
        "SELECT p.id, p.title, p.abstract, p.url, p.pdf_url, p.hf_url, p.authors, p.arxiv_id,"
        " p.published, p.upvotes, max(d.dump_date) AS dump_date FROM papers p"
        " JOIN dump_papers dp ON dp.paper_id = p.id JOIN dumps d ON d.id = dp.dump_id"
        " WHERE p.upvotes IS NOT NULL AND d.dump_date >= ?"
        " GROUP BY p.id ORDER BY p.upvotes DESC, p.id LIMIT ?",
        [since_day, limit],
    )
    for row in rows:
        row["authors"] = json.loads(row["authors"] or "[]")
    return rows


def update_upvotes(db: Database, upvotes: dict[str, int]) -> int:
    """Set the upvotes of papers by arXiv id (a day fetched again brings fresh counts)."""
    with transaction(db):
        cursor = db.conn.executemany(
            "UPDATE papers SET upvotes = ? WHERE arxiv_id = ? AND upvotes IS NOT ?",
            [(n, a, n) for a, n in upvotes.items()],
        )
    return cursor.rowcount


def list_dumps(db: Database) -> list[dict]:
    """Every dump, newest first."""
    return select(db, "SELECT * FROM dumps ORDER BY dump_date DESC, id DESC")


def newest_dump_id(db: Database) -> int | None:
    """The id of the last dump written (ids only grow: papers arrive with dumps)."""
    return db.execute("SELECT max(id) FROM dumps").fetchone()[0]


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
    paper["links"] = paper_links(paper)
    paper["dumps"] = select(
        db,
        "SELECT d.id, d.file_name, d.dump_date, d.source FROM dump_papers dp"
        " JOIN dumps d ON d.id = dp.dump_id WHERE dp.paper_id = ?"
        " ORDER BY d.dump_date, d.id",
        [paper_id],
    )
    paper["days"] = sorted({d["dump_date"] for d in paper["dumps"]})
    return paper


_FTS_WORD = re.compile(r"\w+", re.UNICODE)
#: At most this many search terms reach FTS5 (a pasted abstract is not a query).
MAX_TERMS = 32


def _fts_terms(text: str) -> list[tuple[str, ...]]:
    """The words of each whitespace-separated chunk of ``text``: ``sim-to-real`` is one
    term of three words (a phrase, as the tokenizer splits it), ``graph`` a term of one."""
    terms = [tuple(_FTS_WORD.findall(chunk)) for chunk in text.split()]
    return [t for t in terms if t][:MAX_TERMS]


def _fts_term(words: tuple[str, ...]) -> str:
    # A single word is a prefix ("kernel" finds "kernels"); a phrase is matched as typed.
    return f'"{words[0]}"*' if len(words) == 1 else '"' + " ".join(words) + '"'


def fts_query(text: str, *, any_term: bool = False) -> str | None:
    """Turn what a person typed into a safe FTS5 query, or None if it has no words.

    FTS5 has its own syntax (quotes, NEAR, column filters); passing raw input would make
    ``"`` or ``-`` a syntax error, so only words reach it, quoted. Each word is a prefix;
    words joined by hyphens or other punctuation (``sim-to-real``) are one phrase. Terms
    are AND-ed, or OR-ed with ``any_term``.
    """
    terms = [_fts_term(t) for t in _fts_terms(text)]
    return (" OR " if any_term else " AND ").join(terms) or None


def author_query(text: str) -> str | None:
    """An FTS5 query for papers with every typed word as a whole word of an author name."""
    words = [w for t in _fts_terms(text) for w in t]
    return "authors : (" + " AND ".join(f'"{w}"' for w in words) + ")" if words else None


_SEARCH = (
    "SELECT p.id, p.title, p.abstract, p.url, p.pdf_url, p.hf_url, p.authors,"
    " p.arxiv_id, p.published, p.first_dump_id, bm25(papers_fts, 5.0, 1.0, 3.0) AS rank,"
    " p.id IN (SELECT rowid FROM papers_fts WHERE papers_fts MATCH ?) AS author_hit"
    " FROM papers_fts JOIN papers p ON p.id = papers_fts.rowid"
    " WHERE papers_fts MATCH ? ORDER BY author_hit DESC, rank, p.id LIMIT ? OFFSET ?"
)


def search_papers(db: Database, text: str, *, limit: int = 20, offset: int = 0) -> list[dict]:
    """Full-text search over titles, abstracts and author names (accents folded:
    "Muller" finds "Müller"), best first.

    Papers with every word of the query (:func:`fts_query`) when there are any, else
    those with any of them (``matched``: ``"all"`` or ``"any"``). Papers whose authors
    have every typed word as a name come first (``author_hit``: "Shi" finds Shi before
    "Shift"), then by bm25 (``rank``, lower is better; titles weigh most, then authors).
    Rows carry ``authors`` (a list) and ``links`` (:func:`paper_links`).
    """
    every = fts_query(text)
    if every is None:
        return []
    authors = author_query(text)
    matched = "all"
    if not db.execute(
        "SELECT 1 FROM papers_fts WHERE papers_fts MATCH ? LIMIT 1", [every]
    ).fetchone():
        every, matched = fts_query(text, any_term=True), "any"
    rows = select(db, _SEARCH, [authors, every, limit, offset])
    for row in rows:
        row["authors"] = json.loads(row["authors"] or "[]")
        row["links"] = paper_links(row)
        row["author_hit"] = bool(row["author_hit"])
        row["matched"] = matched
    return rows


def dump_papers(db: Database, dump_id: int, *, new_only: bool = True) -> list[dict]:
    """Papers of a dump in page order; with ``new_only``, those first seen in it."""
    sql = (
        "SELECT p.id, p.title, p.abstract, p.url, p.first_dump_id FROM dump_papers dp"
        " JOIN papers p ON p.id = dp.paper_id WHERE dp.dump_id = ?"
        + (" AND p.first_dump_id = dp.dump_id" if new_only else "")
        + " ORDER BY dp.position"
    )
    return select(db, sql, [dump_id])
