"""The account mail queue (``account_mails``): rows a web request inserts and the
scheduler's sender delivers (:func:`recommender.jobs.send_account_mails`).

A row is claimed (``sending``) inside a transaction, so two senders never take the same
one; it is marked ``sent`` as soon as the server accepted it, and is never sent again
after that. A sender killed between the server's acceptance and that mark leaves the row
``sending``: it is sent again once its claim is older than the lease (at least once, the
same window as the digests').
"""

from __future__ import annotations

from sqlite_utils import Database

from .db import select, transaction

#: Kinds of account mail (``account_mails.kind``).
MAIL_KINDS = ("confirm", "reset", "signup_exists")


def queue_account_mail(db: Database, user_id: int, kind: str, address: str, now: float) -> int:
    """Queue one account mail to ``address``; its id."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown account mail {kind!r}")
    with transaction(db):
        cursor = db.execute(
            "INSERT INTO account_mails (user_id, kind, address, created_at, next_try_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [user_id, kind, address, now, now],
        )
    return cursor.lastrowid


def claim_account_mails(
    db: Database, now: float, *, lease: float, server_key: str, limit: int = 100
) -> list[dict]:
    """Claim the mails due at ``now`` (oldest first, at most ``limit``) and return them.

    First puts back in the queue: mails that failed on another mail server than
    ``server_key`` (the setting changed: worth a new try), and mails claimed more than
    ``lease`` seconds ago by a sender that never finished (killed).
    """
    with transaction(db):
        db.execute(
            "UPDATE account_mails SET status = 'queued', tries = 0, next_try_at = ?"
            " WHERE status = 'failed' AND server_key IS NOT NULL AND server_key != ?",
            [now, server_key],
        )
        db.execute(
            "UPDATE account_mails SET status = 'queued', next_try_at = ?"
            " WHERE status = 'sending' AND claimed_at < ?",
            [now, now - lease],
        )
        rows = select(
            db,
            "SELECT * FROM account_mails WHERE status = 'queued' AND next_try_at <= ?"
            " ORDER BY id LIMIT ?",
            [now, limit],
        )
        db.conn.executemany(
            "UPDATE account_mails SET status = 'sending', claimed_at = ? WHERE id = ?",
            [(now, row["id"]) for row in rows],
        )
    return rows


def mark_account_mail_sent(db: Database, mail_id: int, now: float) -> None:
    """The server (or the outbox) accepted the mail: it is never sent again."""
    with transaction(db):
        db.execute(
            "UPDATE account_mails SET status = 'sent', sent_at = ?, tries = tries + 1,"
            " last_error = NULL WHERE id = ?",
            [now, mail_id],
        )


def retry_account_mail(
    db: Database, mail_id: int, next_try_at: float, error: str, *, count_try: bool = True
) -> None:
    """Back to the queue until ``next_try_at``; ``count_try=False`` for a mail that was
    not tried at all (the server was down for the one before it)."""
    with transaction(db):
        db.execute(
            "UPDATE account_mails SET status = 'queued', next_try_at = ?, last_error = ?,"
            " tries = tries + ?, claimed_at = NULL WHERE id = ?",
            [next_try_at, error, int(count_try), mail_id],
        )


def fail_account_mail(db: Database, mail_id: int, error: str, server_key: str) -> None:
    """The server refused the mail for good (or it failed too often) on ``server_key``."""
    with transaction(db):
        db.execute(
            "UPDATE account_mails SET status = 'failed', last_error = ?, server_key = ?,"
            " tries = tries + 1, claimed_at = NULL WHERE id = ?",
            [error, server_key, mail_id],
        )


def drop_account_mail(db: Database, mail_id: int, why: str) -> None:
    """Not sent, and not to be: the account's address changed since it was queued."""
    with transaction(db):
        db.execute(
            "UPDATE account_mails SET status = 'dropped', last_error = ?, claimed_at = NULL"
            " WHERE id = ?",
            [why, mail_id],
        )


def account_mail_problem(db: Database, user_id: int) -> dict | None:
    """The person's newest account mail that could not be delivered, unless a later one
    was: ``{"address", "kind", "error", "tries", "status"}`` or None. ``status`` is
    ``failed`` (given up: a 5xx reply) or ``queued`` (still being retried)."""
    rows = select(
        db,
        "SELECT address, kind, last_error AS error, tries, status FROM account_mails"
        " WHERE user_id = ? AND status IN ('failed', 'queued', 'sent')"
        " ORDER BY id DESC LIMIT 1",
        [user_id],
    )
    if not rows or rows[0]["status"] == "sent" or not rows[0]["error"]:
        return None
    return rows[0]


def account_mails(db: Database, user_id: int | None = None) -> list[dict]:
    """The queue's rows (of one person), oldest first: for tests, ``bench/`` and the CLI."""
    where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    return select(db, f"SELECT * FROM account_mails {where} ORDER BY id", params)
