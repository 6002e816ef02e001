"""Delivery: claim the ledger rows, send, record, recover after a crash (see
:mod:`recommender.digest` for the guarantees)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from time import perf_counter

from sqlite_utils import Database

from .. import store
from ..config import Settings
from ..feed import FeedItem
from ..mail import (
    SMTP_POLICY,
    Mailer,
    MailServerUnavailable,
    PermanentMailError,
    TransientMailError,
    eml_path,
    open_mailer,
    server_key,
    sweep_partial_files,
)
from ..store.digests import utc_text
from .choose import choose_papers_many
from .message import new_message_id, render_digest, subject_for
from .schedule import Due, due_people

log = logging.getLogger("recommender.digest")

#: Delivery attempts before a digest is marked failed for good.
MAX_ATTEMPTS = 6
#: Consecutive "server unavailable" failures (no connection, timeouts) that end a run.
MAX_UNAVAILABLE_IN_A_ROW = 3
#: Backoff after the n-th transient failure: RETRY_BASE * 2**(n-1), at most RETRY_CAP.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


@dataclass
class DigestRun:
    """What one :func:`send_due_digests` run did; ``previews`` only for a dry run."""

    due: int = 0
    claimed: int = 0
    empty: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered: int = 0
    locked: bool = False
    #: Why the run stopped before trying every ready row (None: it did not), and how
    #: many rows it left pending for the next run.
    stopped: str | None = None
    left_pending: int = 0
    previews: list[dict] = field(default_factory=list)
    #: Wall time spent choosing papers (ranking) and delivering (render + send + ledger).
    choose_seconds: float = 0.0
    deliver_seconds: float = 0.0

    def summary(self) -> str:
        if self.locked:
            return "another digest run is in progress; nothing done"
        return (
            f"{self.due} due, {self.claimed} claimed ({self.empty} with nothing above the bar), "
            f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed, "
            f"{self.cancelled} cancelled, {self.recovered} recovered after a crash"
        ) + (
            f"; stopped early ({self.stopped}): {self.left_pending} left pending for the next run"
            if self.stopped
            else ""
        )


class _Locked(Exception):
    pass


@contextlib.contextmanager
def _run_lock(settings: Settings) -> Iterator[None]:
    """Exclusive per data dir; released by the kernel even if the process is killed."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.data_dir / "digest.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _Locked from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: 1, 2, 4, ... minutes, at most an hour."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)


def _requeue_refused(db: Database, settings: Settings, now: datetime) -> None:
    """Digests a mail server refused go out again once the setting names another one."""
    server = server_key(settings)
    if again := store.requeue_refused_digests(db, server, now):
        log.warning("digest: %d refused digests to try again on %s", again, server)


def _recover(db: Database, settings: Settings, now: datetime, report: DigestRun) -> None:
    """Settle rows a killed run left in 'sending' (we hold the lock: their run is dead)."""
    sweep_partial_files(settings.outbox_dir)
    for row in store.digests_in_state(db, "sending"):
        if eml_path(settings.outbox_dir, row["message_id"]).exists():
            store.mark_digest_sent(db, row["id"], now)  # the atomic file is the proof
            log.warning("digest %s: found in the outbox after a crash; marked sent", row["id"])
        else:
            note = "resent: the run sending it died"
            if settings.smtp_url:
                note += " (the SMTP server may have accepted it: at-least-once)"
            store.mark_digest_retry(db, row["id"], now, note, now)
            log.warning("digest %s: %s", row["id"], note)
        report.recovered += 1


#: Ledger rows written per transaction when claiming.
CLAIM_BATCH = 500


def _claim_all(
    db: Database,
    settings: Settings,
    due: list[Due],
    chosen: list[list[FeedItem]],
    now: datetime,
    report: DigestRun,
    outcomes: list[str] | None = None,
) -> None:
    """Write the ledger rows of everyone due, :data:`CLAIM_BATCH` per transaction; an empty
    period records its outcome (why nothing was sent)."""
    outcomes = outcomes or [None] * len(due)
    for start in range(0, len(due), CLAIM_BATCH):
        people = due[start : start + CLAIM_BATCH]
        papers = chosen[start : start + CLAIM_BATCH]
        whys = outcomes[start : start + CLAIM_BATCH]
        claims = [
            store.Claim(
                user_id=d.user["id"],
                period=d.period,
                cadence=d.user["digest_cadence"],
                recipient=d.user["email"],
                due_at=d.due_at,
                message_id=new_message_id(settings, d.user["id"], d.period),
                subject=subject_for(d.period, len(items)),
                items=[(i.paper_id, i.score, i.reason, i.section) for i in items],
                outcome=why,
            )
            for d, items, why in zip(people, papers, whys, strict=True)
        ]
        for d, items, digest_id in zip(
            people, papers, store.claim_digests(db, claims, now), strict=True
        ):
            if digest_id is None:
                continue  # another run claimed this period first
            report.claimed += 1
            if not items:
                report.empty += 1
                log.info(
                    "digest: nothing above the bar for user %s (%s) on %s: nothing sent",
                    d.user["id"],
                    d.user["email"],
                    d.period,
                )


