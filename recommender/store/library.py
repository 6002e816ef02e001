"""Library papers (a person's imported references that no dump brought) and followed authors.

A library paper is a ``papers`` row with ``library_of`` set and no dump: the models embed it,
its owner's like of it counts in their own model, and no candidate set, search or page shows
it to anyone (migration 0014 explains).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlite_utils import Database

from ..dumps import normalise_title
from .db import select, transaction


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_key(user_id: int, title: str) -> str:
    """The ``norm_title`` of a library paper: private to its person, never a dump's match."""
    return f"library:{user_id}:{normalise_title(title)}"


def known_arxiv_ids(db: Database, arxiv_ids: Sequence[str]) -> set[str]:
    """Which of these arXiv ids a stored (dump) paper has: they need no lookup."""
    found: set[str] = set()
    for start in range(0, len(arxiv_ids), 500):
        chunk = list(arxiv_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = db.execute(f"SELECT arxiv_id FROM papers WHERE arxiv_id IN ({marks})", chunk)
        found.update(r[0] for r in rows)
    return found


def _match(db: Database, user_id: int, entry) -> tuple[int | None, bool]:
    """``(paper id, is this person's library paper)`` of an entry, or ``(None, False)``."""
    queries = []
    if entry.arxiv_id:
        queries.append(("arxiv_id = ?", entry.arxiv_id))
        queries.append(("external_id = ?", f"arxiv:{entry.arxiv_id}"))
    if entry.doi:
        queries.append(("lower(external_id) IN (?, 'doi:' || ?)", entry.doi))
    if entry.title:
        queries.append(("norm_title = ?", normalise_title(entry.title)))
    for where, value in queries:
        args = [value, value] if where.count("?") == 2 else [value]
        row = db.execute(
            f"SELECT id FROM papers WHERE {where} AND library_of IS NULL", args
        ).fetchone()
        if row:
            return row[0], False
    if entry.title:
        row = db.execute(
            "SELECT id FROM papers WHERE norm_title = ?", [library_key(user_id, entry.title)]
        ).fetchone()
        if row:
            return row[0], True
    return None, False


def _like(db: Database, user_id: int, paper_id: int, now: str) -> str:
    """Like a paper from the library: ``"liked"``; ``"already"`` if the person liked it,
    ``"disliked"`` if they disliked it: kept (a library file, often exported whole, does
    not overrule what the person said about the paper here)."""
    row = db.execute(
        "SELECT value FROM ratings WHERE user_id = ? AND paper_id = ?", [user_id, paper_id]
    ).fetchone()
    if row is not None:
        return "already" if row[0] == 1 else "disliked"
    db.execute(
        "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at)"
        " VALUES (?, ?, 1, 'library', ?, ?)",
        [user_id, paper_id, now, now],
    )
    return "liked"


def import_library(db: Database, user_id: int, entries: Sequence) -> dict:
    """Apply a library (``LibraryEntry`` values) to a person in one transaction.

    An entry paperfeed has (by arXiv id, DOI, else normalised title) is *matched* and
    liked; one it has not, with a title, is *added*: stored as the person's library paper
    and liked. An entry with neither a match nor a title is *untitled*. Returns
    ``{"matched", "added", "already", "disliked", "untitled": [entry, ...]}``
    (``already``: liked or added by an earlier import; ``disliked``: matched papers the
    person disliked, whose dislike is kept).
    """
    now = _now()
    result = {"matched": 0, "added": 0, "already": 0, "disliked": 0, "untitled": []}
    seen: set[int] = set()
    with transaction(db):
        for entry in entries:
            paper_id, own = _match(db, user_id, entry)
            if paper_id is None and not entry.title:
                result["untitled"].append(entry)
                continue
            if paper_id is None:
                paper_id = _insert_library_paper(db, user_id, entry, now)
                _like(db, user_id, paper_id, now)
                result["added"] += 1
            elif paper_id in seen:
                result["already"] += 1  # the same paper twice in one file
                continue
            else:
                done = _like(db, user_id, paper_id, now)
                if done == "liked":
                    result["added" if own else "matched"] += 1
                else:
                    result[done] += 1
            seen.add(paper_id)
    return result


def _insert_library_paper(db: Database, user_id: int, entry, now: str) -> int:
    if entry.arxiv_id:
        url = f"https://arxiv.org/abs/{entry.arxiv_id}"
    elif entry.doi:
        url = f"https://doi.org/{entry.doi}"
    else:
        url = None
    cursor = db.execute(
        "INSERT INTO papers (norm_title, title, abstract, url, authors, published,"
        " first_dump_id, created_at, library_of) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        [
            library_key(user_id, entry.title),
            entry.title,
            entry.abstract or "",
            url,
            json.dumps(list(entry.authors), ensure_ascii=False),
            entry.year,
            now,
            user_id,
        ],
    )
    return cursor.lastrowid


