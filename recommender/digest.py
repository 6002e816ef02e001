"""The email digest: who is due, which papers, the message, and crash-safe delivery.

Entry point: :func:`send_due_digests` (the scheduler job, ``paperfeed digest`` and
the tests all call it, with a controllable ``now``).

Who is due
    A person with digests on and a confirmed address is due once per *period*:
    their local calendar day of the send (daily), or of their chosen weekday
    (weekly). The send instant is ``digest_hour:00`` in their IANA time zone,
    computed with :mod:`zoneinfo`, so daylight-saving changes move it with the
    wall clock. On a spring-forward day an hour that does not exist (02:00 in
    New York) means the first instant after the gap (03:00 EDT); on a fall-back
    day a repeated hour means its first occurrence. A period is due from its
    send instant until :data:`CATCH_UP` later, so a scheduler that was down at
    07:00 sends the 07:00 digests once when it comes back the same morning.

Which papers
    Papers first seen in dumps ingested since the person's last digest (or in
    the newest dump), minus what they rated or got in an earlier digest, ranked
    by :meth:`recommender.pipeline.FeedService.rank_papers_for_people` (the one ranking
    path; everyone due is ranked in one batch), those at or above their
    ``min_score``, at most ``digest_size``. When nothing clears the bar, the
    period is recorded as ``'empty'``, nothing is sent, and the log says so.

Never twice, never lost
    The ledger (``digests``, one row per person and period, ``UNIQUE``) is
    written in short transactions, each a compare-and-set on the row's state:

    1. *claim*: insert the row and its papers (frozen, so a retry sends the same
       email with the same ``Message-ID``) — a second run finds the row and
       skips the person; rows are claimed 500 to a transaction, all or none;
    2. *pending → sending* before the message leaves;
    3. *sending → sent* as soon as the server (or the outbox) has it;
       a transient error puts the row back to *pending* with exponential
       backoff, a permanent one (or :data:`MAX_ATTEMPTS`) to *failed*.

    A mail server that stops answering (refused connections, timeouts: a hung
    or dead server) ends the run after :data:`MAX_UNAVAILABLE_IN_A_ROW`
    consecutive such failures; the rows not yet tried stay *pending* for the
    next run, and the log and :attr:`DigestRun.stopped` say why.

    One run at a time holds an exclusive ``flock`` on ``<data dir>/digest.lock``.
    The kernel releases it when a process dies, even by ``kill -9``, so a run
    that holds the lock knows that every row still in *sending* belongs to a
    dead run, and recovers it first:

    * **file backend — exactly once.** The ``.eml`` file is named after the
      row's stable ``Message-ID`` and appears atomically (``os.replace``): if it
      exists the message was delivered and the row becomes *sent*; if not, it
      was not, and the row goes back to *pending*.
    * **SMTP — at least once, with a window of one reply.** Whether the server
      accepted a message is only known from its ``250`` reply, and a crash
      between that reply and our commit leaves us unable to tell (RFC 1047
      describes the same window inside SMTP itself). The sender thread commits
      *sent* on its own connection the moment ``sendmail`` returns, before any
      other work (rendering the next message happens meanwhile on the main
      thread), so the window is one reply and one commit. We resend such a
      row, with the *same* ``Message-ID``. The alternative (treat it as sent)
      would silently skip a person whenever the crash came before the server
      accepted, with nothing to show for it; a resend at worst duplicates the
      one message in flight at the crash, visibly, with an identical
      ``Message-ID`` that many mail stores collapse. Every other person gets
      exactly one digest either way, because their rows are *sent* or not yet
      *sending*. The recovered row's ``last_error`` says it was resent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import Message
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from . import pipeline, store
from .config import Settings
from .dumps import strip_unrenderable
from .mail import (
    SMTP_POLICY,
    TEMPLATES,
    Mailer,
    MailServerUnavailable,
    PermanentMailError,
    TransientMailError,
    build_message,
    eml_path,
    message_domain,
    open_mailer,
    render_email,
    sweep_partial_files,
)
from .reasons import AGAINST_DISLIKE
from .store.digests import utc_text
from .tokens import make_token

log = logging.getLogger(__name__)

#: How long after its send instant a period is still sent (scheduler downtime, slow runs).
CATCH_UP = timedelta(hours=12)
#: Delivery attempts before a digest is marked failed for good.
MAX_ATTEMPTS = 6
#: Consecutive "server unavailable" failures (no connection, timeouts) that end a run.
MAX_UNAVAILABLE_IN_A_ROW = 3
#: Backoff after the n-th transient failure: RETRY_BASE * 2**(n-1), at most RETRY_CAP.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
#: Abstracts in the email are cut to about this many characters, at a word boundary.
ABSTRACT_CHARS = 320


# -- who is due ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One person's digest that should go out now."""

    user: dict
    period: str  # the local send day, YYYY-MM-DD
    due_at: datetime  # the local send instant, in UTC


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("digest: unknown time zone %r, using UTC", name)
        return ZoneInfo("UTC")


