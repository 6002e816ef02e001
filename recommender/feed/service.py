"""Serving: :class:`FeedService`, one per data directory, made by the web app factory,
the CLI or a digest run, and handed down. It loads the newest published bundle (never fits
one) and owns the bounded memos over it. Everything that shows papers to a person ranks
through it, and it calls the one ranking function :func:`recommender.ranking.rank_users`.
Database ids (``paper_id``, ``user_id``) become matrix rows (``pidx``, ``uidx``) here and in
:mod:`recommender.refit`, nowhere else.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from sqlite_utils import Database

from .. import reasons, store
from ..authors import followed_author
from ..bundles import Bundle, changed_on_disk, load_servable
from ..config import Settings
from ..muting import muted_filter
from ..ranking import CandidateIndex, Profile, best_sections, rank_users
from .items import FeedItem, followed_item, ranked_item, unranked_item
from .memo import Memo
from .query import (
    NEW_WINDOW_CAP_DAYS,
    FeedPage,
    FeedQuery,
    FeedSection,
    FeedWindow,
    local_day,
    window_bounds,
    window_papers,
)

log = logging.getLogger(__name__)

#: Below this many likes, the person's onboarding keywords join the profile.
KEYWORDS_UNTIL_LIKES = 3
#: Feed pages kept per service (a like, a new dump or a refit changes the key).
RANK_MEMO_SIZE = 512
#: Candidate indexes built on demand for days older than the served window.
INDEX_MEMO_SIZE = 4
#: A request searches neighbourhoods itself only for candidates the published index does
#: not cover (an older day someone opens, a search's hits), and only up to this many
#: (candidate x paper) similarities: 2,000 candidates of a 50,728-paper corpus, 0.7 s with
#: embeddings and ~2.4 s with TF-IDF (7 and 24 ns a similarity, measured on this machine).
#: Past it the window is ranked without searching: published neighbourhoods where there
#: are some, none (no kNN signal) for the rest, and the log says so. The work that grows
#: with the corpus is the publish's (:mod:`recommender.bundles`), never a request's.
REQUEST_SEARCH_CELLS = 100_000_000
#: Windows' paper lists kept (papers only arrive with dumps: a new dump changes the key).
WINDOW_MEMO_SIZE = 16


@dataclass(frozen=True)
class RankRequest:
    """One person's papers to rank, as :meth:`FeedService.feed` asks the ranking stages."""

    user_id: int
    #: the window's paper ids, in window order: one array per window (:meth:`FeedService.
    #: _windows`), shared by every request over it
    paper_ids: np.ndarray
    limit: int = 20
    offset: int = 0
    include_seen: bool = False
    min_score: float | None = None
    #: whose likes make the profile: None every like (one interest); :data:`DEFAULT_KEY`
    #: the likes filed under no named interest; else an interest's id. Dislikes always count.
    interest: int | None = None


#: :attr:`RankRequest.interest` of the default interest (likes filed under none).
DEFAULT_KEY = 0


@dataclass
class _Batch:
    """What the ranking stages know about their requests, stage by stage."""

    requests: Sequence[RankRequest]
    users: dict[int, dict]
    ratings: dict[int, dict[int, int]]
    visible: list[np.ndarray] = field(default_factory=list)  # ids: not hidden, not muted
    unrated: list[np.ndarray] = field(default_factory=list)  # ... and not rated: to rank
    papers: dict[int, dict] = field(default_factory=dict)  # rows read so far
    follows: dict[int, dict[str, str]] = field(default_factory=dict)  # user -> key -> name
    followed: list[dict[int, str]] = field(default_factory=list)  # per request: pid -> author
    filed: dict[int, dict[int, int]] = field(default_factory=dict)  # likes' named interests


