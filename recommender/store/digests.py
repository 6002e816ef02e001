"""The digest ledger: who gets a digest, which papers it holds, and how far its delivery got.

Each state change is one short ``BEGIN IMMEDIATE`` transaction whose ``UPDATE``
names the state it expects (``WHERE state = 'pending'``), so two runs can never
both move the same row: the loser sees zero changed rows and leaves it alone.
Times are UTC ISO-8601 strings (``2025-03-10T07:00:00+00:00``), comparable as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from .db import select, transaction
from .papers import DATED_RECENTLY

#: Rows still on their way: a run resumes these.
OPEN_STATES = ("pending", "sending")
#: Rows whose papers count as "already in a digest" (sent, or on their way).
DELIVERED_OR_OPEN = ("sent", "pending", "sending")

_SUBSCRIBER_COLUMNS = (
    "id, email, timezone, digest_cadence, digest_weekday, digest_hour, digest_size, min_score"
)


def utc_text(moment: datetime) -> str:
    """``moment`` (timezone-aware) as the UTC text the ledger stores."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def digest_subscribers(db: Database, *, email: str | None = None) -> list[dict]:
    """People who get digests: enabled and with a confirmed address (optionally one address)."""
    sql = (
        f"SELECT {_SUBSCRIBER_COLUMNS} FROM users "
        "WHERE digest_enabled = 1 AND email_confirmed_at IS NOT NULL"
    )
    params: list = []
    if email is not None:
        sql += " AND email = ?"
        params.append(email)
    return select(db, sql + " ORDER BY id", params)


def get_subscriber(db: Database, user_id: int) -> dict | None:
    """One person's digest settings and whether digests are on, or None if there is no such id."""
    rows = select(
        db, f"SELECT {_SUBSCRIBER_COLUMNS}, digest_enabled FROM users WHERE id = ?", [user_id]
    )
    return rows[0] if rows else None


def claimed_periods(db: Database, periods: Iterable[str]) -> set[tuple[int, str]]:
    """``(user_id, period)`` of every ledger row, whatever its state, in the given periods."""
    wanted = sorted(set(periods))
    if not wanted:
        return set()
    marks = ",".join("?" * len(wanted))
    sql = f"SELECT user_id, period FROM digests WHERE period IN ({marks})"
    return {(uid, period) for uid, period in db.execute(sql, wanted).fetchall()}