def send_instant(day: date, hour: int, timezone: str | None) -> datetime:
    """``hour:00`` on ``day`` in ``timezone``, as a UTC datetime.

    A wall time skipped by a spring-forward change resolves to the instant just
    after the gap; a repeated one (fall back) to its first occurrence.
    """
    local = datetime.combine(day, time(hour), tzinfo=_zone(timezone))  # fold=0: first
    return local.astimezone(UTC)


def current_period(user: dict, now: datetime) -> tuple[str, datetime] | None:
    """The person's newest period whose send instant has passed, if within :data:`CATCH_UP`.

    ``user`` needs ``timezone``, ``digest_cadence``, ``digest_weekday`` (0 = Monday)
    and ``digest_hour``. Returns ``(period, due_at)`` or None.
    """
    today = now.astimezone(_zone(user["timezone"])).date()
    # Walk back from the local day: at most 8 days covers a weekly period and its edge.
    for back in range(8):
        day = today - timedelta(days=back)
        if user["digest_cadence"] == "weekly" and day.weekday() != user["digest_weekday"]:
            continue
        due_at = send_instant(day, user["digest_hour"], user["timezone"])
        if due_at <= now:
            return (day.isoformat(), due_at) if now - due_at <= CATCH_UP else None
    return None


def due_people(db: Database, now: datetime, *, email: str | None = None) -> list[Due]:
    """Everyone whose current period has come and has no ledger row yet."""
    candidates = []
    for user in store.digest_subscribers(db, email=email):
        found = current_period(user, now)
        if found is not None:
            candidates.append(Due(user, *found))
    taken = store.claimed_periods(db, {d.period for d in candidates})
    return [d for d in candidates if (d.user["id"], d.period) not in taken]


# -- which papers -------------------------------------------------------------------------------


#: People ranked per batch call: bounds memory at 10,000s of subscribers.
CHOOSE_BATCH = 5000


def choose_papers_many(
    db: Database, settings: Settings, users: list[dict], now: datetime
) -> list[list[pipeline.FeedItem]]:
    """The papers for each person's next digest, best first (possibly none), everyone
    ranked together in batches.

    A digest run is a reader like a web worker: it ranks over the published model (its own
    :class:`~recommender.pipeline.FeedService`) and never fits one.
    """
    feeds = pipeline.FeedService(settings)
    chosen: list[list[pipeline.FeedItem]] = []
    for start in range(0, len(users), CHOOSE_BATCH):
        batch = users[start : start + CHOOSE_BATCH]
        fallback = {
            u["id"]: utc_text(now - timedelta(days=7 if u["digest_cadence"] == "weekly" else 1))
            for u in batch
        }
        candidates = store.digest_candidates(db, fallback)
        requests = [
            pipeline.RankRequest(
                u["id"],
                candidates[u["id"]],
                limit=2 * u["digest_size"],  # room for the papers dropped below
                min_score=u["min_score"],
            )
            for u in batch
        ]
        ranked = feeds.rank_papers_for_people(db, requests, now=now)
        for user, items in zip(batch, ranked, strict=True):
            bar = user["min_score"]
            # The pipeline's cold-start order carries no score; the bar still applies. A paper
            # whose strongest evidence is a dislike is never mailed.
            kept = [
                i
                for i in items
                if (bar is None or i.score >= bar) and i.reason_kind not in AGAINST_DISLIKE
            ]
            chosen.append(kept[: user["digest_size"]])
    return chosen