def _sender_db(db: Database) -> Database | None:
    """A second connection to the same file, with the same busy timeout, for the sender
    thread (None: in memory)."""
    path = store.database_file(db)
    wait = store.busy_timeout_ms(db.conn) / 1000
    return store.connect(path, busy_timeout=wait) if path else None


def _deliver_all(
    db: Database,
    settings: Settings,
    mailer: Mailer,
    rows: list[dict],
    secret: str,
    now: datetime,
    report: DigestRun,
) -> None:
    """Deliver the ready rows in order, rendering each next message while the last one is
    on the wire (the SMTP server's replies are most of a message's time).

    The sender thread records each outcome itself, on its own connection, right after
    the server's reply: *sent* is committed before anything else happens, so a kill
    after a ``250`` can lose at most that one commit. Still one message in flight, and
    a row moves to *sending* only after the row before it has settled, so at most one
    row is ever in *sending*: the recovery guarantees in the module docstring hold.
    After :data:`MAX_UNAVAILABLE_IN_A_ROW` failures to reach the server the run stops.
    """
    sender_db = _sender_db(db)
    server = server_key(settings)
    unavailable = 0
    # The sender thread needs the GIL to read the 250 and commit, while the main thread
    # renders: a short switch interval hands it over in about 0.5 ms, not 5 ms a step.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0005))
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-send") as wire:
            flight: tuple[dict, Future] | None = None
            for index, row in enumerate(rows):
                prepared = _prepare(db, settings, row, secret)
                if flight is not None:
                    outcome = _tally(db, sender_db, *flight, now, server, report)
                    flight = None
                    unavailable = unavailable + 1 if outcome == "unavailable" else 0
                    if unavailable >= MAX_UNAVAILABLE_IN_A_ROW:
                        _stop(report, len(rows) - index, unavailable)
                        break
                if prepared is None:
                    if store.mark_digest_cancelled(
                        db, row["id"], now, "unsubscribed before delivery"
                    ):
                        report.cancelled += 1
                elif isinstance(prepared, Exception):
                    if store.start_digest_sending(db, row["id"], now):
                        store.mark_digest_failed(db, row["id"], now, f"cannot render: {prepared}")
                        report.failed += 1
                elif store.start_digest_sending(db, row["id"], now):  # else another run has it
                    message, raw = prepared
                    job = wire.submit(
                        _send_and_record, sender_db, mailer, row, message, raw, now, server
                    )
                    flight = (row, job)
            if flight is not None:
                _tally(db, sender_db, *flight, now, server, report)
    finally:
        sys.setswitchinterval(interval)
        if sender_db is not None:
            sender_db.close()


def _stop(report: DigestRun, left: int, failures: int) -> None:
    report.stopped = f"the mail server did not answer {failures} times in a row"
    report.left_pending = left
    log.error(
        "digest: stopping the run: %s; %d digests left pending for the next run",
        report.stopped,
        left,
    )


def _send_and_record(
    sender_db: Database | None,
    mailer: Mailer,
    row: dict,
    message: Message,
    raw: bytes,
    now: datetime,
    server: str,
) -> tuple[str, Exception | None]:
    """In the sender thread: send, then at once record the outcome (if it has a connection)."""
    try:
        mailer.send(message, raw=raw)
    except (TransientMailError, PermanentMailError) as exc:
        outcome: tuple[str, Exception | None] = ("error", exc)
    else:
        outcome = ("sent", None)
    if sender_db is not None:
        _record(sender_db, row, outcome, now, server)
    return outcome


def _tally(
    db: Database,
    sender_db: Database | None,
    row: dict,
    sent: Future,
    now: datetime,
    server: str,
    report: DigestRun,
) -> str:
    """Wait for the send of ``row``; count its outcome. Returns ``"sent"``, ``"retry"``,
    ``"failed"`` or ``"unavailable"`` (a retry because the server did not answer)."""
    outcome = sent.result()
    kind = _record(db, row, outcome, now, server) if sender_db is None else _kind(row, outcome)
    if kind == "sent":
        report.sent += 1
    elif kind == "failed":
        report.failed += 1
    else:
        report.retrying += 1
    return kind


def _kind(row: dict, outcome: tuple[str, Exception | None]) -> str:
    status, exc = outcome
    if status == "sent":
        return "sent"
    if isinstance(exc, PermanentMailError) or row["attempts"] + 1 >= MAX_ATTEMPTS:
        return "failed"
    return "unavailable" if isinstance(exc, MailServerUnavailable) else "retry"


