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
    by :meth:`recommender.feed.FeedService.feeds` (the one feed query, its ``digest``
    window; everyone due is ranked in one batch), those at or above their
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
       backoff, a permanent one (or :data:`MAX_ATTEMPTS`) to *failed*, naming
       the server; a run puts each person's newest *failed* row back to *pending*
       once the mail server setting names another server (the settings page says
       so meanwhile).

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

from .choose import CHOOSE_BATCH, choose_papers_many, empty_outcome, failed_fetches
from .delivery import (
    CLAIM_BATCH,
    MAX_ATTEMPTS,
    MAX_UNAVAILABLE_IN_A_ROW,
    RETRY_BASE,
    RETRY_CAP,
    DigestRun,
    backoff,
    send_due_digests,
)
from .message import (
    ABSTRACT_CHARS,
    new_message_id,
    rate_token,
    rate_url,
    render_digest,
    shorten,
    subject_for,
    unsubscribe_url,
)
from .outcome import outcome_words, problem_words
from .schedule import CATCH_UP, Due, current_period, due_people, send_instant

__all__ = [
    "ABSTRACT_CHARS",
    "CATCH_UP",
    "CHOOSE_BATCH",
    "CLAIM_BATCH",
    "MAX_ATTEMPTS",
    "MAX_UNAVAILABLE_IN_A_ROW",
    "RETRY_BASE",
    "RETRY_CAP",
    "DigestRun",
    "Due",
    "backoff",
    "choose_papers_many",
    "empty_outcome",
    "failed_fetches",
    "outcome_words",
    "problem_words",
    "current_period",
    "due_people",
    "new_message_id",
    "rate_token",
    "rate_url",
    "render_digest",
    "send_due_digests",
    "send_instant",
    "shorten",
    "subject_for",
    "unsubscribe_url",
]
