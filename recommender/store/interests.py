"""Interests: a person's named profiles, and which interest each of their likes is filed under.

A like whose ``interest_id`` is NULL belongs to the person's *default* interest (key 0 in
:func:`like_interests_many`); a person who never names an interest has only that one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlite_utils import Database

from .db import select, transaction

#: Longest interest name (the migration's CHECK says the same).
NAME_MAX = 80
#: What the default interest (likes filed under no named interest) is called.
DEFAULT_INTEREST = "General"


class InterestError(ValueError):
    """A request about interests that cannot be done; the message says why."""


def clean_name(name: str | None) -> str:
    """An interest's name as stored: spaces collapsed; :class:`InterestError` if unusable."""
    cleaned = " ".join(str(name or "").split())
    if not cleaned:
        raise InterestError("Give the interest a name.")
    if len(cleaned) > NAME_MAX:
        raise InterestError(f"An interest's name has at most {NAME_MAX} characters.")
    if cleaned.casefold() == DEFAULT_INTEREST.casefold():
        raise InterestError(f"“{DEFAULT_INTEREST}” is the default interest's name; choose another.")
    return cleaned


def list_interests(db: Database, user_id: int) -> list[dict]:
    """A person's named interests, oldest first: ``{"id", "name", "likes"}``."""
    return select(
        db,
        "SELECT i.id, i.name, (SELECT count(*) FROM ratings r WHERE r.user_id = i.user_id"
        " AND r.interest_id = i.id AND r.value > 0) AS likes"
        " FROM interests i WHERE i.user_id = ? ORDER BY i.id",
        [user_id],
    )


def _owned(db: Database, user_id: int, interest_id: int) -> None:
    row = db.execute(
        "SELECT 1 FROM interests WHERE id = ? AND user_id = ?", [interest_id, user_id]
    ).fetchone()
    if row is None:
        raise InterestError("No such interest: it may have been deleted or merged.")


def _unique(db: Database, user_id: int, name: str, *, besides: int | None = None) -> None:
    row = db.execute(
        "SELECT id FROM interests WHERE user_id = ? AND name = ? AND id IS NOT ?",
        [user_id, name, besides],
    ).fetchone()
    if row is not None:
        raise InterestError(f"You already have an interest called “{name}”.")


def create_interest(db: Database, user_id: int, name: str) -> int:
    """A new, empty interest; returns its id."""
    name = clean_name(name)
    with transaction(db):
        _unique(db, user_id, name)
        cursor = db.execute(
            "INSERT INTO interests (user_id, name, created_at) VALUES (?, ?, ?)",
            [user_id, name, datetime.now(UTC).isoformat(timespec="seconds")],
        )
    return int(cursor.lastrowid)


def rename_interest(db: Database, user_id: int, interest_id: int, name: str) -> None:
    name = clean_name(name)
    with transaction(db):
        _owned(db, user_id, interest_id)
        _unique(db, user_id, name, besides=interest_id)
        db.execute("UPDATE interests SET name = ? WHERE id = ?", [name, interest_id])


def merge_interests(db: Database, user_id: int, source_id: int, target_id: int | None) -> int:
    """File every rating of ``source_id`` under ``target_id`` (None: the default interest)
    and delete ``source_id``; returns how many ratings moved. One transaction."""
    if source_id == target_id:
        raise InterestError("An interest cannot be merged into itself.")
    with transaction(db):
        _owned(db, user_id, source_id)
        if target_id is not None:
            _owned(db, user_id, target_id)
        moved = db.execute(
            "UPDATE ratings SET interest_id = ? WHERE user_id = ? AND interest_id = ?",
            [target_id, user_id, source_id],
        ).rowcount
        db.execute("DELETE FROM interests WHERE id = ?", [source_id])
    return moved


def delete_interest(db: Database, user_id: int, interest_id: int) -> int:
    """Delete an interest; its likes go back to the default interest (none is lost)."""
    return merge_interests(db, user_id, interest_id, None)


def file_rating(db: Database, user_id: int, paper_id: int, interest_id: int | None) -> None:
    """File an existing rating under ``interest_id`` (None: the default interest)."""
    with transaction(db):
        if interest_id is not None:
            _owned(db, user_id, interest_id)
        db.execute(
            "UPDATE ratings SET interest_id = ? WHERE user_id = ? AND paper_id = ?",
            [interest_id, user_id, paper_id],
        )


def like_interests_many(db: Database, user_ids: Sequence[int]) -> dict[int, dict[int, int]]:
    """``{user_id: {paper_id: interest key}}`` of each person's likes filed under a named
    interest (the key is the interest id; likes of the default interest are absent)."""
    found: dict[int, dict[int, int]] = {int(u): {} for u in user_ids}
    ids = list(found)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.execute(
            "SELECT user_id, paper_id, interest_id FROM ratings WHERE interest_id IS NOT NULL"
            f" AND value > 0 AND user_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for user_id, paper_id, interest_id in rows.fetchall():
            found[user_id][paper_id] = interest_id
    return found


def interests_many(db: Database, user_ids: Sequence[int]) -> dict[int, list[dict]]:
    """Each person's interests, ``{"key", "name", "likes"}``: the default one first (key 0,
    with the person's onboarding ``keywords``), then the named ones, oldest first. Empty for
    a person who named none: they have one interest, every like together."""
    found: dict[int, list[dict]] = {int(u): [] for u in user_ids}
    ids = list(found)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        named = select(
            db,
            f"SELECT i.id, i.user_id, i.name, u.keywords FROM interests i"
            f" JOIN users u ON u.id = i.user_id WHERE i.user_id IN ({marks}) ORDER BY i.id",
            chunk,
        )
        if not named:
            continue
        counts = {
            (u, k): n
            for u, k, n in db.execute(
                "SELECT user_id, coalesce(interest_id, 0), count(*) FROM ratings"
                f" WHERE value > 0 AND user_id IN ({marks}) GROUP BY 1, 2",
                chunk,
            ).fetchall()
        }
        for row in named:
            uid = row["user_id"]
            if not found[uid]:
                found[uid].append(
                    {
                        "key": 0,
                        "name": DEFAULT_INTEREST,
                        "likes": counts.get((uid, 0), 0),
                        "keywords": row["keywords"],
                    }
                )
            found[uid].append(
                {"key": row["id"], "name": row["name"], "likes": counts.get((uid, row["id"]), 0)}
            )
    return found
