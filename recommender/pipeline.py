"""The one place that joins the database with the models.

Database ids (``paper_id``, ``user_id``) become matrix rows (``pidx``, ``uidx``)
here and nowhere else. Everything that shows papers to a person (the web feed,
its JSON twin, the Atom feed, the email digest, the CLI) calls
:func:`rank_for_person` or :func:`rank_papers_for_person`, which call the one
ranking function :func:`recommender.ranking.rank_for_user`.

Fitted models live under ``<data dir>/models/`` as *bundles*::

    models/bundles/b0003/paper_ids.npy   # pidx -> paper_id
    models/bundles/b0003/rec/...          # recommender.artifacts version folder
    models/CURRENT                        # "b0003"

A bundle is complete before ``CURRENT`` is replaced (``os.replace``), so a
reader never sees a half-written model. Loaded bundles are cached per process
and reloaded when ``CURRENT`` changes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import scipy.sparse as sp
from sqlite_utils import Database

from . import store
from .artifacts import load_recommender, save_recommender
from .config import Settings
from .model import Recommender, fit_recommender
from .ranking import Profile, rank_users
from .text import default_text_kind, paper_text

log = logging.getLogger(__name__)

KEEP_BUNDLES = 3
#: Below this many likes, the person's onboarding keywords join the profile.
KEYWORDS_UNTIL_LIKES = 3


@dataclass(frozen=True)
class FeedItem:
    """One paper as shown to one person."""

    paper_id: int
    title: str
    abstract: str
    url: str | None
    score: float
    reason: str
    because_paper_id: int | None
    terms: tuple[str, ...]
    rating: int | None
    dump_id: int | None
    dump_date: str | None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["terms"] = list(self.terms)
        return data


@dataclass
class Bundle:
    """A loaded model and the database ids of its rows."""

    name: str
    rec: Recommender
    paper_ids: np.ndarray  # pidx -> paper_id
    pidx_of: dict[int, int]

    @functools.cached_property
    def pidx_lookup(self) -> np.ndarray:
        """paper_id -> pidx as an array (-1: not in this model), for vectorised lookups."""
        lookup = np.full(self.max_paper_id + 1, -1, dtype=np.int64)
        lookup[self.paper_ids] = np.arange(len(self.paper_ids))
        return lookup

    @property
    def max_paper_id(self) -> int:
        return int(self.paper_ids.max()) if len(self.paper_ids) else 0


# -- fitting and storing models ---------------------------------------------------------------


def text_kind() -> str:
    """Text representation for the content model: :func:`.text.default_text_kind`."""
    return default_text_kind()


def refit(db: Database, settings: Settings, *, progress: bool = False) -> dict:
    """Fit every model from the papers and ratings in the database and publish a new bundle.

    Returns ``{"version", "papers", "people", "ratings", "seconds"}``.
    """
    started = time.perf_counter()
    papers = store.all_papers(db)
    if not papers:
        raise RuntimeError("no papers to fit on: ingest a dump first (paperfeed ingest PATH)")
    paper_ids = np.array([p[0] for p in papers], dtype=np.int64)
    pidx_of = {int(pid): i for i, pid in enumerate(paper_ids)}
    texts = [paper_text(title, abstract) for _, title, abstract in papers]
    ratings = [(u, pidx_of[p], v) for u, p, v in store.all_ratings(db) if p in pidx_of]
    user_rows = {u: i for i, u in enumerate(sorted({u for u, _, _ in ratings}))}
    user_items = sp.csr_matrix(
        (
            np.array([v for _, _, v in ratings], dtype=np.float32),
            (
                np.array([user_rows[u] for u, _, _ in ratings], dtype=np.int64),
                np.array([p for _, p, _ in ratings], dtype=np.int64),
            ),
        ),
        shape=(len(user_rows), len(papers)),
    )
    rec = fit_recommender(
        texts,
        user_items if user_items.nnz else None,
        text=text_kind(),
        cache_dir=settings.cache_dir,
        progress=progress,
    )
    name = _publish(settings.models_dir, rec, paper_ids)
    _cache.clear()
    report = {
        "version": name,
        "papers": len(papers),
        "people": len(user_rows),
        "ratings": len(ratings),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("refit: %s", report)
    return report


def _bundle_names(root: Path) -> list[str]:
    folder = root / "bundles"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"b\d{4,}", p.name))


def _publish(root: Path, rec: Recommender, paper_ids: np.ndarray) -> str:
    bundles = root / "bundles"
    bundles.mkdir(parents=True, exist_ok=True)
    existing = _bundle_names(root)
    number = int(existing[-1][1:]) + 1 if existing else 1
    name = f"b{number:04d}"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=bundles))
    np.save(staging / "paper_ids.npy", paper_ids, allow_pickle=False)
    save_recommender(rec, staging / "rec")
    os.replace(staging, bundles / name)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".CURRENT-")
    with os.fdopen(fd, "w") as handle:
        handle.write(name)
    os.replace(tmp, root / "CURRENT")
    for old in _bundle_names(root)[:-KEEP_BUNDLES]:
        shutil.rmtree(bundles / old, ignore_errors=True)
    return name


_versions: dict[Path, tuple[tuple[int, int, int], str | None]] = {}


def model_version(settings: Settings) -> str | None:
    """Name of the published bundle (e.g. ``"b0003"``), or None before the first fit.

    Asked on every ranking, so the pointer is read again only when its file changed:
    publishing replaces it (a new inode), which one ``stat`` sees.
    """
    pointer = settings.models_dir / "CURRENT"
    try:
        st = os.stat(pointer)
    except FileNotFoundError:
        return None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    known = _versions.get(pointer)
    if known is not None and known[0] == stamp:
        return known[1]
    name = pointer.read_text().strip() or None
    _versions[pointer] = (stamp, name)
    return name


_cache: dict[Path, Bundle] = {}
_fit_lock = threading.Lock()


def load_bundle(settings: Settings) -> Bundle | None:
    """The current bundle, loaded once per process and per version."""
    name = model_version(settings)
    if name is None:
        return None
    cached = _cache.get(settings.models_dir)
    if cached is not None and cached.name == name:
        return cached
    folder = settings.models_dir / "bundles" / name
    paper_ids = np.load(folder / "paper_ids.npy", allow_pickle=False)
    bundle = Bundle(
        name=name,
        rec=load_recommender(folder / "rec"),
        paper_ids=paper_ids,
        pidx_of={int(pid): i for i, pid in enumerate(paper_ids)},
    )
    _cache[settings.models_dir] = bundle
    return bundle


def ensure_model(db: Database, settings: Settings) -> Bundle | None:
    """The current bundle, refitted first if papers arrived since it was fitted.

    The scheduler refits after every ingest; this covers the moments between,
    and a fresh install. Returns None only when there are no papers at all.
    """
    bundle = load_bundle(settings)
    newest = store.max_paper_id(db)
    if newest == 0:
        return None
    if bundle is None or bundle.max_paper_id < newest:
        with _fit_lock:
            bundle = load_bundle(settings)
            if bundle is None or bundle.max_paper_id < newest:
                refit(db, settings)
                bundle = load_bundle(settings)
    return bundle


# -- ranking for a person ---------------------------------------------------------------------


def local_day(timezone: str | None, now: datetime | None = None) -> str:
    """The person's calendar day (YYYY-MM-DD) in their IANA time zone."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date().isoformat()