class FeedService:
    """The serving state of one data directory: the published bundle and the memos over it.

    Made once per process by the web app factory (``app.extensions``), the CLI or a digest
    run, and handed to whatever ranks. It only reads what the scheduler published: when a
    refit publishes a new bundle, the next call sees ``CURRENT`` change (one ``stat``) and
    loads it; nothing here ever fits. Every memo is bounded, and its key holds the bundle's
    name and everything else its value depends on, so a stale value cannot be served.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        rank_memo_size: int = RANK_MEMO_SIZE,
        background_reload: bool = False,
        search_cells: int = REQUEST_SEARCH_CELLS,
    ):
        self.settings = settings
        self.search_cells = search_cells  # see REQUEST_SEARCH_CELLS
        self.background_reload = background_reload
        self._load_lock = threading.Lock()
        self._bundle: Bundle | None = None
        self._problem: str | None = None  # why the served bundle is not the newest
        self._stamp: tuple | None = None
        self._loading: tuple | None = None  # the stamp a background load is reading
        # The one memo of rankings: whole feed pages, keyed by (bundle, window, person's
        # fields, ratings and earlier impressions, local day, page).
        self.pages = Memo(rank_memo_size)
        self.indexes = Memo(INDEX_MEMO_SIZE)  # (bundle, candidates): on-demand neighbourhoods
        # windows' paper lists and the picker's days: (db file, newest dump, bounds)
        self.windows = Memo(WINDOW_MEMO_SIZE)

    # -- the bundle ---------------------------------------------------------------------------

    def bundle(self) -> Bundle | None:
        """The newest published bundle (loaded once per version), or None before the first.

        With ``background_reload`` (web workers), a bundle published while one is being
        served is loaded by a thread beside it and swapped in when complete: requests keep
        being answered by the old one meanwhile (a 50,000-paper bundle takes seconds to
        read), never by a half-loaded one. The first bundle, and every bundle for a
        digest run or the CLI, is loaded at once.
        """
        pointer = self.settings.models_dir / "CURRENT"
        try:
            st = os.stat(pointer)
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        current = self._bundle
        if stamp == self._stamp:
            return current
        if current is not None and self.background_reload:
            with self._load_lock:
                if self._loading is None:
                    self._loading = stamp
                    threading.Thread(
                        target=self._load, args=(stamp,), name="bundle-loader", daemon=True
                    ).start()
            return current
        with self._load_lock:
            if stamp != self._stamp:
                self._bundle, self._problem = load_servable(self.settings.models_dir)
                self._stamp = stamp
            return self._bundle

    def _load(self, stamp: tuple) -> None:
        try:
            bundle, problem = load_servable(self.settings.models_dir)
        except Exception:  # the next request tries again; the old bundle keeps serving
            log.exception("loading the published bundle failed; still serving the old one")
            bundle = problem = None
        with self._load_lock:
            if bundle is not None:
                self._bundle, self._problem, self._stamp = bundle, problem, stamp
            elif problem is not None:  # nothing on disk verifies: keep serving what we hold
                self._problem, self._stamp = problem, stamp
            self._loading = None

    def status(self, db: Database) -> dict:
        """How the served model stands against the database (``/healthz``)."""
        bundle = self.bundle()
        newest = store.max_paper_id(db)
        problem = self._problem
        if bundle is None:
            return {
                "model_version": None,
                "papers_behind": store.count_papers(db),
                **({"model_problem": problem} if problem else {}),
            }
        problem = problem or changed_on_disk(self.settings.models_dir, bundle)
        return {
            "model_version": bundle.name,
            **({"model_problem": problem} if problem else {}),
            "fitted_at": bundle.info.get("fitted_at"),
            "text_model": bundle.info.get("text_model"),
            "papers_in_model": len(bundle.paper_ids),
            "papers_behind": store.count_papers_after(db, bundle.max_paper_id)
            if newest > bundle.max_paper_id
            else 0,
            "served_papers": bundle.info.get("served_papers"),
            "tuning": bundle.info.get("tuning"),
        }

    # -- ranking ------------------------------------------------------------------------------

    def feed(self, db: Database, query: FeedQuery, *, now: datetime | None = None) -> FeedPage:
        """The page of one person's feed that ``query`` asks for: its window's papers ranked
        for them. Every reader of a feed (the page, its JSON twin, the Atom feed, the re-rank
        after a rating, search) calls this; a page is memoised on everything it depends on,
        read in two cheap queries, so reloading costs the same whatever the candidates."""
        user = store.user_profile_fields(db, query.user_id)
        if user is None:
            raise LookupError(f"no user with id {query.user_id}")
        chosen, ids = self._windows(db, [query], {query.user_id: user}, now)[0]
        bundle = self.bundle()
        key = None
        if chosen.kind != "digest":  # a digest's window moves with the ledger: never kept
            day = local_day(user["timezone"], now)
            key = (
                bundle.name if bundle is not None else None,
                self._window_key(db, chosen, ids),
                tuple(user.items()),
                store.person_fingerprint(db, query.user_id, day),
                day,
                (
                    query.page,
                    query.page_size,
                    query.include_seen,
                    query.min_score,
                    query.interest,
                ),
            )
            page = self.pages.get(key)
            if page is not None:
                return page
        page = self._pages(db, [query], [(chosen, ids)], bundle, now, False)[0]
        if key is not None:
            self.pages.put(key, page)
        return page

    def feeds(
        self,
        db: Database,
        queries: Sequence[FeedQuery],
        *,
        now: datetime | None = None,
        progress: bool = False,
    ) -> list[FeedPage]:
        """:meth:`feed` for many people at once (a digest run): the same pages, everyone
        ranked in one batch call of the ranker, nothing memoised (each person once a run)."""
        if not queries:
            return []
        users = store.user_profile_fields_many(db, sorted({q.user_id for q in queries}))
        for q in queries:
            if q.user_id not in users:
                raise LookupError(f"no user with id {q.user_id}")
        chosen = self._windows(db, queries, users, now)
        return self._pages(db, queries, chosen, self.bundle(), now, progress)

    def _pages(
        self,
        db: Database,
        queries: Sequence[FeedQuery],
        chosen: list[tuple[FeedWindow, np.ndarray]],
        bundle: Bundle | None,
        now: datetime | None,
        progress: bool,
    ) -> list[FeedPage]:
        """Each query's page. A person with named interests gets each interest that has
        likes ranked on its own over the whole window (all in one batch call), each paper
        in its best section (:func:`~recommender.ranking.best_sections`), the sections taken
        in turn (each one's best, then each one's second, ...) so a page of 20 or a digest
        of 10 shares its room; or, with ``query.interest``, that interest alone."""
        named = store.interests_many(db, sorted({q.user_id for q in queries}))
        requests: list[RankRequest] = []
        plans: list[list[dict] | None] = []
        for q, (_, ids) in zip(queries, chosen, strict=True):
            interests = named[q.user_id]
            plan = None
            if interests and q.interest is None:
                keywords = bool((interests[0].get("keywords") or "").strip())
                plan = _ranked_interests(interests, keywords)
            plans.append(plan)
            common = {"include_seen": q.include_seen, "min_score": q.min_score}
            if plan is None:
                requests.append(
                    RankRequest(
                        q.user_id,
                        ids,
                        limit=q.page_size + 1,  # one more: is there a next page?
                        offset=(q.page - 1) * q.page_size,
                        interest=q.interest if interests else None,
                        **common,
                    )
                )
            else:
                whole = len(ids)
                requests += [
                    RankRequest(q.user_id, ids, whole, 0, interest=i["key"], **common) for i in plan
                ]
        ranked = iter(self._rank(db, requests, bundle, now, progress))
        days = self.days(db)
        pages = []
        for q, (w, _), plan in zip(queries, chosen, plans, strict=True):
            interests = tuple({k: i[k] for k in ("key", "name", "likes")} for i in named[q.user_id])
            if plan is None:
                items = next(ranked)
                pages.append(
                    FeedPage(q, w, tuple(items[: q.page_size]), len(items) > q.page_size, days)
                )
                pages[-1] = replace(pages[-1], interests=interests)
                continue
            placed = best_sections([next(ranked) for _ in plan], key=lambda x: x.paper_id)
            turns = [
                replace(items[n], section=i["name"])
                for n in range(max(map(len, placed), default=0))
                for i, items in zip(plan, placed, strict=True)
                if n < len(items)
            ]
            start = (q.page - 1) * q.page_size
            items = tuple(turns[start : start + q.page_size])
            sections = tuple(
                FeedSection(
                    i["key"],
                    i["name"],
                    tuple(x for x in items if x.section == i["name"]),
                    i["likes"],
                )
                for i in plan
            )
            pages.append(
                FeedPage(
                    q,
                    w,
                    items,
                    len(turns) > start + q.page_size,
                    days,
                    sections=sections,
                    interests=interests,
                )
            )
        return pages

    def _windows(
        self, db: Database, queries: Sequence[FeedQuery], users: dict, now: datetime | None
    ) -> list[tuple[FeedWindow, np.ndarray]]:
        """Each query's window with its papers (:func:`window_bounds`), and the papers' ids
        as one read-only array, the one every stage of the ranking reads (a window of
        50,000 papers is never converted again in the request). The dated windows' lists
        and arrays are kept, keyed by the database file, its newest dump (papers only
        arrive with dumps) and the bounds."""
        digests = {q.user_id: q.since for q in queries if q.window == "digest"}
        found = (
            store.digest_candidates(db, digests, dated_within=NEW_WINDOW_CAP_DAYS)
            if digests
            else {}
        )
        windows = []
        for q in queries:
            if q.window == "papers":
                window = FeedWindow("papers", tuple(q.papers))
                windows.append((window, _id_array(window.paper_ids)))
                continue
            if q.window == "digest":
                window = FeedWindow("digest", tuple(found[q.user_id]), since=q.since)
                windows.append((window, _id_array(window.paper_ids)))
                continue
            timezone = users[q.user_id]["timezone"]
            bounds = window_bounds(
                db, q.user_id, q.window, day=q.day, timezone=timezone, now=now, days=self.days(db)
            )
            key = self._window_key(db, bounds)
            papers = self.windows.get(key)
            if papers is None:
                listed = window_papers(db, bounds)
                papers = (listed, _id_array(listed))
                self.windows.put(key, papers)
            windows.append((replace(bounds, paper_ids=papers[0]), papers[1]))
        return windows

    @staticmethod
    def _window_key(db: Database, bounds: FeedWindow, ids: np.ndarray | None = None) -> tuple:
        """``ids``: the window's ids as :meth:`_windows` gave them (else read from it)."""
        path, newest = store.database_file(db), store.newest_dump_id(db)
        if bounds.kind == "papers":
            ids = _id_array(bounds.paper_ids) if ids is None else ids
            return (path, "papers", ids.tobytes())
        return (path, newest, bounds.kind, bounds.first_day, bounds.last_day, bounds.since)

    def _rank(
        self,
        db: Database,
        requests: Sequence[RankRequest],
        bundle: Bundle | None,
        now: datetime | None,
        progress: bool,
    ) -> list[list[FeedItem]]:
        """The stages, all over one bundle (a swap mid-request changes nothing)."""
        batch = self._people(db, requests)
        self._candidates(db, batch, bundle, now)
        if bundle is None:
            ranked_all: list[list] = [[] for _ in requests]
        else:
            profiles = self._profiles(bundle, batch)
            ranked_all = self._scores(bundle, batch, profiles, progress)
        return self._items(db, bundle, batch, ranked_all)

    def _people(self, db: Database, requests: Sequence[RankRequest]) -> _Batch:
        ids = sorted({r.user_id for r in requests})
        users = store.user_profile_fields_many(db, ids)
        for r in requests:
            if r.user_id not in users:
                raise LookupError(f"no user with id {r.user_id}")
        batch = _Batch(requests, users, store.rating_values_many(db, ids))
        batch.follows = store.follows_many(db, ids)
        if any(r.interest is not None for r in requests):
            batch.filed = store.like_interests_many(db, ids)
        return batch

    def _candidates(
        self, db: Database, batch: _Batch, bundle: Bundle | None, now: datetime | None
    ) -> None:
        """Each request's papers that exist, minus what its person saw before or muted
        (``visible``), minus what they rated (``unrated``)."""
        requests, users = batch.requests, batch.users
        days = {uid: local_day(users[uid]["timezone"], now) for uid in users}
        hidden = store.shown_before_many(
            db,
            {r.user_id: days[r.user_id] for r in requests if not r.include_seen},
            requests[0].paper_ids if len(requests) == 1 else None,
        )
        # Requests often share one candidate list (a dump for everyone): check each distinct
        # list once against the store. The model's papers were read from this database, so
        # only ids it does not know are looked up (one deleted by hand since is skipped
        # when the rows are read).
        # (Arrays of ids throughout: a filter that removes nothing keeps the same array, so
        # requests over one window keep sharing it.)
        distinct = {id(r.paper_ids): r.paper_ids for r in requests}
        in_store = {}
        for key, ids in distinct.items():
            known = bundle.rows_of_mask(ids) if bundle is not None else np.zeros(len(ids), bool)
            if known.all():
                in_store[key] = ids
                continue
            found = store.existing_paper_ids(db, ids[~known].tolist())
            in_store[key] = ids[known | _among(ids, found)]
        mutes = {uid: muted_filter(users[uid]["muted_keywords"]) for uid in users}
        muting = {id(r.paper_ids) for r in requests if mutes[r.user_id] is not None}
        if muting:
            self._fetch(db, batch, (p for key in muting for p in in_store[key].tolist()))
        authors = self._authors(db, batch, in_store)
        for r in requests:
            rated, gone = batch.ratings[r.user_id], hidden.get(r.user_id, set())
            seen_ok = _without(in_store[id(r.paper_ids)], gone)
            followed = _followed(seen_ok, authors, batch.follows.get(r.user_id))
            if (mute := mutes[r.user_id]) is not None:
                passes = followed if users[r.user_id].get("follows_pass_muted") else {}
                shown = [p in passes or not mute(batch.papers[p]) for p in seen_ok.tolist()]
                seen_ok = seen_ok[np.array(shown, dtype=bool)]
                kept = set(seen_ok.tolist())
                followed = {p: a for p, a in followed.items() if p in kept}
            batch.followed.append({p: a for p, a in followed.items() if p not in rated})
            batch.visible.append(seen_ok)
            batch.unrated.append(_without(seen_ok, rated))

    @staticmethod
    def _authors(db: Database, batch: _Batch, in_store: dict) -> dict[int, list[str]]:
        """The author names of the candidates of people who follow anyone (none read
        for anyone else)."""
        lists = {id(r.paper_ids) for r in batch.requests if r.user_id in batch.follows}
        ids = sorted({p for key in lists for p in in_store[key].tolist()})
        return store.paper_authors(db, ids) if ids else {}

    def _profiles(self, bundle: Bundle, batch: _Batch) -> list[Profile]:
        """What the ranker knows of each person, in the bundle's rows."""
        profiles = []
        for r in batch.requests:
            rated = batch.ratings[r.user_id]
            likes = [p for p, v in rated.items() if v > 0]
            if r.interest is not None:  # one interest: its likes; dislikes count for all
                filed = batch.filed.get(r.user_id, {})
                likes = [p for p in likes if filed.get(p, DEFAULT_KEY) == r.interest]
            liked = bundle.rows_of(likes)
            disliked = bundle.rows_of([p for p, v in rated.items() if v < 0])
            keywords = (batch.users[r.user_id]["keywords"] or "").strip()
            if r.interest not in (None, DEFAULT_KEY):  # onboarding topics: the default's
                keywords = ""
            profiles.append(
                Profile(
                    liked=np.sort(liked),
                    disliked=np.sort(disliked),
                    query=keywords if keywords and len(liked) < KEYWORDS_UNTIL_LIKES else None,
                )
            )
        return profiles

    def _scores(
        self, bundle: Bundle, batch: _Batch, profiles: list[Profile], progress: bool
    ) -> list[list]:
        """Each person's ranked rows: one batch call of the ranker over a shared pool (each
        person's own candidates, the rest excluded), or the memo for a single person."""
        requests = batch.requests
        rows_of: dict[int, np.ndarray] = {}  # id(list) -> its pidx
        for own in batch.unrated:
            if id(own) not in rows_of:
                rows_of[id(own)] = bundle.rows_of(own)
        pool = _unique(np.concatenate([np.zeros(0, np.int64), *rows_of.values()]))
        if not len(pool):
            return [[] for _ in requests]
        wants = [r.offset + r.limit for r in requests]
        if len(requests) == 1:
            whole = bundle.rows_of(requests[0].paper_ids)  # the dump, rated papers included
            return [self._rank_one(bundle, profiles[0], pool, wants[0], whole)]
        for profile, own in zip(profiles, batch.unrated, strict=True):
            mine = rows_of[id(own)]
            if len(mine) < len(pool):
                profile.exclude = np.setdiff1d(pool, mine, assume_unique=True)
        return rank_users(
            bundle.rec,
            profiles,
            candidates=pool,
            n=max(wants),
            progress=progress,
            index=self._index(bundle, pool),
        )

    def _rank_one(
        self, bundle: Bundle, profile: Profile, pool: np.ndarray, n: int, whole: np.ndarray
    ) -> list:
        """One person's ranking, over the neighbourhoods of their whole window (rated
        papers included), so that a like does not move the index a page is ranked with."""
        index = self._index(bundle, whole if len(whole) else pool)
        return rank_users(bundle.rec, [profile], candidates=pool, n=n, index=index)[0]

    def _index(self, bundle: Bundle, candidates: np.ndarray) -> CandidateIndex:
        """The published neighbourhoods if they cover ``candidates`` (the served days), else
        ones built for them now and kept (an older dump someone is browsing), as long as
        that search stays within :attr:`search_cells`; past it, the published ones where
        there are some and none for the rest (:meth:`CandidateIndex.published_part`)."""
        if bundle.index.covers(candidates):
            return bundle.index
        cand = _unique(candidates)
        key = (bundle.name, cand.tobytes())
        index = self.indexes.get(key)
        if index is None:
            if len(cand) * bundle.rec.n_items <= self.search_cells:
                index = CandidateIndex.build(bundle.rec, cand)
            else:
                index = CandidateIndex.published_part(bundle.rec, cand, bundle.index)
                log.warning(
                    "ranking %d candidates without searching the neighbourhoods of the %d "
                    "the published model does not index (%d papers: past a request's "
                    "search budget of %d similarities)",
                    len(cand),
                    int((bundle.index.positions(cand) < 0).sum()),
                    bundle.rec.n_items,
                    self.search_cells,
                )
            self.indexes.put(key, index)
        return index

    def _items(
        self, db: Database, bundle: Bundle | None, batch: _Batch, ranked_all: list[list]
    ) -> list[list[FeedItem]]:
        """Ranked rows to :class:`FeedItem` s: ranked papers, then papers newer than the
        model, then (``include_seen``) the rated ones."""
        needed: set[int] = set()
        fresh_of = []
        for r, ranked, seen_ok, unrated, followed in zip(
            batch.requests, ranked_all, batch.visible, batch.unrated, batch.followed, strict=True
        ):
            top = r.offset + r.limit
            needed.update(followed)
            for x in ranked[:top]:
                needed.add(int(bundle.paper_ids[x.pidx]))
                if x.because_pidx is not None:
                    needed.add(int(bundle.paper_ids[x.because_pidx]))
            # not ranked: newer than the model, or nothing to rank on yet (page order)
            room = max(top - len(ranked), 0)
            if not ranked or bundle is None:
                fresh = unrated[:room].tolist()
            elif room:
                fresh = unrated[~bundle.rows_of_mask(unrated)][:room].tolist()
            else:
                fresh = []
            fresh_of.append(fresh)
            needed.update(fresh_of[-1])
            if r.include_seen:
                needed.update(pid for pid in seen_ok.tolist() if pid in batch.ratings[r.user_id])
        self._fetch(db, batch, needed)
        if missing := needed - batch.papers.keys():  # a liked library paper named as a reason
            batch.papers.update(store.library_titles(db, sorted(missing)))
        papers = batch.papers
        results = []
        for r, ranked, seen_ok, fresh, followed in zip(
            batch.requests, ranked_all, batch.visible, fresh_of, batch.followed, strict=True
        ):
            rated = batch.ratings[r.user_id]
            # a followed author's paper tops its day, whatever its score
            items = [followed_item(papers[p], a) for p, a in followed.items() if p in papers]
            for x in ranked[: r.offset + r.limit]:
                pid = int(bundle.paper_ids[x.pidx])
                if pid in followed:
                    continue
                if r.min_score is not None and x.score < r.min_score:
                    continue
                if pid not in papers:  # deleted by hand since the model was fitted
                    continue
                because = (
                    int(bundle.paper_ids[x.because_pidx]) if x.because_pidx is not None else None
                )
                if because is not None and because not in papers:
                    because = None
                items.append(ranked_item(papers[pid], x, because, papers, None))
            why = reasons.NEW_SINCE_MODEL if ranked else reasons.NEW_IN_DUMP
            items += [unranked_item(papers[pid], why, None) for pid in fresh if pid not in followed]
            if r.include_seen:
                items += [
                    unranked_item(papers[pid], reasons.RATED, rated[pid])
                    for pid in seen_ok.tolist()
                    if pid in rated
                ]
            results.append(items[r.offset : r.offset + r.limit])
        return results

    @staticmethod
    def _fetch(db: Database, batch: _Batch, pids) -> None:
        """Read paper rows (with abstracts) only where needed: muted-word checks and the
        papers actually returned, not every candidate of the dump."""
        missing = sorted({int(p) for p in pids} - batch.papers.keys())
        if missing:
            batch.papers.update(store.papers_by_ids(db, missing))

    # -- papers -------------------------------------------------------------------------------

    def similar_papers(self, db: Database, paper_id: int, *, k: int = 10) -> list[dict]:
        """The ``k`` papers most similar in text to ``paper_id``: ``{"id", "title", "score"}``.

        ``score`` is the cosine similarity of the two papers' text vectors (1 = same text).
        """
        bundle = self.bundle()
        row = bundle.pidx(paper_id) if bundle is not None else None
        if row is None:
            return []
        sims = bundle.rec.content.similarity(np.array([row]), None)[0]
        sims[row] = -np.inf
        top = np.argsort(-sims, kind="stable")[:k]
        ids = [int(bundle.paper_ids[i]) for i in top]
        papers = store.papers_by_ids(db, ids)
        return [
            {"id": pid, "title": papers[pid]["title"], "score": round(float(sims[i]), 4)}
            for i, pid in zip(top, ids, strict=True)
            if pid in papers and np.isfinite(sims[i])
        ]

    def onboarding_sample(self, db: Database, *, k: int = 12) -> list[dict]:
        """One representative paper per topic cluster (computed at publish): a diverse first
        set to rate, ``{"id", "title", "abstract"}``, largest cluster first."""
        bundle = self.bundle()
        if bundle is None:
            return []
        ids = [int(p) for p in bundle.onboarding[:k]]
        papers = store.papers_by_ids(db, ids)
        return [
            {"id": pid, "title": papers[pid]["title"], "abstract": papers[pid]["abstract"]}
            for pid in ids
            if pid in papers
        ]

    def days(self, db: Database) -> tuple[dict, ...]:
        """:func:`store.list_days`, read once per set of dumps (keyed like the windows:
        the database file and its newest dump; papers only arrive with dumps)."""
        key = ("days", *self._window_key(db, FeedWindow("days", ()))[:2])
        days = self.windows.get(key)
        if days is None:
            days = tuple(store.list_days(db))
            self.windows.put(key, days)
        return days


