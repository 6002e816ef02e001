"""Writing models: fit every model on every paper and rating, and publish a bundle.

Two writers: :func:`refit` fits every model (text model, ALS, bridges, self-tuning) and
publishes; :func:`publish` publishes the papers that arrived since, reusing the current
bundle's fitted models (the day's work after an ingest). Only the scheduler's jobs and
``paperfeed refit`` / ``paperfeed publish`` call them. It publishes through
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
from .bundles import Bundle, current_name, load_bundle, model_writer
from .config import Settings
from .model import extend_recommender, fit_recommender
from .quantized import Int8Rows
from .text import paper_text

log = logging.getLogger(__name__)

#: Papers first seen in the dumps of this many days before the newest dump are "served":
#: their neighbourhoods are precomputed at publish, covering the feed's longest window
#: (:data:`NEW_WINDOW_CAP_DAYS`); an older day someone opens is indexed on demand and kept.
SERVED_DAYS = 30


#: A publish refits in full instead once the ratings changed by more than this share of
#: those the current models were fitted on (a count: the nightly refit catches the rest).
REFIT_RATINGS_SHARE = 0.2


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
        return _fit_and_publish(writer, db, settings, progress=progress)


def publish(
    db: Database, settings: Settings, *, progress: bool = False, wait: bool = False
) -> dict:
    """Publish the papers that arrived since the current bundle, reusing its fitted models.

    The day's work after an ingest: the new papers get vectors from the fitted text model,
    bridged collaborative factors and their neighbourhoods
    (:func:`recommender.model.extend_recommender`); nothing is refitted. A full
    :func:`refit` runs instead when reuse would be wrong or there is nothing to reuse (no
    bundle, a damaged one, another text model, papers merged away since, or ratings
    changed by more than :data:`REFIT_RATINGS_SHARE`); ``refit_because`` then says why.
    With no new papers nothing is written (``published: False``). Same lock and report
    as :func:`refit`, plus ``published``, ``new_papers`` and ``fit_of`` (the bundle whose
    fit is reused).
    """
    with model_writer(settings.models_dir, wait=wait) as writer:
        started = time.perf_counter()
        bundle, why = _reusable(db, settings)
        if bundle is None:
            log.info("publish: a full refit instead: %s", why)
            report = _fit_and_publish(writer, db, settings, progress=progress)
            return {**report, "published": True, "refit_because": why}
        rows = store.papers_after(db, bundle.max_paper_id)
        read = time.perf_counter() - started
        fit_of = bundle.info.get("fit_of", bundle.name)
        report = {
            "version": bundle.name,
            **{k: bundle.info.get(k, 0) for k in ("people", "ratings")},
            "papers": len(bundle.paper_ids) + len(rows),
            "new_papers": len(rows),
            "fit_of": fit_of,
        }
        if not rows:
            seconds = round(time.perf_counter() - started, 2)
            return {**report, "published": False, "seconds": seconds, "parts": {"read": read}}
        rec = extend_recommender(
            bundle.rec,
            [paper_text(title, abstract) for _, title, abstract in rows],
            cache_dir=settings.cache_dir,
            threads=settings.fit_threads,
        )
        paper_ids = np.concatenate([bundle.paper_ids, np.array([r[0] for r in rows], np.int64)])
        extended = time.perf_counter() - started - read
        served = _served_rows(db, paper_ids)
        info = {
            **{k: bundle.info.get(k) for k in ("fitted_at", "people", "ratings", "text_model")},
            "tuning": bundle.info.get("tuning", rec.tuning_),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "papers": len(paper_ids),
            "max_paper_id": int(paper_ids.max()),
            "fit_of": fit_of,
            "new_papers": len(rows),
        }
        name, parts = writer.publish(
            rec,
            paper_ids,
            served=served,
            info=info,
            progress=progress,
            onboarding=np.asarray(bundle.onboarding),  # the fit's topic clusters
            threads=settings.fit_threads,
        )
    report.update(
        version=name,
        published=True,
        served_papers=len(served),
        seconds=round(time.perf_counter() - started, 2),
        parts={"read": round(read, 3), "extend": round(extended, 3), **parts},
    )
    log.info("publish: %s", report)
    return report


def _reusable(db: Database, settings: Settings) -> tuple[Bundle | None, str | None]:
    """The current bundle when a publish may extend its fitted models, else why not."""
    name = current_name(settings.models_dir)
    if name is None:
        return None, "no published model yet"
    try:
        bundle = load_bundle(settings.models_dir, name)
    except Exception as exc:
        return None, f"the published model {name} cannot be read ({exc})"
    kind = settings.text_kind.split(":")[0]
    if bundle.rec.text_kind != kind:
        return None, f"the text model is now {kind}, {name} has {bundle.rec.text_kind}"
    collab = bundle.rec.collab
    if collab is not None and collab.extra_coef_ is not None and bundle.rec.bridge_text is None:
        return None, f"{name} predates the stored bridge vocabulary"
    if collab is not None and not isinstance(collab.item_factors_, Int8Rows):
        return None, f"{name} predates int8 factors (bundle format 6): a refit fits with them"
    n = len(bundle.paper_ids)
    ids = store.paper_ids(db)
    if len(ids) < n or not np.array_equal(np.asarray(ids[:n], np.int64), bundle.paper_ids):
        return None, f"papers were merged or removed since {name} was fitted"
    fitted, now = int(bundle.info.get("ratings", 0)), store.count_ratings(db)
    if abs(now - fitted) > REFIT_RATINGS_SHARE * fitted:
        return None, f"{now} ratings, {name} was fitted on {fitted}"
    return bundle, None


def _served_rows(db: Database, paper_ids: np.ndarray) -> np.ndarray:
    """The rows of the papers people are shown (the last :data:`SERVED_DAYS` of dumps)."""
    pidx_of = {int(pid): i for i, pid in enumerate(paper_ids)}
    served = [pidx_of[p] for p in store.recent_paper_ids(db, SERVED_DAYS) if p in pidx_of]
    return np.asarray(served, np.int64)


def _fit_and_publish(writer, db: Database, settings: Settings, *, progress: bool) -> dict:
    started = time.perf_counter()
    merged = store.merge_near_duplicates(db)
    papers = store.all_papers(db)
    if not papers:
        raise RuntimeError("no papers to fit on: ingest a dump first (paperfeed ingest PATH)")
    paper_ids = np.array([p[0] for p in papers], dtype=np.int64)
    pidx_of = {int(pid): i for i, pid in enumerate(paper_ids)}
    ratings = [(u, pidx_of[p], v) for u, p, v in store.all_ratings(db) if p in pidx_of]
    served = _served_rows(db, paper_ids)
    read = time.perf_counter() - started
    user_items = _user_items(ratings, len(papers))
    rec = fit_recommender(
        [paper_text(title, abstract) for _, title, abstract in papers],
        user_items if user_items.nnz else None,
        text=settings.text_kind,
        cache_dir=settings.cache_dir,
        progress=progress,
        threads=settings.fit_threads,
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
        rec, paper_ids, served=served, info=info, progress=progress, threads=settings.fit_threads
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