def _muted_filter(muted_json: str | None):
    try:
        words = [w.strip() for w in json.loads(muted_json or "[]") if str(w).strip()]
    except (TypeError, ValueError):
        words = []
    if not words:
        return None
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    return lambda paper: bool(pattern.search(f"{paper['title']}\n{paper['abstract']}"))


def rank_for_person(
    db: Database,
    settings: Settings,
    user_id: int,
    *,
    dump_id: int | None = None,
    limit: int = 20,
    offset: int = 0,
    include_seen: bool = False,
    min_score: float | None = None,
    now: datetime | None = None,
) -> list[FeedItem]:
    """Rank the papers first seen in ``dump_id`` (default: the newest dump) for one person.

    Excludes what the person rated and what they were shown on an earlier day
    (unless ``include_seen``; rated papers then follow the ranked ones), and
    papers matching their muted keywords (always).
    """
    dump_id = dump_id if dump_id is not None else _newest_dump_id(db)
    if dump_id is None:
        return []
    candidates = _dump_new_papers(db, dump_id)
    return rank_papers_for_person(
        db,
        settings,
        user_id,
        candidates,
        limit=limit,
        offset=offset,
        include_seen=include_seen,
        min_score=min_score,
        now=now,
    )


def rank_papers_for_person(
    db: Database,
    settings: Settings,
    user_id: int,
    paper_ids: Sequence[int],
    *,
    limit: int = 20,
    offset: int = 0,
    include_seen: bool = False,
    min_score: float | None = None,
    now: datetime | None = None,
) -> list[FeedItem]:
    """Rank an explicit set of papers for one person; see :func:`rank_for_person`."""
    request = RankRequest(user_id, paper_ids, limit, offset, include_seen, min_score)
    return rank_papers_for_people(db, settings, [request], now=now)[0]