def _id_array(paper_ids: Sequence[int]) -> np.ndarray:
    """A window's paper ids as the read-only int64 array the ranking stages share."""
    ids = np.array(paper_ids, dtype=np.int64).reshape(-1)
    ids.flags.writeable = False
    return ids


def _among(ids: np.ndarray, values) -> np.ndarray:
    """A boolean per id: is it one of ``values`` (a set of ids, a dict's keys)?"""
    chosen = np.sort(np.fromiter(values, np.int64, len(values)))
    if not len(chosen) or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(chosen, ids), len(chosen) - 1)
    return chosen[at] == ids


def _without(ids: np.ndarray, values) -> np.ndarray:
    """``ids`` without ``values``, in order; ``ids`` itself when none of them is there."""
    if not len(values):
        return ids
    drop = _among(ids, values)
    return ids[~drop] if drop.any() else ids


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted unique values (``np.unique``'s answer; sorting is ~8x faster here than its
    hash-based path for 50,000 ids)."""
    values = np.sort(np.asarray(values, dtype=np.int64))
    if len(values) < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def _followed(
    paper_ids: np.ndarray, authors: dict[int, list[str]], follows: dict[str, str] | None
) -> dict[int, str]:
    """``{paper_id: the followed author as the paper names them}`` among ``paper_ids``."""
    if not follows:
        return {}
    found = {}
    for pid in paper_ids.tolist():
        name = followed_author(authors.get(pid, ()), follows)
        if name is not None:
            found[pid] = name
    return found


def _ranked_interests(interests: Sequence[dict], keywords: bool) -> list[dict]:
    """The interests that get a section: those with likes (the default one also on its
    onboarding topics), or the first alone when none has anything to rank on."""
    ranked = [i for i in interests if i["likes"] or (i["key"] == DEFAULT_KEY and keywords)]
    return ranked or list(interests[:1])
