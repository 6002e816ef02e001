"""When the jobs run. One process (the Procfile's ``scheduler:``), never a web worker.

Each job has an explicit id and ``replace_existing``; ``coalesce`` folds runs
missed while the scheduler was down into one, and ``misfire_grace_time`` lets
a run that is late by less than the grace still happen once.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler

from . import jobs
from .config import Settings

log = logging.getLogger(__name__)

INBOX_POLL_SECONDS = 60


def build_scheduler(settings: Settings, *, scheduler_class=BlockingScheduler):
    scheduler = scheduler_class(timezone="UTC")
    scheduler.add_job(
        jobs.ingest_inbox,
        "interval",
        seconds=INBOX_POLL_SECONDS,
        args=[settings],
        id="ingest_inbox",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=INBOX_POLL_SECONDS,
    )
    return scheduler