def digest_candidates(
    db: Database, fallback_since: dict[int, str], *, dated_within: int | None = None
) -> dict[int, list[int]]:
    """Papers that may go into each person's next digest, in id order (oldest first).

    Papers first seen in a dump ingested after the person's *since* or in the
    newest dump, minus papers they rated and papers already in one of their
    digests (sent or on its way). *since* is when their newest sent (or open)
    digest was claimed, or ``fallback_since[person]`` before their first one.
    ``dated_within``: only papers of dumps dated at most that many days before the newest
    (:func:`papers_arrived_since`: a backfill of old dumps is not mailed as news).
    A few queries for any number of people; ranking and the score bar are the
    pipeline's job.
    """
    users = list(fallback_since)
    marks = ",".join("?" * len(DELIVERED_OR_OPEN))
    last: dict[int, str] = {}
    for start in range(0, len(users), 500):
        chunk = users[start : start + 500]
        rows = db.execute(
            f"SELECT user_id, max(created_at) FROM digests WHERE state IN ({marks})"
            f" AND user_id IN ({','.join('?' * len(chunk))}) GROUP BY user_id",
            [*DELIVERED_OR_OPEN, *chunk],
        ).fetchall()
        last.update(dict(rows))
    since = {u: last.get(u) or fallback_since[u] for u in users}
    if not since:
        return {}
    # Every paper of a dump newer than the oldest "since" (or of the newest dump), with
    # its dump's ingest time; each person then keeps the ones after their own "since".
    sql = (
        "SELECT p.id, d.ingested_at, d.id = (SELECT max(id) FROM dumps) FROM papers p"
        " JOIN dumps d ON d.id = p.first_dump_id"
        " WHERE (d.ingested_at > ? OR d.id = (SELECT max(id) FROM dumps))"
    )
    params: list = [min(since.values())]
    if dated_within is not None:
        sql += f" AND {DATED_RECENTLY}"
        params.append(f"-{int(dated_within)} days")
    papers = db.execute(sql + " ORDER BY p.id", params).fetchall()
    if not papers:
        return {u: [] for u in users}
    low = papers[0][0]
    rated: dict[int, set[int]] = {u: set() for u in users}
    taken: dict[int, set[int]] = {u: set() for u in users}
    for start in range(0, len(users), 500):
        chunk = users[start : start + 500]
        who = ",".join("?" * len(chunk))
        for uid, pid in db.execute(
            f"SELECT user_id, paper_id FROM ratings WHERE user_id IN ({who}) AND paper_id >= ?",
            [*chunk, low],
        ).fetchall():
            rated[uid].add(pid)
        for uid, pid in db.execute(
            "SELECT g.user_id, i.paper_id FROM digest_items i JOIN digests g ON g.id = i.digest_id"
            f" WHERE g.user_id IN ({who}) AND g.state IN ({marks}) AND i.paper_id >= ?",
            [*chunk, *DELIVERED_OR_OPEN, low],
        ).fetchall():
            taken[uid].add(pid)
    # People with the same "since" share one list (most of a morning's run), and only
    # those who rated or already got one of its papers get their own filtered copy.
    shared: dict[str, list[int]] = {}
    found: dict[int, list[int]] = {}
    for u in users:
        if since[u] not in shared:
            shared[since[u]] = [
                pid for pid, ingested_at, newest in papers if newest or ingested_at > since[u]
            ]
        base, drop = shared[since[u]], rated[u] | taken[u]
        found[u] = [pid for pid in base if pid not in drop] if drop else base
    return found


@dataclass(frozen=True)
class Claim:
    """One person's digest for one period, to be written by :func:`claim_digests`.

    ``items`` are ``(paper_id, score, reason[, section])`` in digest order; none makes an
    ``'empty'`` row (nothing cleared the bar: nothing to send, but the period is
    settled).
    """

    user_id: int
    period: str
    cadence: str
    recipient: str
    due_at: datetime
    message_id: str | None
    subject: str | None
    items: Sequence[tuple]
    #: why an empty period sent nothing (JSON; recommender.digest.outcome_words)
    outcome: str | None = None


def claim_digests(db: Database, claims: Sequence[Claim], now: datetime) -> list[int | None]:
    """Create the ledger rows (with their papers) in one transaction.

    Returns each new row's id, or None where the period already had a row
    (another run claimed it first): nothing is written for that one. All or
    nothing: a crash writes none of them, and the next run claims them again.
    """
    stamp = utc_text(now)
    ids: list[int | None] = []
    with transaction(db):
        for c in claims:
            cursor = db.execute(
                """
                INSERT INTO digests (user_id, period, cadence, state, recipient, message_id,
                                     subject, papers, due_at, created_at, next_attempt_at,
                                     updated_at, outcome)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (user_id, period) DO NOTHING
                """,
                [
                    c.user_id,
                    c.period,
                    c.cadence,
                    "pending" if c.items else "empty",
                    c.recipient,
                    c.message_id if c.items else None,
                    c.subject if c.items else None,
                    len(c.items),
                    utc_text(c.due_at),
                    stamp,
                    stamp,
                    stamp,
                    None if c.items else c.outcome,
                ],
            )
            if cursor.rowcount != 1:
                ids.append(None)
                continue
            ids.append(cursor.lastrowid)
            db.conn.executemany(
                "INSERT INTO digest_items (digest_id, position, paper_id, score, reason, section)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (cursor.lastrowid, pos, pid, score, why, *(section or (None,)))
                    for pos, (pid, score, why, *section) in enumerate(c.items)
                ],
            )
    return ids


