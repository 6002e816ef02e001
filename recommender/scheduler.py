"""When the jobs run. One process (the Procfile's ``scheduler:``), never a web worker.

Each job has an explicit id and ``replace_existing``, ``max_instances=1`` (a slow
run is never overlapped by the next), ``coalesce=True`` (runs missed while the
process was suspended or busy collapse into one), and a deliberate
``misfire_grace_time``:

``ingest_inbox`` (every minute)
    ingest new dump files, then publish their papers with the fitted models
    (:func:`recommender.refit.publish`: no refit unless it must).
    Grace one interval: a late poll is pointless once the next is due.
``nightly_refit`` (03:30 UTC)
    refit every model (text model, ALS, self-tuning) on the day's ratings and papers.
    Grace six hours: a refit that comes late is
    still worth having that morning; later than that, the next night's does it.
``send_digests`` (every five minutes, and once at start-up)
    send the digests whose local send hour has come. No grace limit: the job
    is idempotent (the ledger never sends a period twice) and decides for
    itself how late is too late (:data:`recommender.digest.CATCH_UP`, 12 h).
    Jobs live in memory, so a restarted scheduler has no record of the runs it
    missed; the run at start-up is what sends the 07:00 digests once when the
    scheduler comes back at 09:00.
``send_account_mails`` (every :data:`MAIL_POLL_SECONDS`, and at start-up)
    send the queued account mails (confirm, reset, "someone tried to sign up"): web
    requests only queue them. Cheap when the queue is empty (one indexed SELECT); retries
    and their backoff are in the queue rows, so no grace limit.
``fetch_sources`` (hourly at minute 10, when ``PAPERFEED_FETCH_SOURCES`` names any)
    fetch the days due from Hugging Face Daily Papers / arXiv, then publish their papers.
    The job itself decides what is due (from ``PAPERFEED_FETCH_HOUR`` on, days not
    yet fetched whole, failed days once their retry time has come: the ``fetches``
    ledger), so hourly runs are cheap and a failure is retried. Grace one hour.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from . import jobs
from .config import Settings

log = logging.getLogger(__name__)

INBOX_POLL_SECONDS = 60
DIGEST_POLL_SECONDS = 5 * 60
#: How often the queue of account mails is looked at: a sign-up's link arrives this late.
MAIL_POLL_SECONDS = 5
NIGHTLY_REFIT = {"hour": 3, "minute": 30}
REFIT_GRACE_SECONDS = 6 * 3600


class SchedulerRunning(RuntimeError):
    """Another scheduler holds this data dir's scheduler lock."""


@contextlib.contextmanager
def scheduler_lock(settings: Settings) -> Iterator[None]:
    """Hold ``<data dir>/scheduler.lock`` (it records our pid); :class:`SchedulerRunning`
    if another process holds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "scheduler.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise SchedulerRunning(
                f"another scheduler (pid {holder}) is running on {settings.data_dir}: "
                "not starting a second one (it would run every job twice). Stop it first, "
                f"or use another --data-dir; the lock is {path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def build_scheduler(
    settings: Settings, *, scheduler_class: type[BaseScheduler] = BlockingScheduler
) -> BaseScheduler:
    """A scheduler (not started) with its jobs; ``scheduler_class`` for tests."""
    scheduler = scheduler_class(timezone="UTC")
    common = {"args": [settings], "replace_existing": True, "max_instances": 1, "coalesce": True}
    scheduler.add_job(
        jobs.ingest_and_publish,
        "interval",
        seconds=INBOX_POLL_SECONDS,
        id="ingest_inbox",
        name="ingest the inbox and publish",
        misfire_grace_time=INBOX_POLL_SECONDS,
        **common,
    )
    scheduler.add_job(
        jobs.refit_models,
        "cron",
        **NIGHTLY_REFIT,
        id="nightly_refit",
        name="refit and publish the models",
        misfire_grace_time=REFIT_GRACE_SECONDS,
        **common,
    )
    scheduler.add_job(
        jobs.send_digests,
        "interval",
        seconds=DIGEST_POLL_SECONDS,
        next_run_time=datetime.now(UTC),  # catch up at start-up, see the module docstring
        id="send_digests",
        name="send due digests",
        misfire_grace_time=None,
        **common,
    )
    scheduler.add_job(
        jobs.send_account_mails,
        "interval",
        seconds=MAIL_POLL_SECONDS,
        next_run_time=datetime.now(UTC),
        id="send_account_mails",
        name="send queued account mails",
        misfire_grace_time=None,
        **common,
    )
    _add_fetch_job(scheduler, settings, common)
    return scheduler


def _add_fetch_job(scheduler: BaseScheduler, settings: Settings, common: dict) -> None:
    if not settings.sources.fetch_sources:
        return
    scheduler.add_job(
        jobs.fetch_sources,
        "cron",
        minute=10,
        id="fetch_sources",
        name="fetch papers from the configured sources",
        misfire_grace_time=3600,
        **common,
    )
