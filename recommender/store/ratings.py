"""Ratings, impressions (what a person was shown) and precomputed feed rankings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlite_utils import Database

from .db import busy_timeout_ms, select, transaction
from .papers import DATED_RECENTLY

#: The longest a page waits to record its impressions behind another writer.
IMPRESSION_WAIT_MS = 250


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


#: ``interest_id`` of :func:`set_rating` when the rating keeps the interest it had.
KEEP_INTEREST = object()


def set_rating(
    db: Database,
    user_id: int,
    paper_id: int,
    value: int,
    *,
    source: str = "web",
    interest_id=KEEP_INTEREST,
):
    """Record a like (+1) or dislike (-1); a second rating of the same paper replaces the first.

    ``interest_id`` files the rating under one of the person's interests (None: the default
    interest); left out, a new rating goes to the default and a changed one keeps its own.
    """
    if value not in (1, -1):
        raise ValueError(f"a rating is 1 or -1, not {value!r}")
    now = _now()
    keep = interest_id is KEEP_INTEREST
    with transaction(db):
        if not keep and interest_id is not None:
            owned = db.execute(
                "SELECT 1 FROM interests WHERE id = ? AND user_id = ?", [interest_id, user_id]
            ).fetchone()
            if owned is None:
                raise ValueError("no such interest: it may have been deleted or merged")
        db.execute(
            "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at,"
            " interest_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, paper_id) DO UPDATE SET value = excluded.value,"
            " source = excluded.source, updated_at = excluded.updated_at"
            + ("" if keep else ", interest_id = excluded.interest_id"),
            [user_id, paper_id, value, source, now, now, None if keep else interest_id],
        )


def delete_rating(db: Database, user_id: int, paper_id: int) -> None:
    with transaction(db):
        db.execute("DELETE FROM ratings WHERE user_id = ? AND paper_id = ?", [user_id, paper_id])


def delete_all_ratings(db: Database, user_id: int) -> int:
    """Forget a person's ratings and impressions (reset personalisation).

    Returns the number of ratings removed.
    """
    with transaction(db):
        removed = db.execute("DELETE FROM ratings WHERE user_id = ?", [user_id]).rowcount
        db.execute("DELETE FROM impressions WHERE user_id = ?", [user_id])
    return removed


def user_ratings(db: Database, user_id: int) -> list[dict]:
    """A person's ratings, newest first, with the paper's title."""
    return select(
        db,
        "SELECT r.paper_id, p.title, p.abstract, p.url, p.authors, p.published, r.value,"
        " r.source, r.created_at, r.updated_at, i.name AS interest"
        " FROM ratings r JOIN papers p ON p.id = r.paper_id"
        " LEFT JOIN interests i ON i.id = r.interest_id WHERE r.user_id = ?"
        " ORDER BY r.updated_at DESC, r.paper_id DESC",
        [user_id],
    )


def rating_values(db: Database, user_id: int) -> dict[int, int]:
    """``{paper_id: value}`` for one person."""
    rows = db.execute("SELECT paper_id, value FROM ratings WHERE user_id = ?", [user_id])
    return dict(rows.fetchall())


def rating_counts(db: Database, user_id: int) -> tuple[int, int]:
    """``(likes, ratings)`` of one person."""
    likes, total = db.execute(
        "SELECT coalesce(sum(value > 0), 0), count(*) FROM ratings WHERE user_id = ?", [user_id]
    ).fetchone()
    return int(likes), int(total)


def all_ratings(db: Database) -> list[tuple[int, int, int]]:
    """Every ``(user_id, paper_id, value)``, for fitting the collaborative model.

    Likes of library papers are left out: such a paper is one person's, so no one else can
    ever like it; in the collaborative model it would carry no co-likes, only a factor fitted
    to its owner's other likes (and the popularity signal would count it). Its owner's own
    model reads it from their ratings (:func:`rating_values`).
    """
    return db.execute(f"SELECT r.user_id, r.paper_id, r.value {_FITTED_RATINGS}").fetchall()


#: The ratings a fit reads (:func:`all_ratings`): library papers' likes left out.
_FITTED_RATINGS = (
    "FROM ratings r"
    " WHERE r.paper_id NOT IN (SELECT id FROM papers WHERE library_of IS NOT NULL)"
    " ORDER BY r.user_id"
)


def all_ratings_and_changes(db: Database, since: str) -> tuple[list[tuple[int, int, int]], int]:
    """:func:`all_ratings`, and how many of them were written at or after ``since`` (an ISO
    time), read in one query: one snapshot, so the count is of exactly the rows returned.

    Every writer stamps ``updated_at`` with its UTC ISO time to the second; the comparison
    is of times (``julianday``), not strings, so another ISO spelling of a time still
    compares right, and a row whose ``updated_at`` is not a time counts as written since.
    """
    rows = db.execute(
        "SELECT r.user_id, r.paper_id, r.value,"
        " coalesce(julianday(r.updated_at) >= julianday(?), 1) " + _FITTED_RATINGS,
        [since],
    ).fetchall()
    return [(u, p, v) for u, p, v, _ in rows], sum(changed for *_, changed in rows)


def mark_shown(
    db: Database, user_id: int, paper_ids: Iterable[int], *, channel: str, day: str
) -> None:
    """Remember that these papers were shown to the person; the first showing wins.

    Papers already recorded are skipped before any write lock is taken: reloading
    a page must not queue behind other writers for nothing.
    """
    ids = sorted({int(pid) for pid in paper_ids})
    if not ids:
        return
    known: set[int] = set()
    for chunk, marks in _chunks(ids):
        known.update(
            r[0]
            for r in db.execute(
                f"SELECT paper_id FROM impressions WHERE user_id = ? AND paper_id IN ({marks})",
                [user_id, *chunk],
            ).fetchall()
        )
    rows = [(user_id, pid, channel, day) for pid in ids if pid not in known]
    if not rows:
        return
    # Bookkeeping beside a read: never hold a page for long behind another writer.
    with transaction(db, wait_ms=min(IMPRESSION_WAIT_MS, busy_timeout_ms(db.conn))):
        db.conn.executemany(
            "INSERT OR IGNORE INTO impressions (user_id, paper_id, channel, shown_on)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )


def shown_before(db: Database, user_id: int, day: str) -> set[int]:
    """Papers first shown to the person on a day before ``day``."""
    rows = db.execute(
        "SELECT paper_id FROM impressions WHERE user_id = ? AND shown_on < ?", [user_id, day]
    )
    return {r[0] for r in rows.fetchall()}


def recent_paper_ids(db: Database, days: int) -> list[int]:
    """Papers first seen in the newest dump or in a dump dated within ``days`` days before it:
    the papers people are shown, whose neighbourhoods a published model precomputes."""
    rows = db.execute(
        "SELECT p.id FROM papers p JOIN dumps d ON d.id = p.first_dump_id"
        f" WHERE {DATED_RECENTLY} ORDER BY p.id",
        [f"-{int(days)} days"],
    )
    return [r[0] for r in rows.fetchall()]


def person_fingerprint(db: Database, user_id: int, day: str) -> tuple:
    """What a person's feed depends on besides the model and the papers, in a few numbers:
    their ratings (count and a hash of the set) and how many papers they were shown before
    ``day`` (first showings never change, so the count names the set). Cheap: two
    primary-key range reads."""
    ratings = db.execute(
        "SELECT count(*), coalesce(sum((paper_id * 2654435761 + value + 2) % 4294967291), 0),"
        " coalesce(sum(paper_id * value), 0) FROM ratings WHERE user_id = ?",
        [user_id],
    ).fetchone()
    filed = db.execute(
        "SELECT count(*), coalesce(sum(paper_id * interest_id), 0),"
        " (SELECT group_concat(id || ':' || name, '|') FROM interests WHERE user_id = ?)"
        " FROM ratings WHERE user_id = ? AND interest_id IS NOT NULL",
        [user_id, user_id],
    ).fetchone()
    shown = db.execute(
        "SELECT count(*) FROM impressions WHERE user_id = ? AND shown_on < ?", [user_id, day]
    ).fetchone()[0]
    return (*ratings, *filed, shown)


def count_papers_after(db: Database, paper_id: int) -> int:
    """Papers with an id above ``paper_id`` (those a model fitted up to it does not know)."""
    return db.execute("SELECT count(*) FROM papers WHERE id > ?", [paper_id]).fetchone()[0]


def user_ids(db: Database) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM users ORDER BY id").fetchall()]


def user_profile_fields(db: Database, user_id: int) -> dict | None:
    """The fields ranking needs: keywords, muted keywords (JSON), time zone, and whom they
    follow (``follows``: the followed authors' keys, for the feed's memo key)."""
    rows = select(
        db,
        "SELECT id, keywords, muted_keywords, timezone, follows_pass_muted,"
        " (SELECT group_concat(author_key, '|') FROM follows f WHERE f.user_id = users.id)"
        " AS follows FROM users WHERE id = ?",
        [user_id],
    )
    return rows[0] if rows else None


def all_papers(db: Database) -> list[tuple[int, str, str]]:
    """Every ``(id, title, abstract)`` in id order: the rows of the model's paper matrix."""
    return db.execute("SELECT id, title, abstract FROM papers ORDER BY id").fetchall()


