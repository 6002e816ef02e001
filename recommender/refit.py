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
from datetime import UTC, datetime, timedelta

import numpy as np
import scipy.sparse as sp
from sqlite_utils import Database

from . import store
from .bundles import Bundle, current_name, load_bundle, model_writer, read_tuning
from .config import Settings
from .content import ContentModel
from .model import default_collab, extend_recommender, fit_recommender, hyper_parameters
from .quantized import Int8Rows
from .text import paper_text
from .weights import BlendWeights

log = logging.getLogger(__name__)

#: Papers first seen in the dumps of this many days before the newest dump are "served":
#: their neighbourhoods are precomputed at publish, covering the feed's longest window
#: (:data:`NEW_WINDOW_CAP_DAYS`); an older day someone opens is indexed on demand and kept.
SERVED_DAYS = 30


#: A publish refits in full instead once the ratings changed by more than this share of
#: those the current models were fitted on (a count: the nightly refit catches the rest).
REFIT_RATINGS_SHARE = 0.2

#: A refit reuses the blend weights an earlier refit tuned (no check fit, no weight search)
#: while that tuning is at most this many days old, ...
RETUNE_DAYS = 7
#: ... and the ratings changed since it by at most this share of those it was tuned on
#: (a rating added, changed or removed counts once, a changed one may count twice). Why
#: 5%: see docs/benchmarks.md, "Reusing the tuned weights".
RETUNE_RATINGS_SHARE = 0.05
#: A writer stamps a rating's ``updated_at`` before it waits for the write lock (up to
#: ``settings.busy_timeout``) and commits after, so a rating stamped before a refit read
#: the ratings may still land after the read; stamps this long before the read (besides
#: the busy timeout) count as written after it. Over-counting only brings a re-tune nearer.
STAMP_SLACK_SECONDS = 60.0


def refit(
    db: Database,
    settings: Settings,
    *,
    progress: bool = False,
    wait: bool = False,
    retune: bool = False,
) -> dict:
    """Fit every model from the papers and ratings in the database and publish a new bundle.

    Holds the models' writer lock throughout: with ``wait=False`` a refit that finds
    another running raises :class:`WriterBusy` at once (its bundle will serve); with
    ``wait=True`` it waits its turn. Near-duplicate papers stored before ingest merged them
    are merged first (:func:`recommender.store.merge_near_duplicates`), so a model never
    holds both. The blend weights the current bundle's refit tuned are reused while they
    are recent and the ratings barely changed (:func:`_reusable_tuning`); ``retune`` tunes
    them anew regardless. Returns ``{"version", "papers", "people", "ratings",
    "served_papers", "merged", "tuning", "seconds", "parts"}`` (``parts``: seconds per
    stage; ``tuning["status"]``: ``"tuned"``, ``"reused"``, ``"defaults"`` or ``"off"``).
    """
    with model_writer(settings.models_dir, wait=wait) as writer:
        return _fit_and_publish(writer, db, settings, progress=progress, retune=retune)


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