def _move(db: Database, digest_id: int, expected: str, sets: str, params: list) -> bool:
    with transaction(db):
        cursor = db.execute(
            f"UPDATE digests SET {sets} WHERE id = ? AND state = ?",
            [*params, digest_id, expected],
        )
    return cursor.rowcount == 1


def start_digest_sending(db: Database, digest_id: int, now: datetime) -> bool:
    """pending → sending, counting the attempt. False if another run took the row first."""
    stamp = utc_text(now)
    return _move(
        db,
        digest_id,
        "pending",
        "state = 'sending', attempts = attempts + 1, sending_at = ?, updated_at = ?",
        [stamp, stamp],
    )


def mark_digest_sent(db: Database, digest_id: int, now: datetime) -> bool:
    """sending → sent; in the same transaction its papers count as shown to the person
    (on the digest's day), so the web feed does not offer them again tomorrow."""
    stamp = utc_text(now)
    with transaction(db):
        moved = db.execute(
            "UPDATE digests SET state = 'sent', sent_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'sending'",
            [stamp, stamp, digest_id],
        ).rowcount
        if moved == 1:
            db.execute(
                "INSERT OR IGNORE INTO impressions (user_id, paper_id, channel, shown_on)"
                " SELECT g.user_id, i.paper_id, 'digest', g.period"
                " FROM digest_items i JOIN digests g ON g.id = i.digest_id WHERE g.id = ?",
                [digest_id],
            )
    return moved == 1


def mark_digest_retry(
    db: Database, digest_id: int, now: datetime, error: str, next_attempt_at: datetime
) -> bool:
    """sending → pending, not to be tried again before ``next_attempt_at``."""
    return _move(
        db,
        digest_id,
        "sending",
        "state = 'pending', last_error = ?, next_attempt_at = ?, updated_at = ?",
        [error, utc_text(next_attempt_at), utc_text(now)],
    )


def mark_digest_failed(
    db: Database, digest_id: int, now: datetime, error: str, *, server: str | None = None
) -> bool:
    """sending → failed, for good (shown by ``paperfeed digest --status`` and in the
    person's settings). ``server``: the mail server that refused it or failed too often
    (:func:`recommender.mail.server_key`); :func:`requeue_refused_digests` tries the row
    again once the setting names another one."""
    outcome = json.dumps({"kind": "refused", "server": server}) if server else None
    return _move(
        db,
        digest_id,
        "sending",
        "state = 'failed', last_error = ?, outcome = ?, updated_at = ?",
        [error, outcome, utc_text(now)],
    )


def requeue_refused_digests(db: Database, server: str, now: datetime) -> int:
    """failed → pending, due at ``now``, for each person's newest digest that a mail
    server other than ``server`` refused (the setting changed: worth a new try, as
    account mails are); a digest with a newer one after it stays failed. How many."""
    stamp = utc_text(now)
    with transaction(db):
        cursor = db.execute(
            """
            UPDATE digests SET state = 'pending', attempts = 0, next_attempt_at = ?,
                               updated_at = ?
            WHERE state = 'failed'
              AND json_extract(outcome, '$.kind') = 'refused'
              AND json_extract(outcome, '$.server') != ?
              AND NOT EXISTS (
                  SELECT 1 FROM digests later
                  WHERE later.user_id = digests.user_id AND later.period > digests.period
                    AND later.state IN ('pending', 'sending', 'sent', 'failed'))
            """,
            [stamp, stamp, server],
        )
    return cursor.rowcount


def digest_problem(db: Database, user_id: int) -> dict | None:
    """The person's newest digest that could not be delivered, unless a later one was:
    ``{"period", "address", "error", "status"}`` or None. ``status`` is ``failed``
    (given up; tried again when the mail server setting changes) or ``retrying``."""
    rows = select(
        db,
        "SELECT period, recipient AS address, last_error AS error, state FROM digests"
        " WHERE user_id = ? AND state IN ('pending', 'sending', 'sent', 'failed')"
        " ORDER BY period DESC, id DESC LIMIT 1",
        [user_id],
    )
    if not rows or rows[0]["state"] == "sent" or not rows[0]["error"]:
        return None
    row = rows.pop()
    state = row.pop("state")
    return {**row, "status": "failed" if state == "failed" else "retrying"}