@dataclass(frozen=True)
class RankRequest:
    """One person's ranking request for :func:`rank_papers_for_people`."""

    user_id: int
    paper_ids: Sequence[int]
    limit: int = 20
    offset: int = 0
    include_seen: bool = False
    min_score: float | None = None


def rank_papers_for_people(
    db: Database,
    settings: Settings,
    requests: Sequence[RankRequest],
    *,
    now: datetime | None = None,
    progress: bool = False,
) -> list[list[FeedItem]]:
    """Rank each request's papers for its person, everyone in one batch call of the ranker.

    The same rules as :func:`rank_for_person` apply per person: rated papers,
    papers shown on an earlier local day (unless ``include_seen``) and muted
    papers are left out; ``min_score`` drops the ranked papers below it. Every
    person's data is read with a few queries and every person is scored in
    blocks by :func:`recommender.ranking.rank_users`, so 10,000 people cost
    seconds, not minutes. Returns one list per request, in order.
    """
    if not requests:
        return []
    ids = sorted({r.user_id for r in requests})
    users = store.user_profile_fields_many(db, ids)
    for r in requests:
        if r.user_id not in users:
            raise LookupError(f"no user with id {r.user_id}")
    bundle = ensure_model(db, settings)
    if bundle is None:
        return [[] for _ in requests]
    ratings = store.rating_values_many(db, ids)
    days = {uid: local_day(users[uid]["timezone"], now) for uid in ids}
    hidden = store.shown_before_many(
        db,
        {r.user_id: days[r.user_id] for r in requests if not r.include_seen},
        requests[0].paper_ids if len(requests) == 1 else None,
    )
    # Requests often share one candidate list (a dump for everyone): filter each distinct
    # list once, then per person only where their own data touches it.
    distinct = {id(r.paper_ids): r.paper_ids for r in requests}
    wanted = np.unique(
        np.concatenate(
            [np.zeros(0, np.int64)] + [np.asarray(o, np.int64) for o in distinct.values()]
        )
    )
    # The bundle's papers were read from this database and papers are never deleted:
    # only ids the model does not know are looked up.
    lookup = bundle.pidx_lookup
    known = (wanted >= 0) & (wanted < len(lookup))
    known[known] = lookup[wanted[known]] >= 0
    existing = set(wanted[known].tolist()) | store.existing_paper_ids(db, wanted[~known].tolist())
    in_store = {
        key: list(own) if existing.issuperset(own) else [p for p in own if p in existing]
        for key, own in distinct.items()
    }
    mutes = {uid: _muted_filter(users[uid]["muted_keywords"]) for uid in ids}
    muted_papers: dict[tuple[int, int], bool] = {}
    # Paper rows (with abstracts) are read only where needed: muted-word checks and the
    # papers actually returned, not every candidate of the dump.
    papers: dict[int, dict] = {}

    def fetch(pids) -> None:
        missing = sorted({int(p) for p in pids} - papers.keys())
        if missing:
            papers.update(store.papers_by_ids(db, missing))

    muting = {id(r.paper_ids) for r in requests if mutes[r.user_id] is not None}
    if muting:
        fetch(p for key in muting for p in in_store[key])

    def is_muted(uid: int, pid: int) -> bool:
        key = (uid, pid)
        if key not in muted_papers:
            muted_papers[key] = mutes[uid](papers[pid])
        return muted_papers[key]

    visible, unrated, profiles, wants = [], [], [], []
    for r in requests:
        uid = r.user_id
        rated, gone = ratings[uid], hidden.get(uid, set())
        seen_ok = in_store[id(r.paper_ids)]
        if gone and not gone.isdisjoint(seen_ok):
            seen_ok = [pid for pid in seen_ok if pid not in gone]
        if mutes[uid] is not None:
            seen_ok = [pid for pid in seen_ok if not is_muted(uid, pid)]
        visible.append(seen_ok)
        unrated.append(
            seen_ok
            if rated.keys().isdisjoint(seen_ok)
            else [pid for pid in seen_ok if pid not in rated]
        )
        liked = [bundle.pidx_of[p] for p, v in rated.items() if v > 0 and p in bundle.pidx_of]
        disliked = [bundle.pidx_of[p] for p, v in rated.items() if v < 0 and p in bundle.pidx_of]
        keywords = (users[uid]["keywords"] or "").strip()
        profiles.append(
            Profile(
                liked=np.asarray(liked, dtype=np.int64),
                disliked=np.asarray(disliked, dtype=np.int64),
                query=keywords if keywords and len(liked) < KEYWORDS_UNTIL_LIKES else None,
            )
        )
        wants.append(r.offset + r.limit)
    # One candidate pool for the batch; each person's pool is theirs, the rest excluded.
    as_rows: dict[int, tuple[list, np.ndarray]] = {}  # id(list) -> (the list, its pidx)
    for own in unrated:
        if id(own) not in as_rows:
            pids = np.asarray(own, dtype=np.int64)
            rows = lookup[np.clip(pids, 0, len(lookup) - 1)]
            as_rows[id(own)] = (own, rows[(rows >= 0) & (pids < len(lookup))])
    pool = np.unique(np.concatenate([np.zeros(0, np.int64)] + [a for _, a in as_rows.values()]))
    for i, own in enumerate(unrated):
        mine = as_rows[id(own)][1]
        if len(mine) < len(pool):
            profiles[i].exclude = np.setdiff1d(pool, mine, assume_unique=True)
    if not len(pool):
        ranked_all: list[list] = [[] for _ in requests]
    elif len(requests) == 1:
        ranked_all = [_rank_one_cached(bundle, profiles[0], pool, wants[0], requests[0].paper_ids)]
    else:
        ranked_all = rank_users(
            bundle.rec, profiles, candidates=pool, n=max(wants), progress=progress
        )
    needed: set[int] = set()
    for r, ranked, seen_ok, fresh in zip(requests, ranked_all, visible, unrated, strict=True):
        top = r.offset + r.limit
        for x in ranked[:top]:
            needed.add(int(bundle.paper_ids[x.pidx]))
            if x.because_pidx is not None:
                needed.add(int(bundle.paper_ids[x.because_pidx]))
        if not ranked:
            needed.update(fresh[:top])
        if r.include_seen:
            needed.update(pid for pid in seen_ok if pid in ratings[r.user_id])
    fetch(needed)
    titles = papers
    results = []
    for r, ranked, seen_ok, fresh in zip(requests, ranked_all, visible, unrated, strict=True):
        rated = ratings[r.user_id]
        items: list[FeedItem] = []
        if ranked:
            for x in ranked[: r.offset + r.limit]:
                if r.min_score is not None and x.score < r.min_score:
                    continue
                pid = int(bundle.paper_ids[x.pidx])
                if pid not in papers:  # deleted by hand since the model was fitted
                    continue
                because = (
                    int(bundle.paper_ids[x.because_pidx]) if x.because_pidx is not None else None
                )
                items.append(
                    _item(papers[pid], x.score, _reason(x, because, titles), because, x.terms, None)
                )
        else:
            # Nothing to go on yet (no likes, no keywords): the papers in page order.
            items = [
                _item(papers[pid], 0.0, "new in this dump", None, (), None)
                for pid in fresh[: r.offset + r.limit]
            ]
        if r.include_seen:
            items += [
                _item(papers[pid], 0.0, "you rated this", None, (), rated[pid])
                for pid in seen_ok
                if pid in rated
            ]
        results.append(items[r.offset : r.offset + r.limit])
    return results