def _record(
    db: Database, row: dict, outcome: tuple[str, Exception | None], now: datetime, server: str
) -> str:
    """Write how the send of ``row`` (now in *sending*) ended; returns :func:`_kind`. A
    failed row names ``server``: it is tried again when the setting names another."""
    kind, exc = _kind(row, outcome), outcome[1]
    attempts = row["attempts"] + 1
    if kind == "sent":
        store.mark_digest_sent(db, row["id"], now)  # and its papers as shown
    elif isinstance(exc, PermanentMailError):
        store.mark_digest_failed(db, row["id"], now, str(exc), server=server)
        log.error("digest %s to %s refused: %s", row["id"], row["recipient"], exc)
    elif kind == "failed":
        store.mark_digest_failed(
            db, row["id"], now, f"gave up after {attempts}: {exc}", server=server
        )
        log.error("digest %s to %s failed for good: %s", row["id"], row["recipient"], exc)
    else:
        store.mark_digest_retry(db, row["id"], now, str(exc), now + backoff(attempts))
        log.warning("digest %s to %s: %s; will retry", row["id"], row["recipient"], exc)
    return kind


def _prepare(
    db: Database, settings: Settings, row: dict, secret: str
) -> tuple[Message, bytes] | Exception | None:
    """The message for a ready row; None if the person unsubscribed meanwhile; the error if
    it cannot be rendered (a broken template must not stall everyone after this row)."""
    person = store.get_subscriber(db, row["user_id"])
    if person is None or not person["digest_enabled"]:
        return None
    papers = store.digest_papers(db, row["id"])
    try:
        message = render_digest(settings, row, papers, secret=secret)
        # Flattened here, in the thread that waits least: the sender thread's critical path
        # is then only the conversation with the server.
        return message, message.as_bytes(policy=SMTP_POLICY)
    except Exception as exc:
        log.exception("digest %s: cannot render", row["id"])
        return exc


def send_due_digests(
    db: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    email: str | None = None,
    dry_run: bool = False,
) -> DigestRun:
    """Claim and send every digest that is due at ``now`` (default: the current time).

    ``email`` limits the run to one person. ``dry_run`` writes and sends
    nothing: it returns ``previews`` (recipient, period, subject, papers, text).
    Also retries pending rows whose backoff has passed and recovers rows a
    killed run left behind. Returns a :class:`DigestRun` with the counts.
    """
    now = _aware(now)
    report = DigestRun()
    if dry_run:
        return _preview(db, settings, now, email, report)
    secret = settings.secret_key()
    try:
        with _run_lock(settings):
            _recover(db, settings, now, report)
            _requeue_refused(db, settings, now)
            due = due_people(db, now, email=email)
            report.due = len(due)
            started = perf_counter()
            outcomes: list[str] = []
            users = [d.user for d in due]
            chosen = choose_papers_many(db, settings, users, now, outcomes=outcomes)
            _claim_all(db, settings, due, chosen, now, report, outcomes)
            report.choose_seconds = perf_counter() - started
            only = None
            if email is not None:
                match = store.digest_subscribers(db, email=email)
                only = match[0]["id"] if match else -1
            started = perf_counter()
            with open_mailer(settings) as mailer:
                rows = store.ready_digests(db, now, user_id=only)
                _deliver_all(db, settings, mailer, rows, secret, now, report)
            report.deliver_seconds = perf_counter() - started
    except _Locked:
        report.locked = True
        log.info("digest: another run holds %s; skipping", settings.data_dir / "digest.lock")
        return report
    log.info("digest: %s", report.summary())
    return report


def _preview(
    db: Database, settings: Settings, now: datetime, email: str | None, report: DigestRun
) -> DigestRun:
    secret = settings.secret_key()
    due = due_people(db, now, email=email)
    report.due = len(due)
    chosen = choose_papers_many(db, settings, [d.user for d in due], now)
    for person, items in zip(due, chosen, strict=True):
        row = {
            "user_id": person.user["id"],
            "recipient": person.user["email"],
            "period": person.period,
            "subject": subject_for(person.period, len(items)),
            "message_id": "<preview@localhost>",
            "created_at": utc_text(now),
        }
        papers = [
            {
                "paper_id": i.paper_id,
                "title": i.title,
                "abstract": i.abstract,
                "url": i.url,
                "score": i.score,
                "reason": i.reason,
            }
            for i in items
        ]
        text = ""
        if papers:
            message = render_digest(settings, row, papers, secret=secret)
            text = message.get_payload(0).get_payload(decode=True).decode("utf-8")
        report.previews.append(
            {
                "email": row["recipient"],
                "period": person.period,
                "due_at": utc_text(person.due_at),
                "subject": row["subject"] if papers else None,
                "papers": len(papers),
                "text": text,
            }
        )
    return report


def _aware(now: datetime | None) -> datetime:
    """``now`` as an aware UTC datetime; a naive one is taken to be UTC."""
    if now is None:
        return datetime.now(UTC).replace(microsecond=0)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC)
