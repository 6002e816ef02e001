"""People: accounts, settings, feed tokens, login attempts, and their ratings as a whole.

Single ratings are written by :func:`recommender.feedback.record_feedback`; this module
holds what concerns a person's account and their ratings in bulk (export, import,
reset). Rows come back as plain dicts; ``muted_keywords`` is decoded to a list.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlite_utils import Database

from ..dumps import normalise_title
from .db import select, transaction
from .papers import StoreError

#: Settings a person may change, and the Python type each column holds.
SETTING_COLUMNS = {
    "digest_enabled": int,
    "digest_cadence": str,
    "digest_weekday": int,
    "digest_hour": int,
    "timezone": str,
    "digest_size": int,
    "min_score": float,
    "feed_layout": str,
}
#: How the feed lists papers (``users.feed_layout``): cards, or one line a paper.
FEED_LAYOUTS = ("cards", "compact")


class UserExists(StoreError):
    """An account with this email address exists already."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _decode(row: dict | None) -> dict | None:
    if row is not None:
        row["muted_keywords"] = json.loads(row["muted_keywords"] or "[]")
    return row


def _one(db: Database, sql: str, params: Sequence) -> dict | None:
    rows = select(db, sql, list(params))
    return _decode(rows[0]) if rows else None


def new_auth_secret() -> str:
    """A fresh random account secret (see :func:`rotate_auth_secret`)."""
    return secrets.token_hex(32)


def create_user(db: Database, email: str, password_hash: str | None, *, keywords: str = "") -> int:
    """Insert a person; return their id (never one an earlier account had: AUTOINCREMENT).
    :class:`UserExists` if the email is taken."""
    try:
        with transaction(db):
            cursor = db.execute(
                "INSERT INTO users (email, password_hash, created_at, auth_secret, keywords)"
                " VALUES (?, ?, ?, ?, ?)",
                [email.strip(), password_hash, _now(), new_auth_secret(), keywords],
            )
    except sqlite3.IntegrityError:
        raise UserExists(f"an account for {email} exists already") from None
    return cursor.lastrowid


def get_user(db: Database, user_id: int) -> dict | None:
    return _one(db, "SELECT * FROM users WHERE id = ?", [user_id])


def get_user_by_email(db: Database, email: str) -> dict | None:
    """Case-insensitive (the column is COLLATE NOCASE)."""
    return _one(db, "SELECT * FROM users WHERE email = ?", [email.strip()])


def get_user_by_feed_token(db: Database, token: str) -> dict | None:
    if not token:
        return None
    return _one(db, "SELECT * FROM users WHERE feed_token = ?", [token])


def list_users(db: Database) -> list[dict]:
    """Every person with their number of likes and dislikes, oldest account first."""
    return select(
        db,
        "SELECT u.id, u.email, u.created_at, u.email_confirmed_at,"
        " count(CASE WHEN r.value = 1 THEN 1 END) AS likes,"
        " count(CASE WHEN r.value = -1 THEN 1 END) AS dislikes"
        " FROM users u LEFT JOIN ratings r ON r.user_id = u.id"
        " GROUP BY u.id ORDER BY u.id",
    )


def set_password(db: Database, user_id: int, password_hash: str) -> str:
    """Store a new hash and a new ``auth_secret`` (ends every session, spends reset links).

    Returns the new secret.
    """
    secret = new_auth_secret()
    with transaction(db):
        db.execute(
            "UPDATE users SET password_hash = ?, auth_secret = ? WHERE id = ?",
            [password_hash, secret, user_id],
        )
    return secret


def rotate_auth_secret(db: Database, user_id: int) -> str:
    """Replace the account's ``auth_secret``: every session and reset link made with the
    old one stops working (logout). Returns the new secret."""
    secret = new_auth_secret()
    with transaction(db):
        db.execute("UPDATE users SET auth_secret = ? WHERE id = ?", [secret, user_id])
    return secret


def confirm_email(db: Database, user_id: int, email: str) -> bool:
    """Mark the address confirmed if it is still the person's address; True if it is."""
    with transaction(db):
        cursor = db.execute(
            "UPDATE users SET email_confirmed_at = coalesce(email_confirmed_at, ?)"
            " WHERE id = ? AND email = ?",
            [_now(), user_id, email],
        )
    return cursor.rowcount == 1


