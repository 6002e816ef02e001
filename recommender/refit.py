"""Writing models: fit every model on every paper and rating, and publish a bundle.

Only the scheduler's jobs and ``paperfeed refit`` call :func:`refit`. It publishes through
:func:`recommender.bundles.model_writer`, which holds a lock across processes, so two
refits never write at once; the per-corpus work of serving (neighbourhoods of the papers
people are shown, the onboarding sample) is done there, once. Database ids become matrix
rows here and in :mod:`recommender.feed.service`, nowhere else.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp
from sqlite_utils import Database

from . import store
from .bundles import model_writer
from .config import Settings
from .model import fit_recommender
from .text import paper_text

log = logging.getLogger(__name__)

#: Papers first seen in the dumps of this many days before the newest dump are "served":
#: their neighbourhoods are precomputed at publish, covering the feed's longest window
#: (:data:`NEW_WINDOW_CAP_DAYS`); an older day someone opens is indexed on demand and kept.
SERVED_DAYS = 30


def refit(db: Database, settings: Settings, *, progress: bool = False, wait: bool = False) -> dict:
    """Fit every model from the papers and ratings in the database and publish a new bundle.

    Holds the models' writer lock throughout: with ``wait=False`` a refit that finds
    another running raises :class:`WriterBusy` at once (its bundle will serve); with
    ``wait=True`` it waits its turn. Near-duplicate papers stored before ingest merged them
    are merged first (:func:`recommender.store.merge_near_duplicates`), so a model never
    holds both. Returns ``{"version", "papers", "people", "ratings", "served_papers",
    "merged", "seconds", "parts"}`` (``parts``: seconds per stage).
    """
    with model_writer(settings.models_dir, wait=wait) as writer:
        started = time.perf_counter()
        merged = store.merge_near_duplicates(db)
        papers = store.all_papers(db)
        if not papers:
            raise RuntimeError("no papers to fit on: ingest a dump first (paperfeed ingest PATH)")
        paper_ids = np.array([p[0] for p in papers], dtype=np.int64)
        pidx_of = {int(pid): i for i, pid in enumerate(paper_ids)}
        ratings = [(u, pidx_of[p], v) for u, p, v in store.all_ratings(db) if p in pidx_of]
        served = [pidx_of[p] for p in store.recent_paper_ids(db, SERVED_DAYS) if p in pidx_of]
        read = time.perf_counter() - started
        user_items = _user_items(ratings, len(papers))
        rec = fit_recommender(
            [paper_text(title, abstract) for _, title, abstract in papers],
            user_items if user_items.nnz else None,
            text=settings.text_kind,
            cache_dir=settings.cache_dir,
            progress=progress,
        )
        fitted = time.perf_counter() - started - read
        info = {
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "papers": len(papers),
            "max_paper_id": int(paper_ids.max()),
            "people": int(user_items.shape[0]),
            "ratings": len(ratings),
            "text_model": rec.text_kind,
            "tuning": rec.tuning_,
        }
        name, parts = writer.publish(
            rec, paper_ids, served=np.asarray(served, np.int64), info=info, progress=progress
        )
    report = {
        "version": name,
        **{k: info[k] for k in ("papers", "people", "ratings")},
        "served_papers": len(served),
        "merged": len(merged),
        "tuning": rec.tuning_,
        "seconds": round(time.perf_counter() - started, 2),
        "parts": {"read": round(read, 3), "fit": round(fitted, 3), **parts},
    }
    log.info("refit: %s", report)
    return report


def _user_items(ratings: list[tuple[int, int, int]], n_papers: int) -> sp.csr_matrix:
    """(people x papers) +1/-1 matrix; people in user-id order."""
    user_rows = {u: i for i, u in enumerate(sorted({u for u, _, _ in ratings}))}
    return sp.csr_matrix(
        (
            np.array([v for _, _, v in ratings], dtype=np.float32),
            (
                np.array([user_rows[u] for u, _, _ in ratings], dtype=np.int64),
                np.array([p for _, p, _ in ratings], dtype=np.int64),
            ),
        ),
        shape=(len(user_rows), n_papers),
    )