#: Rankings of single people kept per process, keyed by everything the ranking depends on.
RANK_CACHE_SIZE = 512
_rank_cache: OrderedDict[tuple, list] = OrderedDict()
_rank_cache_lock = threading.Lock()


def _rank_one_cached(
    bundle: Bundle, profile: Profile, pool: np.ndarray, n: int, asked: Sequence[int] = ()
) -> list:
    """One person's ranking, memoised on its complete input.

    ``asked`` is the request's whole candidate list (today's dump): it stays the same
    while the person rates its papers, so similarity rows are kept against it rather
    than against the pool (it changes nothing in the result, so it is not in the key).

    The key is the model version, the candidates, the person's likes, dislikes
    and keyword query, and ``n``: a like, an undo, a new dump, a refit or a
    muted word changes the key, so a stale ranking can never be served. What
    it saves is the recomputation when nothing changed: reloading the feed,
    paging back, the JSON twin, a feed reader polling the Atom feed.
    """
    liked = np.sort(np.asarray(profile.liked, dtype=np.int64))
    disliked = np.sort(np.asarray(profile.disliked, dtype=np.int64))
    key = (bundle.name, pool.tobytes(), liked.tobytes(), disliked.tobytes(), profile.query, n)
    with _rank_cache_lock:
        if key in _rank_cache:
            _rank_cache.move_to_end(key)
            return _rank_cache[key]
    profile = Profile(liked=liked, disliked=disliked, query=profile.query)
    whole = np.asarray(asked, dtype=np.int64)
    whole = bundle.pidx_lookup[whole[(whole >= 0) & (whole < len(bundle.pidx_lookup))]]
    universe = whole[whole >= 0]
    ranked = rank_users(bundle.rec, [profile], candidates=pool, n=n, universe=universe)[0]
    with _rank_cache_lock:
        _rank_cache[key] = ranked
        while len(_rank_cache) > RANK_CACHE_SIZE:
            _rank_cache.popitem(last=False)
    return ranked