# -- the message --------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def shorten(text: str, limit: int = ABSTRACT_CHARS) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return cut + "…"


@lru_cache(maxsize=4096)
def _wrapped_abstract(abstract: str) -> str:
    # The same paper goes to thousands of people in one run: wrap it once.
    return textwrap.fill(shorten(abstract), width=72, initial_indent="   ", subsequent_indent="   ")


def _authors_line(authors_json: str | None, shown: int = 4) -> str:
    """``A, B, C, D et al.`` from a papers row's JSON author list ('' if none)."""
    try:
        names = [str(n) for n in json.loads(authors_json or "[]")]
    except (TypeError, ValueError):
        return ""
    return ", ".join(names[:shown]) + (" et al." if len(names) > shown else "")


def _is_http(url: str | None) -> bool:
    # Dumps are third-party text: never put a javascript: or data: URL in an email.
    return bool(url) and urlsplit(url).scheme in {"http", "https"}


def subject_for(period: str, count: int) -> str:
    """E.g. ``paperfeed digest for Mon 10 Mar 2025: 7 new papers``."""
    day = date.fromisoformat(period)
    noun = "paper" if count == 1 else "papers"
    return f"paperfeed digest for {day:%a} {day.day} {day:%b %Y}: {count} new {noun}"


def new_message_id(settings: Settings, user_id: int, period: str) -> str:
    """A fresh, globally unique ``Message-ID``; stored on the ledger row and reused on resends."""
    return f"<digest.{period}.{user_id}.{secrets.token_hex(6)}@{message_domain(settings)}>"


def unsubscribe_url(settings: Settings, secret: str, user_id: int, email: str) -> str:
    return f"{settings.base_url}/unsubscribe/{make_token(secret, 'unsubscribe', [user_id, email])}"


def rate_token(secret: str, user_id: int, digest_id: int) -> str:
    """One signed token per digest: it lets its person rate the papers of that digest."""
    return make_token(secret, "rate", [user_id, digest_id])


def rate_url(settings: Settings, token: str, paper_id: int, value: int) -> str:
    """``/r/<token>/<paper>/like`` (or ``dislike``): the paper and choice are checked
    against the digest the token names, so only that digest's papers can be rated."""
    choice = "like" if value > 0 else "dislike"
    return f"{settings.base_url}/r/{token}/{paper_id}/{choice}"


def render_digest(
    settings: Settings,
    digest: dict,
    papers: list[dict],
    *,
    secret: str,
    templates: Path = TEMPLATES,
) -> Message:
    """The multipart (text + HTML) message for one ledger row and its papers.

    ``digest`` is a ``digests`` row (user_id, recipient, period, message_id,
    created_at); ``papers`` are :func:`recommender.store.digest_papers` rows.
    Everything in it derives from the row, so a resend is the same message.
    """
    uid = digest["user_id"]
    unsubscribe = unsubscribe_url(settings, secret, uid, digest["recipient"])
    # 21 links, 2 tokens: signing each link cost ~40 µs, a sixth of a digest's CPU.
    token = rate_token(secret, uid, digest.get("id") or 0)
    # Text stored before ingest stripped control characters must not reach the mail either.
    papers = [
        {
            **p,
            "title": strip_unrenderable(p["title"]),
            "abstract": strip_unrenderable(p["abstract"]),
        }
        for p in papers
    ]
    context = {
        "subject": digest["subject"] or subject_for(digest["period"], len(papers)),
        "period": digest["period"],
        "recipient": digest["recipient"],
        "base_url": settings.base_url,
        "unsubscribe_url": unsubscribe,
        "papers": [
            {
                "title": " ".join(p["title"].split()),
                "abstract": shorten(p["abstract"]),
                "abstract_text": _wrapped_abstract(p["abstract"]),
                # The title opens the paper: its abstract page, else its page here.
                "url": p["url"]
                if _is_http(p["url"])
                else f"{settings.base_url}/papers/{p['paper_id']}",
                "pdf_url": p.get("pdf_url") if _is_http(p.get("pdf_url")) else None,
                "authors": _authors_line(p.get("authors")),
                "reason": p["reason"],
                "like_url": rate_url(settings, token, p["paper_id"], 1),
                "dislike_url": rate_url(settings, token, p["paper_id"], -1),
            }
            for p in papers
        ],
    }
    text = render_email("email/digest.txt", context, templates=templates)
    html = render_email("email/digest.html", context, templates=templates)
    mailto = settings.unsubscribe_mailto
    targets = [f"<{unsubscribe}>"] + ([f"<mailto:{mailto}?subject=unsubscribe>"] if mailto else [])
    return build_message(
        settings,
        to=digest["recipient"],
        subject=context["subject"],
        text=text,
        html=html,
        date=datetime.fromisoformat(digest["created_at"]),
        message_id=digest["message_id"],
        headers=[
            ("List-Unsubscribe", ", ".join(targets)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),  # RFC 8058
            ("Auto-Submitted", "auto-generated"),  # RFC 3834: no vacation replies
        ],
    )