def update_settings(db: Database, user_id: int, values: dict) -> None:
    """Write digest settings. ``values`` keys must be in :data:`SETTING_COLUMNS`.

    The table's CHECK constraints are the last line of defence; callers validate
    first so that a person sees which field is wrong.
    """
    unknown = set(values) - set(SETTING_COLUMNS)
    if unknown:
        raise ValueError(f"not a setting: {', '.join(sorted(unknown))}")
    if not values:
        return
    assignments = ", ".join(f"{column} = ?" for column in values)
    with transaction(db):
        db.execute(f"UPDATE users SET {assignments} WHERE id = ?", [*values.values(), user_id])


def set_keywords(db: Database, user_id: int, keywords: str) -> None:
    """The free-text topics typed at onboarding (used until the person has likes)."""
    with transaction(db):
        db.execute("UPDATE users SET keywords = ? WHERE id = ?", [keywords.strip(), user_id])


def set_muted_keywords(db: Database, user_id: int, words: Iterable[str]) -> list[str]:
    """Replace the muted keywords (stripped, de-duplicated ignoring case); return them."""
    seen: dict[str, str] = {}
    for word in words:
        word = " ".join(word.split())
        if word and word.lower() not in seen:
            seen[word.lower()] = word
    muted = list(seen.values())
    with transaction(db):
        db.execute("UPDATE users SET muted_keywords = ? WHERE id = ?", [json.dumps(muted), user_id])
    return muted


def rotate_feed_token(db: Database, user_id: int) -> str:
    """A new secret for the private Atom feed URL; the old URL stops working."""
    token = secrets.token_urlsafe(24)
    with transaction(db):
        db.execute("UPDATE users SET feed_token = ? WHERE id = ?", [token, user_id])
    return token


def revoke_feed_token(db: Database, user_id: int) -> None:
    with transaction(db):
        db.execute("UPDATE users SET feed_token = NULL WHERE id = ?", [user_id])


def delete_user(db: Database, user_id: int) -> bool:
    """Delete the person and everything about them; True if they existed.

    Ratings, impressions and feed rankings go by ``ON DELETE CASCADE``; failed
    login records are keyed by email, so they are deleted here.
    """
    with transaction(db):
        row = db.execute("SELECT email FROM users WHERE id = ?", [user_id]).fetchone()
        if row is None:
            return False
        db.execute("DELETE FROM login_attempts WHERE email = ?", [row[0]])
        db.execute("DELETE FROM users WHERE id = ?", [user_id])
    return True


# -- login rate limiting ---------------------------------------------------------------


def record_login_failure(
    db: Database, email: str, remote_addr: str, when: float, *, device: str = ""
) -> None:
    """Remember a failed login (unix time ``when``) from ``remote_addr`` and ``device`` (a
    trusted browser's nonce, '' for none); prune records older than a day."""
    with transaction(db):
        db.execute(
            "INSERT INTO login_attempts (email, remote_addr, attempted_at, device)"
            " VALUES (?, ?, ?, ?)",
            [email.strip(), remote_addr, when, device],
        )
        db.execute("DELETE FROM login_attempts WHERE attempted_at < ?", [when - 86400])


def recent_login_failures(
    db: Database, email: str, remote_addr: str, since: float, *, device: str = ""
) -> dict:
    """Failures since unix time ``since``: ``{"email": n, "addr": n, "oldest": t | None}``.

    With ``device`` '' the failures of browsers without a device cookie are counted, per
    address (``email``) and per client (``addr``); with a device nonce, only that
    browser's failures for this address (both counts). ``oldest`` is the earliest failure
    counted for this email, for "try again in" messages.
    """
    by_email, oldest = db.execute(
        "SELECT count(*), min(attempted_at) FROM login_attempts"
        " WHERE email = ? AND device = ? AND attempted_at >= ?",
        [email.strip(), device, since],
    ).fetchone()
    if device:
        return {"email": by_email, "addr": by_email, "oldest": oldest}
    by_addr = db.execute(
        "SELECT count(*) FROM login_attempts"
        " WHERE remote_addr = ? AND device = '' AND attempted_at >= ?",
        [remote_addr, since],
    ).fetchone()[0]
    return {"email": by_email, "addr": by_addr, "oldest": oldest}


def clear_login_failures(db: Database, email: str, *, device: str = "") -> None:
    """Forget an address's failures from ``device`` ('' for browsers without a device
    cookie) after a successful login from it."""
    with transaction(db):
        db.execute(
            "DELETE FROM login_attempts WHERE email = ? AND device = ?", [email.strip(), device]
        )