def _reason(ranked, because: int | None, titles: dict[int, dict]) -> str:
    if because is not None and because in titles:
        title = titles[because]["title"]
        short = title if len(title) <= 80 else title[:77].rstrip() + "…"
        return f"because you liked “{short}”"
    if ranked.terms:
        return "matches: " + ", ".join(ranked.terms)
    return ranked.reason


def _item(paper: dict, score: float, reason: str, because, terms, rating) -> FeedItem:
    return FeedItem(
        paper_id=paper["id"],
        title=paper["title"],
        abstract=paper["abstract"],
        url=paper["url"],
        score=round(float(score), 4),
        reason=reason,
        because_paper_id=because,
        terms=tuple(terms),
        rating=rating,
        dump_id=paper["first_dump_id"],
        dump_date=paper["dump_date"],
    )


# -- feedback and impressions -----------------------------------------------------------------


def record_feedback(
    db: Database, user_id: int, paper_id: int, value: int | None, *, source: str = "web"
) -> None:
    """Like (+1), dislike (-1) or undo (None). Durable when this returns.

    No refit is needed: the next :func:`rank_for_person` solves the person's
    collaborative factors from their current ratings.
    """
    if value is None:
        store.delete_rating(db, user_id, paper_id)
    else:
        store.set_rating(db, user_id, paper_id, value, source=source)


def mark_shown(db: Database, user_id: int, paper_ids, *, channel: str, day: str) -> None:
    store.mark_shown(db, user_id, paper_ids, channel=channel, day=day)


def user_ratings(db: Database, user_id: int) -> list[dict]:
    return store.user_ratings(db, user_id)


# -- papers -----------------------------------------------------------------------------------


def similar_papers(db: Database, settings: Settings, paper_id: int, *, k: int = 10) -> list[dict]:
    """The ``k`` papers most similar in text to ``paper_id``: ``{"id", "title", "score"}``."""
    bundle = ensure_model(db, settings)
    if bundle is None or paper_id not in bundle.pidx_of:
        return []
    sims = bundle.rec.content.similarity(np.array([bundle.pidx_of[paper_id]]), None)[0]
    sims[bundle.pidx_of[paper_id]] = -np.inf
    top = np.argsort(-sims)[:k]
    papers = store.papers_by_ids(db, [int(bundle.paper_ids[i]) for i in top])
    return [
        {
            "id": int(bundle.paper_ids[i]),
            "title": papers[int(bundle.paper_ids[i])]["title"],
            "score": round(float(sims[i]), 4),
        }
        for i in top
        if int(bundle.paper_ids[i]) in papers and np.isfinite(sims[i])
    ]