def paper_ids(db: Database) -> list[int]:
    """Every paper id in id order (the rows a model fitted now would have)."""
    return [r[0] for r in db.execute("SELECT id FROM papers ORDER BY id").fetchall()]


def papers_after(db: Database, paper_id: int) -> list[tuple[int, str, str]]:
    """``(id, title, abstract)`` of the papers with an id above ``paper_id``, in id order."""
    return db.execute(
        "SELECT id, title, abstract FROM papers WHERE id > ? ORDER BY id", [paper_id]
    ).fetchall()


def count_ratings(db: Database) -> int:
    return db.execute("SELECT count(*) FROM ratings").fetchone()[0]


def max_paper_id(db: Database) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM papers").fetchone()[0]


def papers_by_ids(db: Database, paper_ids: Sequence[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for chunk, marks in _chunks(paper_ids):
        for row in select(
            db,
            "SELECT p.id, p.title, p.abstract, p.url, p.first_dump_id, d.dump_date, p.authors,"
            " p.arxiv_id, p.pdf_url, p.hf_url, p.published, p.ai_summary, p.thumbnail"
            f" FROM papers p JOIN dumps d ON d.id = p.first_dump_id WHERE p.id IN ({marks})",
            chunk,
        ):
            found[row["id"]] = row
    return found


def paper_title(db: Database, paper_id: int) -> str | None:
    """A paper's title, or None if there is no such paper."""
    row = db.execute("SELECT title FROM papers WHERE id = ?", [paper_id]).fetchone()
    return None if row is None else row[0]


def existing_paper_ids(db: Database, paper_ids: Iterable[int]) -> set[int]:
    """Which of these ids are papers (reads the primary key only)."""
    found: set[int] = set()
    for chunk, marks in _chunks(sorted(paper_ids)):
        rows = db.execute(f"SELECT id FROM papers WHERE id IN ({marks})", chunk)
        found.update(r[0] for r in rows.fetchall())
    return found


def dump_new_paper_ids(db: Database, dump_id: int) -> list[int]:
    rows = db.execute(
        "SELECT dp.paper_id FROM dump_papers dp JOIN papers p ON p.id = dp.paper_id"
        " WHERE dp.dump_id = ? AND p.first_dump_id = dp.dump_id ORDER BY dp.position",
        [dump_id],
    )
    return [r[0] for r in rows.fetchall()]


def _chunks(ids: Sequence[int], size: int = 500):
    ids = list(ids)
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


def rating_values_many(db: Database, user_ids: Sequence[int]) -> dict[int, dict[int, int]]:
    """``{user_id: {paper_id: value}}`` for many people at once (everyone asked is a key)."""
    found: dict[int, dict[int, int]] = {int(u): {} for u in user_ids}
    if len(found) == 1:  # one person (a feed load): the dict is built in C
        (user_id,) = found
        rows = db.execute("SELECT paper_id, value FROM ratings WHERE user_id = ?", [user_id])
        return {user_id: dict(rows.fetchall())}
    for chunk, marks in _chunks(found):
        rows = db.execute(
            f"SELECT user_id, paper_id, value FROM ratings WHERE user_id IN ({marks})", chunk
        )
        for user_id, paper_id, value in rows.fetchall():
            found[user_id][paper_id] = value
    return found


def user_profile_fields_many(db: Database, user_ids: Sequence[int]) -> dict[int, dict]:
    """:func:`user_profile_fields` for many people: ``{user_id: row}`` (unknown ids absent)."""
    found: dict[int, dict] = {}
    for chunk, marks in _chunks(user_ids):
        for row in select(
            db,
            f"SELECT id, keywords, muted_keywords, timezone, follows_pass_muted FROM users"
            f" WHERE id IN ({marks})",
            chunk,
        ):
            found[row["id"]] = row
    return found


def shown_before_many(
    db: Database, days: dict[int, str], paper_ids: Sequence[int] | None = None
) -> dict[int, set[int]]:
    """:func:`shown_before` for many people: ``days`` maps each person to their local day.

    For one person, ``paper_ids`` (the papers about to be ranked) limits the read to
    their id range: a year of daily feeds is thousands of impressions, a feed load needs
    its dump's, whose papers were inserted together (one primary-key range read, however
    many papers the dump has).
    """
    found: dict[int, set[int]] = {int(u): set() for u in days}
    if len(found) == 1 and paper_ids is not None:
        ((user_id, day),) = days.items()
        ids = paper_ids
        if len(ids):
            # a numpy array's own min and max: Python's would walk 50,000 ids one by one
            low, high = (ids.min(), ids.max()) if hasattr(ids, "min") else (min(ids), max(ids))
            rows = db.execute(
                "SELECT paper_id FROM impressions WHERE user_id = ? AND paper_id BETWEEN ? AND ?"
                " AND shown_on < ?",
                [user_id, int(low), int(high), day],
            )
            # papers in the range but not asked for do no harm: callers only filter by it
            found[int(user_id)] = {r[0] for r in rows.fetchall()}
        return found
    for chunk, marks in _chunks(found):
        rows = db.execute(
            f"SELECT user_id, paper_id, shown_on FROM impressions WHERE user_id IN ({marks})",
            chunk,
        )
        for user_id, paper_id, shown_on in rows.fetchall():
            if shown_on < days[user_id]:
                found[user_id].add(paper_id)
    return found