def count_reset_request(db: Database, email: str, remote_addr: str, when: float, since: float):
    """Record a password-reset request; return ``(by_email, by_addr)``, the requests since
    unix time ``since`` including this one. Records older than a day are pruned."""
    with transaction(db):
        db.execute("DELETE FROM reset_requests WHERE requested_at < ?", [when - 86400])
        db.execute(
            "INSERT INTO reset_requests (email, remote_addr, requested_at) VALUES (?, ?, ?)",
            [email.strip(), remote_addr, when],
        )
        by_email = db.execute(
            "SELECT count(*) FROM reset_requests WHERE email = ? AND requested_at >= ?",
            [email.strip(), since],
        ).fetchone()[0]
        by_addr = db.execute(
            "SELECT count(*) FROM reset_requests WHERE remote_addr = ? AND requested_at >= ?",
            [remote_addr, since],
        ).fetchone()[0]
    return by_email, by_addr


# -- ratings in bulk ---------------------------------------------------------------------


def ratings_for_export(db: Database, user_id: int) -> list[dict]:
    """The person's ratings with what identifies each paper elsewhere, oldest first.

    Keys: ``paper_id, title, external_id, arxiv_id, url, authors`` (list), ``published,
    value, created_at, interest`` (the interest's name; None: the default one).
    """
    rows = select(
        db,
        "SELECT p.id AS paper_id, p.title, p.external_id, p.arxiv_id, p.url, p.authors,"
        " p.published, r.value, r.created_at, i.name AS interest"
        " FROM ratings r JOIN papers p ON p.id = r.paper_id"
        " LEFT JOIN interests i ON i.id = r.interest_id"
        " WHERE r.user_id = ? ORDER BY r.created_at, p.id",
        [user_id],
    )
    for row in rows:
        row["authors"] = json.loads(row["authors"] or "[]")
    return rows


def import_ratings(db: Database, user_id: int, items: Sequence[tuple]) -> dict:
    """Apply ``(external_id, title, value[, interest])`` ratings in one transaction.

    A paper is found by external id, else by normalised title (as ingest does). A
    rating replaces the person's earlier rating of the same paper. ``interest`` names the
    interest a like is filed under, created if the person has none of that name (the
    default interest's name: the default; None: a new rating goes to the default and an
    earlier one stays where it was, so a file without interests moves nothing). Returns
    ``{"imported": n, "unchanged": n, "unmatched": [titles]}``.
    """
    now = _now()
    imported = unchanged = 0
    unmatched: list[str] = []
    with transaction(db):
        for external_id, title, value, *filed in items:
            name = filed[0] if filed else None
            interest_id = _interest_id(db, user_id, name) if name else None
            row = None
            if external_id:
                row = db.execute(
                    "SELECT id FROM papers WHERE external_id = ?", [external_id]
                ).fetchone()
            if row is None:
                row = db.execute(
                    "SELECT id FROM papers WHERE norm_title = ?", [normalise_title(title)]
                ).fetchone()
            if row is None:
                unmatched.append(title)
                continue
            cursor = db.execute(
                "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at,"
                " interest_id) VALUES (?, ?, ?, 'import', ?, ?, ?)"
                " ON CONFLICT (user_id, paper_id) DO UPDATE SET value = excluded.value,"
                " source = 'import', updated_at = excluded.updated_at,"
                " interest_id = CASE WHEN ? THEN excluded.interest_id ELSE ratings.interest_id END"
                " WHERE ratings.value != excluded.value"
                " OR (? AND ratings.interest_id IS NOT excluded.interest_id)",
                [user_id, row[0], value, now, now, interest_id, bool(name), bool(name)],
            )
            if cursor.rowcount:
                imported += 1
            else:
                unchanged += 1
    return {"imported": imported, "unchanged": unchanged, "unmatched": unmatched}


def _interest_id(db: Database, user_id: int, name: str | None) -> int | None:
    """The id of the person's interest called ``name``, made if missing (inside the caller's
    transaction); None for the default interest's name."""
    from .interests import DEFAULT_INTEREST, clean_name

    if " ".join(name.split()).casefold() == DEFAULT_INTEREST.casefold():
        return None
    name = clean_name(name)
    row = db.execute(
        "SELECT id FROM interests WHERE user_id = ? AND name = ?", [user_id, name]
    ).fetchone()
    if row is not None:
        return row[0]
    return db.execute(
        "INSERT INTO interests (user_id, name, created_at) VALUES (?, ?, ?)",
        [user_id, name, _now()],
    ).lastrowid