def mark_digest_cancelled(db: Database, digest_id: int, now: datetime, reason: str) -> bool:
    """pending → cancelled (the person unsubscribed after the row was claimed)."""
    return _move(
        db,
        digest_id,
        "pending",
        "state = 'cancelled', last_error = ?, updated_at = ?",
        [reason, utc_text(now)],
    )


def digests_in_state(db: Database, state: str, *, user_id: int | None = None) -> list[dict]:
    """Ledger rows in ``state``, oldest first."""
    sql = "SELECT * FROM digests WHERE state = ?"
    params: list = [state]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return select(db, sql + " ORDER BY id", params)


def ready_digests(db: Database, now: datetime, *, user_id: int | None = None) -> list[dict]:
    """Pending rows whose next attempt is due at ``now``, oldest first."""
    sql = "SELECT * FROM digests WHERE state = 'pending' AND next_attempt_at <= ?"
    params: list = [utc_text(now)]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return select(db, sql + " ORDER BY id", params)


def digest_papers(db: Database, digest_id: int) -> list[dict]:
    """The papers of one digest in order: paper_id, title, abstract, url, pdf_url,
    authors (JSON text), ai_summary (the source's TL;DR), score, reason, section (the interest
    it is listed under)."""
    return select(
        db,
        """
            SELECT i.paper_id, p.title, p.abstract, p.url, p.pdf_url, p.authors,
                   p.ai_summary, i.score, i.reason, i.section
            FROM digest_items i JOIN papers p ON p.id = i.paper_id
            WHERE i.digest_id = ? ORDER BY i.position
            """,
        [digest_id],
    )


def digest_has_paper(db: Database, digest_id: int, user_id: int, paper_id: int) -> bool:
    """Whether digest ``digest_id`` is this person's and holds this paper."""
    row = db.execute(
        "SELECT 1 FROM digest_items i JOIN digests g ON g.id = i.digest_id"
        " WHERE g.id = ? AND g.user_id = ? AND i.paper_id = ?",
        [digest_id, user_id, paper_id],
    ).fetchone()
    return row is not None


def digest_status(db: Database, *, limit: int | None = 50) -> dict:
    """Counts per state, and the newest failed and still-open rows with their errors.

    ``problems`` holds at most ``limit`` rows (None: all); ``problems_total`` says how
    many there are, so a caller can say what it cut.
    """
    counts = dict(db.execute("SELECT state, count(*) FROM digests GROUP BY state").fetchall())
    total = sum(counts.get(state, 0) for state in ("failed", "pending", "sending"))
    problems = select(
        db,
        """
            SELECT g.id, u.email, g.period, g.state, g.attempts, g.last_error,
                   g.next_attempt_at, g.updated_at
            FROM digests g JOIN users u ON u.id = g.user_id
            WHERE g.state IN ('failed', 'pending', 'sending')
            ORDER BY g.state, g.updated_at DESC LIMIT ?
            """,
        [-1 if limit is None else limit],
    )
    return {"counts": counts, "problems": problems, "problems_total": total}


def unsubscribe_user(db: Database, user_id: int, email: str) -> bool:
    """Turn digests off for the person with this id *and* address (ids can be reused).

    True if such a person exists (already unsubscribed counts: the link is idempotent).
    """
    with transaction(db):
        cursor = db.execute(
            "UPDATE users SET digest_enabled = 0 WHERE id = ? AND email = ?", [user_id, email]
        )
    return cursor.rowcount == 1


def last_digest(db: Database, user_id: int) -> dict | None:
    """The person's newest digest row (their last period's outcome), or None."""
    rows = select(
        db,
        "SELECT period, state, papers, attempts, last_error, outcome, next_attempt_at, sent_at,"
        " updated_at FROM digests WHERE user_id = ? ORDER BY period DESC, id DESC LIMIT 1",
        [user_id],
    )
    return rows[0] if rows else None