def _fit_and_publish(
    writer, db: Database, settings: Settings, *, progress: bool, retune: bool = False
) -> dict:
    started = time.perf_counter()
    merged = store.merge_near_duplicates(db)  # moved ratings are stamped: changes
    papers = store.all_papers(db)
    if not papers:
        raise RuntimeError("no papers to fit on: ingest a dump first (paperfeed ingest PATH)")
    paper_ids = np.array([p[0] for p in papers], dtype=np.int64)
    pidx_of = {int(pid): i for i, pid in enumerate(paper_ids)}
    earlier, why = (None, "asked to (--retune)") if retune else _earlier_tuning(settings)
    # Taken before the read: a rating stamped at or after it may be missing from the read.
    read_at = datetime.now(UTC) - timedelta(seconds=settings.busy_timeout + STAMP_SLACK_SECONDS)
    if earlier is None:
        rows, since = store.all_ratings(db), 0
    else:
        rows, since = store.all_ratings_and_changes(db, earlier[1]["ratings_read_at"])
    ratings = [(u, pidx_of[p], v) for u, p, v in rows if p in pidx_of]
    served = _served_rows(db, paper_ids)
    read = time.perf_counter() - started
    user_items = _user_items(ratings, len(papers))
    reuse = None
    if earlier is not None:
        reuse, why = _reusable_tuning(*earlier, settings, len(rows), since)
    rec = fit_recommender(
        [paper_text(title, abstract) for _, title, abstract in papers],
        user_items if user_items.nnz else None,
        text=settings.text_kind,
        cache_dir=settings.cache_dir,
        weights=reuse[0] if reuse else None,
        tune=reuse is None,
        reused_tuning=reuse[1] if reuse else None,
        progress=progress,
        threads=settings.fit_threads,
    )
    if reuse is None and rec.tuning_["status"] != "off":
        # what a later refit compares its ratings with (ratings_read_at: the instant
        # before which every rating this fit read was stamped, slack included)
        rec.tuning_.update(
            tuned_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ratings_read_at=read_at.isoformat(timespec="seconds"),
            tuned_on_ratings=len(rows),
            retuned_because=why,
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


def _earlier_tuning(settings: Settings) -> tuple[tuple[str, dict, object] | None, str]:
    """``((bundle, its tuning report, its weights), None)`` when the current bundle holds
    blend weights a refit tuned, else ``(None, why not)``."""
    name = current_name(settings.models_dir)
    if name is None:
        return None, "no published model yet"
    try:
        info, weights = read_tuning(settings.models_dir, name)
    except Exception as exc:  # damaged, pruned, an unreadable format: tune as a first fit
        return None, f"the published model {name} cannot be read ({exc})"
    tuning = info.get("tuning") or {}
    if tuning.get("status") not in ("tuned", "reused"):
        return None, f"{name}'s blend weights were not tuned ({tuning.get('status')})"
    if not isinstance(tuning.get("ratings_read_at"), str) or not tuning.get("tuned_on_ratings"):
        return None, f"{name}'s tuning predates the record of the ratings it was tuned on"
    return (tuning.get("of") or info.get("fit_of") or name, tuning, weights), None


def _reusable_tuning(
    of: str, tuning: dict, weights, settings: Settings, now: int, since: int
) -> tuple[tuple | None, str | None]:
    """``((weights, report), None)`` when a refit may reuse the blend weights of an earlier
    tuning (``tuning``, kept in bundle ``of``), else ``(None, why not)``.

    ``now``: the ratings read now; ``since``: how many of them were stamped at or after
    the tuning's ``ratings_read_at`` (T). A rating stamped before T was committed before
    the tuning read the ratings (T includes the slack), so the ``now - since`` others were
    all read by the tuning, unchanged: at most ``since`` were added or changed since, and
    at most ``tuned_on_ratings - (now - since)`` removed or changed. Their sum bounds the
    changes from above (a rating stamped in the slack counts as changed: over, not under).
    """
    kind = settings.text_kind
    if tuning.get("text_model") != kind:
        return None, f"the text model is now {kind}, {of} was tuned with {tuning.get('text_model')}"
    shipped = BlendWeights.load(kind).fingerprint()
    if tuning.get("shipped_weights") != shipped:
        return None, f"the shipped blend weights changed since {of} was tuned"
    fitted_with = hyper_parameters(ContentModel(), default_collab(kind))
    if tuning.get("hyper_parameters") != fitted_with:
        return None, f"the model settings changed since {of} was tuned"
    try:
        age = datetime.now(UTC) - datetime.fromisoformat(tuning["tuned_at"])
        then = int(tuning["tuned_on_ratings"])
    except (KeyError, TypeError, ValueError):  # TypeError: a time without its zone
        return None, f"{of}'s tuning has no readable time or ratings count"
    if not timedelta(0) <= age <= timedelta(days=RETUNE_DAYS):
        return None, f"{of}'s tuning is {age.days} days old, more than {RETUNE_DAYS}"
    changed = since + max(then - (now - since), 0)
    if changed > RETUNE_RATINGS_SHARE * then:
        return None, (
            f"up to {changed} ratings changed since {of} was tuned on {then}, more than "
            f"{RETUNE_RATINGS_SHARE:.0%}"
        )
    report = {**tuning, "status": "reused", "of": of, "ratings_changed": changed}
    return (weights, report), None


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