def library_papers(db: Database, user_id: int) -> list[dict]:
    """A person's library papers, newest first: ``{"id", "title", "published"}``."""
    return select(
        db,
        "SELECT id, title, published FROM papers WHERE library_of = ? ORDER BY id DESC",
        [user_id],
    )


def library_titles(db: Database, paper_ids: Sequence[int]) -> dict[int, dict]:
    """``{id: {"id", "title"}}`` of these papers that are library papers: a ranking names
    its person's own liked library paper as the reason ("because you liked ..."); nothing
    else of it is ever shown."""
    found: dict[int, dict] = {}
    ids = [int(p) for p in paper_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in select(
            db,
            f"SELECT id, title FROM papers WHERE library_of IS NOT NULL AND id IN ({marks})",
            chunk,
        ):
            found[row["id"]] = row
    return found


def library_paper_ids(db: Database, paper_ids: Sequence[int]) -> set[int]:
    """Which of these papers are someone's library papers (never shown as candidates)."""
    found: set[int] = set()
    for start in range(0, len(paper_ids), 500):
        chunk = [int(p) for p in paper_ids[start : start + 500]]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT id FROM papers WHERE library_of IS NOT NULL AND id IN ({marks})", chunk
        )
        found.update(r[0] for r in rows)
    return found


# -- followed authors -------------------------------------------------------------------------


def follow_author(db: Database, user_id: int, name: str) -> str:
    """Follow an author by name; returns the key it is matched by (a repeat is no change)."""
    from ..authors import author_key

    key = author_key(name)
    if not key:
        raise ValueError("an author name needs at least one letter")
    with transaction(db):
        db.execute(
            "INSERT INTO follows (user_id, author_key, name, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id, author_key) DO NOTHING",
            [user_id, key, " ".join(name.split()), _now()],
        )
    return key


def unfollow_author(db: Database, user_id: int, author_key: str) -> bool:
    with transaction(db):
        cursor = db.execute(
            "DELETE FROM follows WHERE user_id = ? AND author_key = ?", [user_id, author_key]
        )
    return bool(cursor.rowcount)


def followed_authors(db: Database, user_id: int) -> list[dict]:
    """``{"author_key", "name", "created_at"}`` of everyone the person follows, by name."""
    return select(
        db,
        "SELECT author_key, name, created_at FROM follows WHERE user_id = ?"
        " ORDER BY name COLLATE NOCASE",
        [user_id],
    )


def follows_many(db: Database, user_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """``{user_id: {author_key: name}}`` for the people who follow anyone."""
    found: dict[int, dict[str, str]] = {}
    for start in range(0, len(user_ids), 500):
        chunk = [int(u) for u in user_ids[start : start + 500]]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT user_id, author_key, name FROM follows WHERE user_id IN ({marks})", chunk
        )
        for user_id, key, name in rows:
            found.setdefault(user_id, {})[key] = name
    return found


def paper_authors(db: Database, paper_ids: Sequence[int]) -> dict[int, list[str]]:
    """``{paper_id: [author names]}`` (for matching followed authors over a candidate set)."""
    found: dict[int, list[str]] = {}
    ids = [int(p) for p in paper_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT id, authors FROM papers WHERE id IN ({marks}) AND authors != '[]'", chunk
        )
        found.update((pid, json.loads(authors)) for pid, authors in rows)
    return found


def set_follows_pass_muted(db: Database, user_id: int, value: bool) -> None:
    with transaction(db):
        db.execute(
            "UPDATE users SET follows_pass_muted = ? WHERE id = ?", [1 if value else 0, user_id]
        )