# -- delivery -----------------------------------------------------------------------------------


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
    chosen: list[list[pipeline.FeedItem]],
    now: datetime,
    report: DigestRun,
) -> None:
    """Write the ledger rows of everyone due, :data:`CLAIM_BATCH` per transaction."""
    for start in range(0, len(due), CLAIM_BATCH):
        people = due[start : start + CLAIM_BATCH]
        papers = chosen[start : start + CLAIM_BATCH]
        claims = [
            store.Claim(
                user_id=d.user["id"],
                period=d.period,
                cadence=d.user["digest_cadence"],
                recipient=d.user["email"],
                due_at=d.due_at,
                message_id=new_message_id(settings, d.user["id"], d.period),
                subject=subject_for(d.period, len(items)),
                items=[(i.paper_id, i.score, i.reason) for i in items],
            )
            for d, items in zip(people, papers, strict=True)
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
    """A second connection to the same file, for the sender thread (None: in memory)."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    return store.connect(path) if path else None


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
                    outcome = _tally(db, sender_db, *flight, now, report)
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
                    job = wire.submit(_send_and_record, sender_db, mailer, row, message, raw, now)
                    flight = (row, job)
            if flight is not None:
                _tally(db, sender_db, *flight, now, report)
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
) -> tuple[str, Exception | None]:
    """In the sender thread: send, then at once record the outcome (if it has a connection)."""
    try:
        mailer.send(message, raw=raw)
    except (TransientMailError, PermanentMailError) as exc:
        outcome: tuple[str, Exception | None] = ("error", exc)
    else:
        outcome = ("sent", None)
    if sender_db is not None:
        _record(sender_db, row, outcome, now)
    return outcome


def _tally(
    db: Database,
    sender_db: Database | None,
    row: dict,
    sent: Future,
    now: datetime,
    report: DigestRun,
) -> str:
    """Wait for the send of ``row``; count its outcome. Returns ``"sent"``, ``"retry"``,
    ``"failed"`` or ``"unavailable"`` (a retry because the server did not answer)."""
    outcome = sent.result()
    kind = _record(db, row, outcome, now) if sender_db is None else _kind(row, outcome)
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


def _record(db: Database, row: dict, outcome: tuple[str, Exception | None], now: datetime) -> str:
    """Write how the send of ``row`` (now in *sending*) ended; returns :func:`_kind`."""
    kind, exc = _kind(row, outcome), outcome[1]
    attempts = row["attempts"] + 1
    if kind == "sent":
        store.mark_digest_sent(db, row["id"], now)  # and its papers as shown
    elif isinstance(exc, PermanentMailError):
        store.mark_digest_failed(db, row["id"], now, str(exc))
        log.error("digest %s to %s refused: %s", row["id"], row["recipient"], exc)
    elif kind == "failed":
        store.mark_digest_failed(db, row["id"], now, f"gave up after {attempts}: {exc}")
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
            due = due_people(db, now, email=email)
            report.due = len(due)
            started = perf_counter()
            chosen = choose_papers_many(db, settings, [d.user for d in due], now)
            _claim_all(db, settings, due, chosen, now, report)
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
