"""Papers that arrive by themselves: Hugging Face Daily Papers and arXiv, fetched by day.

:func:`fetch_source_day` is what ``paperfeed fetch`` and the scheduler's fetch job
call. A fetched day becomes one dump, stored like a dump file (same dedup by
arXiv id, then normalised title; one transaction, all or nothing) and dated by
the day asked for. The dump's content hash is made from the day's paper ids, so
fetching the same day again finds the same dump and adds nothing; a day that
gained papers since is a second dump of the same date, holding only the
newcomers as new. Every run is written to the fetch ledger (``fetches``):
a failure is logged there with its error and retried by the job later; nothing
of a failed fetch is stored.

:func:`enrich` gives text-dump papers (titles and abstracts only) their arXiv
ids, authors and links through the arXiv API's title search.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlite_utils import Database

from .. import store
from ..dumps import ParsedDump, ParsedPaper
from . import arxiv, hf_daily
from .http import FetchError, PoliteClient
from .settings import SOURCES, SourceSettings, load_source_settings

__all__ = [
    "SOURCES",
    "EnrichReport",
    "FetchError",
    "FetchResult",
    "due_days",
    "enrich",
    "fetch_due",
    "fetch_source_day",
    "load_source_settings",
]

log = logging.getLogger(__name__)

#: A failed day is retried after RETRY_BASE * 2**(attempts-1), at most RETRY_CAP.
RETRY_BASE = timedelta(minutes=30)
RETRY_CAP = timedelta(hours=12)
#: Titles per arXiv title-search request in :func:`enrich`.
ENRICH_BATCH = 20


@dataclass(frozen=True)
class FetchResult:
    source: str
    day: str
    papers: int
    new_papers: int
    skipped: int
    dump_id: int | None
    already_fetched: bool
    upvotes_updated: int = 0
    requests: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def client_for(source: str, cfg: SourceSettings) -> PoliteClient:
    return PoliteClient(
        timeout=cfg.timeout,
        retries=cfg.retries,
        backoff=cfg.backoff,
        max_wait=cfg.max_wait,
        max_bytes=cfg.max_bytes,
        min_interval=cfg.arxiv_delay if source == "arxiv" else 0.0,
    )


def _download(source: str, day: str, cfg: SourceSettings, client: PoliteClient):
    if source == "hf-daily":
        return hf_daily.fetch_day(client, cfg.hf_api_url, day)
    if source == "arxiv":
        papers = arxiv.fetch_day(
            client,
            cfg.arxiv_api_url,
            cfg.arxiv_categories,
            day,
            page_size=cfg.arxiv_page_size,
            max_results=cfg.arxiv_max_results,
        )
        return papers, 0
    raise ValueError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")


def _dedupe(papers: list[ParsedPaper]) -> list[ParsedPaper]:
    seen: set[str] = set()
    unique = []
    for paper in papers:
        keys = {f"t:{paper.norm_title}"} | (
            {f"id:{paper.external_id}"} if paper.external_id else set()
        )
        if keys & seen:
            continue
        seen |= keys
        unique.append(paper)
    return unique


def day_dump(source: str, day: str, papers: list[ParsedPaper]) -> ParsedDump:
    """The dump of one fetched day; its hash depends only on which papers it has."""
    papers = _dedupe(papers)
    identity = sorted(p.external_id or f"title:{p.norm_title}" for p in papers)
    digest = hashlib.sha256("\n".join([source, day, *identity]).encode("utf-8")).hexdigest()
    return ParsedDump(
        source=f"{source}-{day}",
        format="atom" if source == "arxiv" else "jsonl",
        content_hash=digest,
        papers=tuple(papers),
    )


def _retry_at(attempts: int, now: datetime) -> str:
    wait = min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)
    return (now + wait).isoformat(timespec="seconds")


def fetch_source_day(
    db: Database,
    source: str,
    day: date | str,
    cfg: SourceSettings | None = None,
    *,
    client: PoliteClient | None = None,
    now: datetime | None = None,
) -> FetchResult:
    """Fetch ``source`` for ``day`` and store it as one dump dated ``day``.

    Raises :class:`FetchError` (after logging it and counting it in the ledger)
    when the source cannot be read; then nothing is stored.
    """
    cfg = cfg or load_source_settings()
    day = day.isoformat() if isinstance(day, date) else str(date.fromisoformat(str(day)))
    client = client or client_for(source, cfg)
    now = now or datetime.now(UTC)
    try:
        papers, skipped = _download(source, day, cfg, client)
    except FetchError as exc:
        before = store.get_fetch(db, source, day)
        attempts = 1 + (before["attempts"] if before and before["state"] == "failed" else 0)
        retry = _retry_at(attempts, now)
        store.record_fetch_failed(db, source, day, str(exc), retry)
        log.warning(
            "fetch %s %s failed (attempt %d; the job retries after %s): %s",
            source,
            day,
            attempts,
            retry,
            exc,
        )
        raise
    if not papers:
        store.record_fetch_done(db, source, day, dump_id=None, papers=0, new_papers=0)
        log.info("fetch %s %s: no papers that day", source, day)
        return FetchResult(source, day, 0, 0, skipped, None, False, 0, client.requests)
    record = store.record_dump(db, day_dump(source, day, papers), dump_date=day, source=source)
    votes = {
        store.arxiv_id_of(p.external_id): p.upvotes
        for p in papers
        if p.upvotes is not None and store.arxiv_id_of(p.external_id)
    }
    updated = store.update_upvotes(db, votes) if votes else 0
    new = 0 if record.already_ingested else record.new_papers
    store.record_fetch_done(
        db, source, day, dump_id=record.dump_id, papers=record.papers, new_papers=new
    )
    result = FetchResult(
        source,
        day,
        record.papers,
        new,
        skipped,
        record.dump_id,
        record.already_ingested,
        updated,
        client.requests,
    )
    log.info(
        "fetch %s %s: %d papers, %d new%s",
        source,
        day,
        record.papers,
        new,
        " (already fetched)" if record.already_ingested else "",
    )
    return result


def due_days(db: Database, source: str, cfg: SourceSettings, now: datetime) -> list[str]:
    """The days the fetch job should (re)fetch for ``source`` at ``now``, oldest first.

    Nothing before ``fetch_hour`` (UTC). Then each of the ``fetch_days`` days before
    today that has no complete fetch: never fetched, failed and past its retry time,
    or fetched before the day was over (papers are added to a day while it lasts).
    """
    if now.hour < cfg.fetch_hour:
        return []
    today = now.date()
    due = []
    for back in range(cfg.fetch_days, 0, -1):
        day = (today - timedelta(days=back)).isoformat()
        row = store.get_fetch(db, source, day)
        if row is None:
            due.append(day)
        elif row["state"] == "failed":
            if (row["next_attempt_at"] or "") <= now.isoformat(timespec="seconds"):
                due.append(day)
        elif row["updated_at"] < (today - timedelta(days=back - 1)).isoformat():
            due.append(day)
    return due


def fetch_due(
    db: Database, cfg: SourceSettings | None = None, *, now: datetime | None = None
) -> list[FetchResult | FetchError]:
    """What the scheduler job does: every configured source's due days, in order.

    A failed day is logged and recorded for a later retry; the other days still run.
    """
    cfg = cfg or load_source_settings()
    now = now or datetime.now(UTC)
    outcomes: list[FetchResult | FetchError] = []
    for source in cfg.fetch_sources:
        client = client_for(source, cfg)
        for day in due_days(db, source, cfg, now):
            try:
                outcomes.append(fetch_source_day(db, source, day, cfg, client=client, now=now))
            except FetchError as exc:
                outcomes.append(exc)
    return outcomes


@dataclass
class EnrichReport:
    """What an enrich run did; ``left`` and ``not_found`` count every paper still without an
    arXiv id after it: never looked up (a later run asks), or not found by exact title."""

    looked_up: int = 0
    found: int = 0
    updated: int = 0
    left: int = 0
    not_found: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def enrich(
    db: Database,
    cfg: SourceSettings | None = None,
    *,
    limit: int | None = None,
    client: PoliteClient | None = None,
    progress: bool = False,
) -> EnrichReport:
    """Resolve papers without an arXiv id to one by exact title, through the arXiv API.

    Titles are asked :data:`ENRICH_BATCH` at a time (one request each, paced like
    every arXiv request) and every answer, found or not, is cached in
    ``arxiv_lookups``, so a title is asked once. Each batch is stored in its own
    transaction: when arXiv cannot be reached the report says so in ``error``, the
    batches before stay stored and the rest are left for the next run.
    """
    from tqdm import tqdm

    cfg = cfg or load_source_settings()
    client = client or client_for("arxiv", cfg)
    pending = store.papers_without_arxiv_id(db, limit=limit)
    report = EnrichReport()
    with tqdm(total=len(pending), unit="title", desc="enrich", disable=not progress) as bar:
        for start in range(0, len(pending), ENRICH_BATCH):
            batch = pending[start : start + ENRICH_BATCH]
            try:
                found = arxiv.search_titles(client, cfg.arxiv_api_url, [p["title"] for p in batch])
            except FetchError as exc:
                report.error = str(exc)
                log.warning("enrich: arXiv could not be asked: %s", exc)
                break
            matches = [
                (p["id"], *found[p["norm_title"]]) for p in batch if p["norm_title"] in found
            ]
            report.updated += store.record_arxiv_lookups(
                db, [p["norm_title"] for p in batch], matches
            )
            report.looked_up += len(batch)
            report.found += len(matches)
            bar.update(len(batch))
    report.left, report.not_found = store.enrich_counts(db)
    return report
