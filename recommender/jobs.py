"""Scheduled jobs as plain functions: the scheduler, the CLI and the tests call them.

APScheduler only decides *when* these run (see :mod:`recommender.scheduler`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import store
from .config import Settings
from .dumps import DumpError, parse_dump_file
from .ingest import DUMP_SUFFIXES

log = logging.getLogger(__name__)


@dataclass
class InboxReport:
    ingested: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    new_papers: int = 0


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    os.replace(path, target)
    return target


def ingest_inbox(settings: Settings) -> InboxReport:
    """Ingest every dump file in the inbox; move each to ``processed/`` or ``failed/``.

    A file that fails to parse goes to ``failed/`` with ``<name>.error.txt``
    beside it saying why; the others are unaffected. Files still being written
    (modified in the last two seconds) are left for the next run.
    """
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    report = InboxReport()
    now = datetime.now().timestamp()
    files = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file()
        and p.suffix.lower() in DUMP_SUFFIXES
        and not p.name.startswith(".")
        and now - p.stat().st_mtime > 2
    )
    if not files:
        return report
    with store.connect(settings.db_path) as db:
        store.migrate(db)
        for path in files:
            try:
                record = store.record_dump(db, parse_dump_file(path))
            except DumpError as exc:
                target = _move(path, inbox / "failed")
                target.with_name(target.name + ".error.txt").write_text(str(exc) + "\n")
                report.failed[path.name] = str(exc)
                log.warning("inbox: rejected %s: %s", path.name, exc)
                continue
            _move(path, inbox / "processed")
            if record.already_ingested:
                report.repeated.append(path.name)
            else:
                report.ingested.append(path.name)
                report.new_papers += record.new_papers
    log.info(
        "inbox: %d ingested (%d new papers), %d already known, %d failed",
        len(report.ingested),
        report.new_papers,
        len(report.repeated),
        len(report.failed),
    )
    return report
