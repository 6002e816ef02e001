"""The scheduler's jobs: their configuration, and real schedulers running them."""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from recommender import jobs, pipeline, scheduler, store

from . import test_digest
from .conftest import SAMPLE_DUMPS
from .test_digest import add_user, ledger

mail_env, papers, settings = test_digest.mail_env, test_digest.papers, test_digest.settings


def test_every_job_has_an_id_coalescing_one_instance_and_a_deliberate_grace(settings):
    sched = scheduler.build_scheduler(settings, scheduler_class=BackgroundScheduler)
    found = {
        job.id: (type(job.trigger), job.coalesce, job.max_instances, job.misfire_grace_time)
        for job in sched.get_jobs()
    }
    assert found == {
        "ingest_inbox": (IntervalTrigger, True, 1, scheduler.INBOX_POLL_SECONDS),
        "nightly_refit": (CronTrigger, True, 1, scheduler.REFIT_GRACE_SECONDS),
        # No limit: the job is idempotent and has its own catch-up window.
        "send_digests": (IntervalTrigger, True, 1, None),
        # Every few seconds; retries and backoff live in the queue rows.
        "send_account_mails": (IntervalTrigger, True, 1, None),
        # Hourly; the job decides which days are due (recommender.sources.due_days).
        "fetch_sources": (CronTrigger, True, 1, 3600),
    }
    by_id = {job.id: job for job in sched.get_jobs()}
    assert by_id["send_digests"].trigger.interval.total_seconds() == 300
    # The digest job runs at start-up, to catch up on what was missed while down.
    assert by_id["send_digests"].next_run_time <= datetime.now(UTC)


def test_adding_the_jobs_again_replaces_them(settings):
    sched = BackgroundScheduler(timezone="UTC")
    sched.start(paused=True)
    try:
        first = scheduler.build_scheduler(settings, scheduler_class=lambda **kw: sched)
        scheduler.build_scheduler(settings, scheduler_class=lambda **kw: sched)
        assert first is sched
        assert sorted(job.id for job in sched.get_jobs()) == [
            "fetch_sources",
            "ingest_inbox",
            "nightly_refit",
            "send_account_mails",
            "send_digests",
        ]
    finally:
        sched.shutdown(wait=False)


class JobWatcher:
    """Counts finished runs per job id, so a test waits for a run instead of sleeping."""

    def __init__(self, sched) -> None:
        self.runs: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.changed = threading.Condition()
        sched.add_listener(self, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def __call__(self, event) -> None:
        with self.changed:
            self.runs[event.job_id] = self.runs.get(event.job_id, 0) + 1
            if event.exception is not None:
                self.errors.append(event.exception)
            self.changed.notify_all()

    def wait(self, job_id: str, runs: int = 1, timeout: float = 60) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.runs.get(job_id, 0) >= runs, timeout)
        assert self.errors == []


def start_background(settings) -> tuple[BackgroundScheduler, JobWatcher]:
    sched = scheduler.build_scheduler(settings, scheduler_class=BackgroundScheduler)
    watcher = JobWatcher(sched)
    sched.start()
    return sched, watcher


def test_a_restarted_scheduler_sends_the_missed_digest_once(papers, settings):
    db = papers
    hour_passed = datetime.now(UTC).hour  # the send hour has come, minutes ago at most
    add_user(db, "ada@example.org", timezone="UTC", digest_hour=hour_passed, digest_size=2)
    for _ in range(2):  # start, stop, start again: the second start must not resend
        sched, watcher = start_background(settings)
        try:
            watcher.wait("send_digests")
        finally:
            sched.shutdown()
    assert [(r["recipient"], r["state"]) for r in ledger(db)] == [("ada@example.org", "sent")]
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1


def test_the_inbox_job_ingests_and_publishes_a_model_that_knows_the_new_dump(papers, settings):
    db = papers
    uid = add_user(db, "ada@example.org")
    liked = db.execute("SELECT min(id) FROM papers").fetchone()[0]
    db["ratings"].insert(
        {"user_id": uid, "paper_id": liked, "value": 1, "created_at": "", "updated_at": ""}
    )
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    dropped = shutil.copy(SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt", settings.inbox_dir)
    old = time.time() - 60  # the job leaves files younger than two seconds alone
    os.utime(dropped, (old, old))
    report = jobs.ingest_and_publish(settings)
    assert report.ingested == ["2026-11-18_002_928061713d22a60e.txt"]
    feeds = pipeline.FeedService(settings)
    published = feeds.bundle()
    assert published.max_paper_id == store.max_paper_id(db)
    assert feeds.status(db)["papers_behind"] == 0
    ranked = list(feeds.feed(db, pipeline.FeedQuery(uid, window="today")).items)
    assert ranked and ranked[0].reason != "new in this dump"  # ranked by the new model
    assert jobs.ingest_and_publish(settings).ingested == []  # nothing new: no refit
    assert feeds.bundle().name == published.name