_sample_cache: dict[tuple[str, int], list[int]] = {}


def onboarding_sample(db: Database, settings: Settings, *, k: int = 12) -> list[dict]:
    """One representative paper per topic cluster: a diverse first set to rate.

    k-means on the paper vectors; the paper nearest each centre stands for it.
    Cached per model version.
    """
    from sklearn.cluster import MiniBatchKMeans

    bundle = ensure_model(db, settings)
    if bundle is None:
        return []
    key = (bundle.name, k)
    if key not in _sample_cache:
        X = bundle.rec.item_vectors
        n_clusters = min(k, X.shape[0])
        km = MiniBatchKMeans(n_clusters=n_clusters, random_state=0, n_init=3).fit(X)
        centres = km.cluster_centers_
        sims = X @ centres.T
        sims = np.asarray(sims.toarray() if sp.issparse(sims) else sims)
        chosen: list[int] = []
        for c in np.argsort(-np.bincount(km.labels_, minlength=n_clusters)):
            members = np.flatnonzero(km.labels_ == c)
            if len(members):
                chosen.append(int(members[np.argmax(sims[members, c])]))
        _sample_cache[key] = [int(bundle.paper_ids[i]) for i in chosen]
    papers = store.papers_by_ids(db, _sample_cache[key])
    return [
        {"id": pid, "title": papers[pid]["title"], "abstract": papers[pid]["abstract"]}
        for pid in _sample_cache[key]
        if pid in papers
    ]


# -- batch: every person ----------------------------------------------------------------------


def rank_dump_for_everyone(
    db: Database,
    settings: Settings,
    dump_id: int | None = None,
    *,
    top_n: int = 50,
    progress: bool = False,
    batch: int = 5000,
) -> int:
    """Rank a dump's new papers for every person and store their top ``top_n``.

    Returns the number of people ranked. The same rules and ranking as the feed
    (:func:`rank_papers_for_people`), ``batch`` people at a time.
    """
    dump_id = dump_id if dump_id is not None else _newest_dump_id(db)
    bundle = ensure_model(db, settings) if dump_id is not None else None
    if bundle is None:
        return 0
    candidates = store.dump_new_paper_ids(db, dump_id)
    people = store.user_ids(db)
    rows = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(people), desc="ranking", unit="person")
    for start in range(0, len(people), batch):
        chunk = people[start : start + batch]
        requests = [RankRequest(u, candidates, limit=top_n) for u in chunk]
        for user_id, items in zip(
            chunk, rank_papers_for_people(db, settings, requests), strict=True
        ):
            rows += [
                (user_id, item.paper_id, rank, item.score, item.reason)
                for rank, item in enumerate(items, start=1)
            ]
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    store.store_feed_rankings(db, dump_id, rows, bundle.name)
    return len(people)


_dump_papers: OrderedDict[tuple, tuple[int, ...]] = OrderedDict()


def _dump_new_papers(db: Database, dump_id: int) -> tuple[int, ...]:
    """:func:`store.dump_new_paper_ids`, read once per process and dump.

    A dump is written in one transaction and never changes afterwards (papers keep
    their first dump and are never deleted), so the list is kept, keyed by the
    database file, the dump's id and its content hash; every feed load asks for it.
    """
    row = db.execute("SELECT content_hash FROM dumps WHERE id = ?", [dump_id]).fetchone()
    if row is None:
        return ()
    path = db.execute("PRAGMA database_list").fetchone()[2]
    key = (path, dump_id, row[0])
    with _rank_cache_lock:
        if key in _dump_papers:
            _dump_papers.move_to_end(key)
            return _dump_papers[key]
    papers = tuple(store.dump_new_paper_ids(db, dump_id))  # shared: immutable
    with _rank_cache_lock:
        _dump_papers[key] = papers
        while len(_dump_papers) > 16:
            _dump_papers.popitem(last=False)
    return papers


def _newest_dump_id(db: Database) -> int | None:
    latest = store.latest_dump(db)
    return None if latest is None else latest["id"]
