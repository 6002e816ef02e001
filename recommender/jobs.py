"""Scheduled jobs as plain functions: the scheduler, the CLI and the tests call them.

APScheduler only decides *when* these run (see :mod:`recommender.scheduler`).
Each job opens its own database connection (jobs run in scheduler threads) and
logs one line with its counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import store
from .config import Settings
from .dumps import DumpError
from .inbox import Inbox
from .ingest import DUMP_SUFFIXES, parse_file

if TYPE_CHECKING:
    from .accounts import MailRun
    from .digest import DigestRun

log = logging.getLogger(__name__)


@dataclass
class InboxReport:
    ingested: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    new_papers: int = 0


def _reject(box: Inbox, name: str, reason: str, report: InboxReport) -> None:
    """Move ``name`` to ``failed/`` with ``<name>.error.txt`` beside it saying why."""
    report.failed[name] = reason
    log.warning("inbox: rejected %s: %s", name, reason)
    try:
        target = box.move(name, "failed")
        box.write_note("failed", target + ".error.txt", reason + "\n")
    except OSError as exc:  # the file stays where it is; the other files still go on
        log.error("inbox: cannot move %s to failed/: %s", name, exc)


def ingest_inbox(settings: Settings) -> InboxReport:
    """Ingest every dump file in the inbox; move each to ``processed/`` or ``failed/``.

    Each file is parsed, validated and stored on its own (one transaction per
    file). Any failure of one file, a malformed dump or anything else (an
    unexpected error while parsing or storing), moves it to ``failed/`` with
    ``<name>.error.txt`` beside it saying why, and the next file goes on: one
    bad file never jams the inbox. Files still being written (modified in the
    last two seconds) are left for the next run. Only regular files inside the
    inbox are read: a symbolic link is moved to ``failed/`` unread, and nothing is
    written through a link (:mod:`recommender.inbox`).
    """
    report = InboxReport()
    with Inbox(settings.inbox_dir) as box:
        now = time.time()
        waiting = sorted(
            entry.name
            for entry in box.entries(DUMP_SUFFIXES)
            if entry.is_link or now - entry.mtime > 2
        )
        if not waiting:
            return report
        with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
            store.migrate(db)
            for name in waiting:
                _ingest_one(db, box, name, report)
    log.info(
        "inbox: %d ingested (%d new papers), %d already known, %d failed",
        len(report.ingested),
        report.new_papers,
        len(report.repeated),
        len(report.failed),
    )
    return report


def _ingest_one(db, box: Inbox, name: str, report: InboxReport) -> None:
    try:
        dump = parse_file(Path(name), read=lambda: box.read(name))
        record = store.record_dump(db, dump)
    except DumpError as exc:
        _reject(box, name, str(exc), report)
        return
    except Exception as exc:  # the store failed on this file (it rolled back)
        log.exception("inbox: cannot store %s", name)
        _reject(box, name, f"{name}: cannot store the dump: {exc}", report)
        return
    report.warnings.extend(dump.warnings)
    for warning in dump.warnings:
        log.warning("inbox: %s", warning)
    try:
        box.move(name, "processed")
    except OSError as exc:  # stored; a rerun finds the same hash and changes nothing
        log.error("inbox: cannot move %s to processed/: %s", name, exc)
    if record.already_ingested:
        report.repeated.append(name)
    else:
        report.ingested.append(name)
        report.new_papers += record.new_papers


def refit_models(settings: Settings) -> dict | None:
    """Refit the models and publish them (the scheduler's side of :func:`recommender.refit.refit`).

    Waits for a refit already running (a ``paperfeed refit`` from the shell) rather than
    skipping: that one may have read the database before the dump that triggered this
    one. Returns the refit report, or None when there are no papers yet.
    """
    from .refit import refit

    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        store.migrate(db)
        if store.latest_dump(db) is None:
            log.info("refit: no dumps yet; nothing to fit")
            return None
        report = refit(db, settings, wait=True)
    log.info(
        "refit: model %s on %d papers, %d people, %d ratings in %s s (%s)",
        report["version"],
        report["papers"],
        report["people"],
        report["ratings"],
        report["seconds"],
        ", ".join(f"{k} {v} s" for k, v in report["parts"].items()),
    )
    return report


def publish_models(settings: Settings) -> dict | None:
    """Publish the papers that arrived, reusing the fitted models (the scheduler's side of
    :func:`recommender.refit.publish`, which refits in full when it must). Waits for a
    writer already running, as :func:`refit_models` does. None when there are no papers."""
    from .refit import publish

    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        store.migrate(db)
        if store.latest_dump(db) is None:
            log.info("publish: no dumps yet; nothing to publish")
            return None
        report = publish(db, settings, wait=True)
    log.info(
        "publish: model %s on %d papers (%d new; fit of %s%s) in %s s (%s)",
        report["version"],
        report["papers"],
        report.get("new_papers", 0),
        report.get("fit_of", report["version"]),
        f", refitted: {report['refit_because']}" if report.get("refit_because") else "",
        report["seconds"],
        ", ".join(f"{k} {v} s" for k, v in report["parts"].items()),
    )
    return report


def ingest_and_publish(settings: Settings) -> InboxReport:
    """Ingest the inbox; if a new dump arrived, publish its papers with the fitted models
    (:func:`publish_models`; the nightly :func:`refit_models` refits them).

    Also publishes when the published model does not verify against its checksums (a file
    damaged on disk): web workers serve an older bundle meanwhile, and this minute's run
    refits and publishes a fresh one (a damaged bundle is never extended)."""
    from .bundles import current_problem

    report = ingest_inbox(settings)
    damaged = current_problem(settings.models_dir)
    if damaged:
        log.warning("refit: the published model is damaged (%s); publishing a new one", damaged)
    if report.ingested or damaged:
        publish_models(settings)
    return report


def fetch_sources(settings: Settings, *, now: datetime | None = None) -> list:
    """Fetch the due days of every configured source (``PAPERFEED_FETCH_SOURCES``);
    if one brought new papers, publish them (:func:`publish_models`).
    See :func:`recommender.sources.fetch_due`.

    Returns the outcomes (:class:`~recommender.sources.FetchResult` or the
    :class:`~recommender.sources.FetchError` of a day left for a later retry).
    """
    from .sources import fetch_due

    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        store.migrate(db)
        outcomes = fetch_due(db, settings.sources, now=now)
    if any(getattr(o, "new_papers", 0) for o in outcomes):
        publish_models(settings)
    return outcomes


def send_digests(settings: Settings, *, now: datetime | None = None) -> DigestRun:
    """Send the digests that are due at ``now``; see :func:`recommender.digest.send_due_digests`.

    The digest module logs the run's counts.
    """
    from .digest import send_due_digests

    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        store.migrate(db)
        return send_due_digests(db, settings, now=now)


def send_account_mails(settings: Settings, *, secret_key: str | None = None) -> MailRun:
    """Send the queued account mails that are due (confirm, reset, "someone tried to sign
    up"); see :func:`recommender.accounts.deliver_account_mails`. ``secret_key`` signs the
    links (default: the installation's, as the web app's)."""
    from .accounts import deliver_account_mails

    key = secret_key or settings.secret_key()
    with store.connect(settings.db_path, busy_timeout=settings.busy_timeout) as db:
        run = deliver_account_mails(db, settings, key)
    if run.sent or run.retrying or run.failed or run.dropped:
        log.info(
            "account mails: %d sent, %d to retry, %d failed, %d dropped",
            len(run.sent),
            len(run.retrying),
            len(run.failed),
            len(run.dropped),
        )
    return run
