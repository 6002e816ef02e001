"""The signals of the one feature path: each person's z-scored signals over the candidates.

Serving (:mod:`recommender.ranking`) and fit-time self-tuning (:mod:`recommender.tuning`)
both compute features here, so weights are learned on exactly the features that are served;
this module never imports the ranking or the fitting code (no cycle: fitting calls tuning,
tuning calls these functions, ranking calls them too).

Every signal answers the same question in the same shape, ``(people x candidates)`` float32,
z-scored over each person's own candidates (:data:`recommender.weights.FEATURES`):

- ``taste``: the person's own linear model (:mod:`recommender.taste`);
- ``knn``: similarity to their likes among each candidate's published neighbours;
- ``centroid``: mean similarity to their likes (and keyword topics);
- ``collab``: collaborative factors (:mod:`recommender.collab`), bridged for new papers;
- ``popularity``: log(1 + likes) of the candidate, the same for everyone.

Everything works on matrix rows (``pidx``), never database ids.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from recommender.content import zscore
from recommender.neighbourhoods import NeighbourRows
from recommender.quantized import WIDEN_ROWS, Int8Rows, rows_times

if TYPE_CHECKING:
    from recommender.model import Recommender


@dataclass
class Profile:
    """What the ranker knows about one person (all indices are ``pidx``).

    ``exclude`` holds papers never to show again: rated, already shown, muted.
    ``uidx`` selects stored collaborative factors; without it they are solved from ``liked``.
    ``query`` is a keyword query (onboarding) used alongside or instead of likes.
    """

    liked: Sequence[int] | np.ndarray = ()
    disliked: Sequence[int] | np.ndarray = ()
    exclude: Iterable[int] = ()
    uidx: int | None = None
    query: str | None = None


def zscore_rows(scores: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Z-score each row (one person) of ``scores``; constant rows become zeros.

    Row by row the same as :func:`recommender.content.zscore`. With ``keep``
    (a boolean mask of the same shape), each row's mean and spread come from its
    kept entries only, so a person ranked in a batch over a shared candidate pool
    gets the same scores as when ranked alone over their own candidates.
    """
    scores = np.asarray(scores, dtype=np.float32)
    # One formula whether or not anything is masked, so that a row's result never
    # depends on the other rows of its block (bit-for-bit, not just approximately).
    if keep is None:
        keep = np.ones(scores.shape, dtype=bool)
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1).astype(np.float32)
    mean = np.where(keep, scores, 0).sum(axis=1, keepdims=True) / count
    centred = np.where(keep, scores - mean, 0)
    std = np.sqrt((centred * centred).sum(axis=1, keepdims=True) / count)
    ok = np.isfinite(std) & (std >= 1e-12)
    out = (scores - mean) / np.where(ok, std, np.float32(1))
    out[~ok[:, 0]] = 0
    return out.astype(np.float32, copy=False)


@dataclass
class CandidateIndex:
    """What everyone ranked against one candidate set shares: each candidate's neighbourhood.

    ``neighbours_t`` is ``(n_items, n_candidates)``: entry ``(j, c)`` is the similarity of
    paper ``j`` to candidate ``c`` when ``j`` is among ``c``'s ``k`` nearest other papers
    (the kNN signal's neighbourhood), else absent. Stored by paper row, so a person's kNN
    signal is the sum of their liked papers' rows: the cost grows with their likes, not
    with the corpus (:class:`~recommender.neighbourhoods.NeighbourRows`: narrow indices,
    rows widened as they are read). Built once per published bundle for the papers people
    are shown (:mod:`recommender.bundles`, by the scheduler), or on the fly for any other set.
    """

    candidates: np.ndarray  # sorted, unique pidx
    neighbours_t: NeighbourRows  # a scipy matrix given here is stored narrow
    # Derived from the model when the index is made (at load, never per request): the
    # candidates' text vectors and collaborative factors; views of the bundle's mapped
    # arrays when the candidates are consecutive rows (the served papers), so every
    # worker shares one copy.
    vectors: sp.csr_matrix | np.ndarray | None = None  # (n_candidates, dim)
    factors: np.ndarray | None = None  # (n_candidates, factors) float32
    #: Each candidate's neighbour floor as published, or from the search's full-precision
    #: similarities (None: computed on first use).
    stored_floor: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.neighbours_t, NeighbourRows):  # a search's: full precision
            if self.stored_floor is None:  # before NeighbourRows rounds the similarities
                self.stored_floor = _column_floor(self.neighbours_t)
            self.neighbours_t = NeighbourRows.of(self.neighbours_t)

    @classmethod
    def build(
        cls,
        rec: Recommender,
        candidates: Sequence[int] | np.ndarray,
        *,
        progress: bool = False,
        threads: int = 1,
    ) -> CandidateIndex:
        """Search each candidate's neighbourhood (the per-corpus work done at publish), in
        ``threads`` threads (the same result as one)."""
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        index, sims = rec.content.neighbours(cand, progress=progress, threads=threads)
        return cls.for_model(rec, cand, _neighbours_matrix(rec.n_items, index, sims))

    @classmethod
    def extend(
        cls,
        rec: Recommender,
        candidates: Sequence[int] | np.ndarray,
        previous: PreviousNeighbours,
        *,
        progress: bool = False,
        threads: int = 1,
    ) -> tuple[CandidateIndex, dict]:
        """:meth:`build`, reusing the neighbourhoods of a previous publish whose papers are
        the first ``previous.n_items`` of ``rec`` with the same vectors: a candidate searched
        then only meets the papers added since (:meth:`ContentModel.merge_neighbours`); a new
        candidate is searched against every paper. Same result as :meth:`build` (up to ties
        at the ``k``-th similarity). Returns the index and how many of each kind there were."""
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        k = max(min(rec.content.k, rec.n_items - 1), 0)
        M = previous.neighbours_t.tocsc()
        M.sort_indices()
        at = np.searchsorted(previous.candidates, cand)
        at = np.minimum(at, max(len(previous.candidates) - 1, 0))
        kept = (
            (previous.candidates[at] == cand) & (np.diff(M.indptr)[at] == k)
            if len(previous.candidates) and k
            else np.zeros(len(cand), bool)
        )
        index = np.zeros((len(cand), k), np.int32)
        sims = np.zeros((len(cand), k), np.float32)
        if kept.any():
            cols = at[kept]
            take = M.indptr[cols][:, None] + np.arange(k)[None, :]
            old_index, old_sims = M.indices[take], M.data[take].astype(np.float32)
            new_items = np.arange(previous.n_items, rec.n_items)
            index[kept], sims[kept] = rec.content.merge_neighbours(
                cand[kept], old_index, old_sims, new_items
            )
        if (~kept).any():
            index[~kept], sims[~kept] = rec.content.neighbours(
                cand[~kept], progress=progress, threads=threads
            )
        counts = {"kept": int(kept.sum()), "searched": int((~kept).sum())}
        floor = None  # computed from the merged lists by __post_init__
        if previous.floor is not None and k:
            # A kept list no new paper entered keeps its published floor: the search's
            # full-precision k-th similarity, where its stored values are float16.
            floor = sims.min(axis=1)
            same = kept.copy()
            same[kept] = (index[kept] < previous.n_items).all(axis=1)
            floor[same] = np.asarray(previous.floor, dtype=np.float32)[at[same]]
        M_new = _neighbours_matrix(rec.n_items, index, sims)
        return cls.for_model(rec, cand, M_new, floor=floor), counts

    @classmethod
    def published_part(
        cls, rec: Recommender, candidates: Sequence[int] | np.ndarray, published: CandidateIndex
    ) -> CandidateIndex:
        """An index of ``candidates`` that searches nothing: the neighbourhoods (and floors)
        ``published`` holds for those it covers, none for the others (no kNN signal, no
        dislike demotion: they are ranked on their other signals)."""
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        at = published.positions(cand)
        have = np.flatnonzero(at >= 0)
        floor = np.zeros(len(cand), np.float32)
        M = sp.csr_matrix((rec.n_items, len(cand)), dtype=np.float32)
        if len(have):
            floor[have] = np.asarray(published.floor, dtype=np.float32)[at[have]]
            # the covered candidates' published columns, every stored entry as it is
            # (a similarity of 0 included), the others' columns empty
            C = published.neighbours_t.tocsc()
            starts, stops = C.indptr[at[have]], C.indptr[at[have] + 1]
            lens = np.zeros(len(cand), np.int64)
            lens[have] = stops - starts
            indptr = np.concatenate([[0], np.cumsum(lens)])
            take = np.repeat(starts - indptr[have], stops - starts) + np.arange(indptr[-1])
            M = sp.csc_matrix(
                (C.data[take], C.indices[take], indptr), shape=(rec.n_items, len(cand))
            ).tocsr()
        return cls.for_model(rec, cand, M, floor=floor)

    @classmethod
    def for_model(
        cls,
        rec: Recommender,
        candidates: np.ndarray,
        neighbours_t: sp.csr_matrix | NeighbourRows,
        floor: np.ndarray | None = None,
    ) -> CandidateIndex:
        """An index from stored neighbourhoods, with the model's arrays for its candidates
        (``floor``: the neighbour floors published with them, if any)."""
        cand = np.asarray(candidates, dtype=np.int64)
        consecutive = len(cand) > 0 and cand[-1] - cand[0] + 1 == len(cand)

        def rows(X):
            # The served papers are the newest rows, in order: a view of the (memory-mapped)
            # array, shared by every worker, instead of a copy in each.
            if isinstance(X, Int8Rows):  # kept int8: products scale after summing
                return X.rows(int(cand[0]), int(cand[-1]) + 1) if consecutive else X.take(cand)
            return X[cand[0] : cand[-1] + 1] if consecutive else X[cand]

        X = rec.item_vectors
        if not sp.issparse(X):
            vectors = rows(X)
        elif consecutive:  # TF-IDF: the rows' part of the mapped data, indices and indptr
            vectors = _csr_rows(X, int(cand[0]), int(cand[-1]) + 1)
        else:  # products go candidates x terms (see _similarity_sums)
            vectors = sp.csr_matrix(X[cand], dtype=np.float32)
        factors = rows(rec.collab.item_factors_) if rec.collab is not None else None
        return cls(cand, neighbours_t, vectors=vectors, factors=factors, stored_floor=floor)

    @functools.cached_property
    def floor(self) -> np.ndarray:
        """Each candidate's neighbour floor: the least similarity in its neighbourhood
        (published with the bundle; computed here for a bundle published without)."""
        if self.stored_floor is not None:
            return self.stored_floor
        return _column_floor(self.neighbours_t)

    def positions(self, pidx: np.ndarray) -> np.ndarray:
        """Column of each paper in :attr:`neighbours_t` (-1: not indexed)."""
        pidx = np.asarray(pidx, dtype=np.int64)
        cand = self.candidates
        if not len(cand):
            return np.full(len(pidx), -1, dtype=np.int64)
        first, last = int(cand[0]), int(cand[-1])
        if last - first + 1 == len(cand):  # consecutive rows (the served papers): arithmetic
            at = pidx - first
            return np.where((pidx >= first) & (pidx <= last), at, -1)
        at = np.minimum(np.searchsorted(cand, pidx), len(cand) - 1)
        return np.where(cand[at] == pidx, at, -1)

    def covers(self, pidx: np.ndarray) -> bool:
        return bool((self.positions(pidx) >= 0).all())


def _column_floor(neighbours_t) -> np.ndarray:
    """The least entry of each column (0 for an empty one)."""
    M = neighbours_t.tocsc()
    floor = np.zeros(M.shape[1], np.float32)
    filled = np.diff(M.indptr) > 0
    if filled.any():
        starts = M.indptr[:-1][filled]
        floor[filled] = np.minimum.reduceat(M.data, starts)[: int(filled.sum())]
    return floor


def _csr_rows(X: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``start:stop`` of ``X`` sharing its data and indices (scipy's slicing copies
    them: a private copy of every served paper's TF-IDF row in each worker)."""
    X = sp.csr_matrix(X)
    a, b = int(X.indptr[start]), int(X.indptr[stop])
    rows = sp.csr_matrix((stop - start, X.shape[1]), dtype=X.dtype)
    # set, not passed to the constructor: its check copies a view under half its base
    rows.data, rows.indices = X.data[a:b], X.indices[a:b]
    rows.indptr = (X.indptr[start : stop + 1] - a).astype(X.indices.dtype)
    return rows


def _neighbours_matrix(n_items: int, index: np.ndarray, sims: np.ndarray) -> sp.csr_matrix:
    """(n_items, n_candidates): column c holds candidate c's neighbours and similarities."""
    k = index.shape[1] if index.ndim == 2 else 0
    cols = np.repeat(np.arange(index.shape[0], dtype=np.int64), k)
    return sp.csr_matrix(
        (sims.ravel().astype(np.float32), (index.ravel().astype(np.int64), cols)),
        shape=(n_items, index.shape[0]),
    )


@dataclass
class PreviousNeighbours:
    """The neighbourhoods a previous publish stored, for :meth:`CandidateIndex.extend`:
    valid only while its papers are the first ``n_items`` of the model with unchanged
    vectors (:func:`recommender.bundles.previous_neighbours` checks that)."""

    n_items: int
    candidates: np.ndarray  # sorted pidx
    neighbours_t: sp.csr_matrix | NeighbourRows  # (n_items, len(candidates))
    floor: np.ndarray | None = None  # each candidate's floor as published


@dataclass
class _Context:
    """Per-call precomputation shared by every person ranked against the same candidates."""

    candidates: np.ndarray
    at: np.ndarray | slice  # column of each candidate in the index's arrays
    index: CandidateIndex
    regime: str
    warm_share: float  # share of candidates with a rating: mixes the cold and warm weights
    popularity: np.ndarray  # (n_candidates,) z-scored log(1 + likes)
    pos_lookup: np.ndarray  # pidx -> position in candidates (-1: not a candidate)

    @property
    def floor(self) -> np.ndarray:
        """Each candidate's neighbour floor: its k-th nearest paper's similarity."""
        return self.index.floor[self.at]

    def rows(self, array) -> tuple:
        """``(rows, columns)``: what to multiply of one of the index's per-candidate arrays
        (``index.vectors``, ``index.factors``) and which columns of the product are this
        call's candidates. Most of the index: the whole array (a view of the mapped file)
        and the candidates' columns picked from the product; a few of it: their rows
        gathered (a product over the whole index would cost the corpus, not the call)."""
        if isinstance(self.at, slice) or 2 * len(self.at) >= len(self.index.candidates):
            return array, self.at
        if isinstance(array, Int8Rows):  # still int8: the same sums as over the whole
            return array.take(self.at), slice(None)
        return array[self.at], slice(None)


def context(
    rec: Recommender,
    profiles: Sequence[Profile],
    candidates: np.ndarray,
    index: CandidateIndex | None = None,
) -> _Context:
    """The shared part of a ranking call; ``index`` (precomputed at publish) if it covers
    ``candidates``, else one built for them now."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if index is None or not index.covers(candidates):
        index = CandidateIndex.build(rec, candidates)
    rated = float(rec.collab.rated_[candidates].mean()) if rec.collab is not None else 0.0
    likes = rec.collab.likes_[candidates] if rec.collab is not None else np.zeros(len(candidates))
    pos_lookup = np.full(rec.n_items, -1, dtype=np.int64)
    pos_lookup[candidates] = np.arange(len(candidates))
    at = index.positions(candidates)
    if len(at) == len(index.candidates) and np.array_equal(at, np.arange(len(at))):
        at = slice(None)  # the whole index, in order: no copies
    return _Context(
        candidates=candidates,
        at=at,
        index=index,
        regime="warm" if rated > 0.5 else "cold",
        warm_share=rated,
        popularity=zscore(np.log1p(np.asarray(likes, dtype=np.float32))),
        pos_lookup=pos_lookup,
    )


def _indicator(rows: list[np.ndarray], n_cols: int) -> sp.csr_matrix:
    """(len(rows), n_cols) float32 counts of ``rows[i]`` (duplicates count twice)."""
    lens = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    flat = np.concatenate([np.zeros(0, np.int64), *rows]) if len(rows) else np.zeros(0, np.int64)
    M = sp.csr_matrix(
        (np.ones(len(flat), np.float32), (np.repeat(np.arange(len(rows)), lens), flat)),
        shape=(len(rows), n_cols),
    )
    M.sum_duplicates()
    return M


#: People per dense product in :func:`_similarity_sums` (TF-IDF): bounds the dense
#: (terms x people) block, while a sparse-times-sparse product would walk every posting
#: of every profile term twice (counting, then multiplying).
DENSE_PROFILES = 32


#: Up to this many rows, :func:`_dense_products` and :func:`_sparse_products` multiply
#: each row on its own (a view: a person's few rows); above it, one matrix product.
SKINNY_ROWS = 8
#: Candidates per block of the row-by-row product: 1,024 x 384 float32 is 1.5 MB, which
#: stays in a core's cache while each row is multiplied with it.
SKINNY_BLOCK = 1024


def _similarity_sums(
    rec: Recommender, M: sp.csr_matrix, ctx: _Context, summed=None, dense=None
) -> np.ndarray:
    """(people x candidates) summed similarity of each person's papers (rows of ``M``) to
    every candidate: their summed vectors (``summed``, else ``M`` times the paper vectors)
    times the candidates' vectors. ``dense``: more rows (dim wide, e.g. the taste
    directions) whose products follow the people's (a sparse product accumulates each
    column on its own, so a column's sums are the same with or without the others, and
    one at a time or several at once)."""
    if summed is None:
        summed = rows_times(M, rec.item_vectors)  # (people x dim): sparse for TF-IDF
    if not sp.issparse(summed):
        return _dense_products(ctx, summed if dense is None else np.vstack([summed, dense]))
    vectors, columns = ctx.rows(ctx.index.vectors)
    extra = np.zeros((0, vectors.shape[1]), np.float32) if dense is None else dense
    n_rows = M.shape[0] + len(extra)
    out = np.empty((n_rows, vectors.shape[0]), np.float32)
    for start in range(0, M.shape[0], DENSE_PROFILES):
        stop = min(start + DENSE_PROFILES, M.shape[0])
        block = summed[start:stop].toarray().astype(np.float32)  # (people, terms)
        if start == 0 and len(extra):  # the extra rows go with the first block of people
            block = np.vstack([block, np.asarray(extra, dtype=np.float32)])
            product = _sparse_products(vectors, block)
            out[:stop], out[M.shape[0] :] = product[:stop], product[stop:]
        else:
            out[start:stop] = _sparse_products(vectors, block)
    out = out[:, columns]
    return np.asarray(out, dtype=np.float32).reshape(n_rows, len(ctx.candidates))


def _sparse_products(vectors: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """(rows x candidates): dense ``rows`` (terms wide) times the candidates' TF-IDF rows.
    A view's few rows go one at a time (scipy's one-vector kernel: 0.55x of the time of
    its several-vector kernel, which loops over the vectors inside every stored entry, on
    46,228 candidates' 7.8 M entries, alternated); both add each row's entries in the same
    order, so the sums are the same bits. Many rows (blocks of people) go in one product."""
    if len(rows) > SKINNY_ROWS:
        return np.asarray(vectors @ rows.T).T
    out = np.empty((len(rows), vectors.shape[0]), np.float32)
    for j, row in enumerate(rows):
        out[j] = vectors @ row
    return out


def _dense_products(ctx: _Context, rows: np.ndarray) -> np.ndarray:
    """(rows x candidates): dense ``rows`` (dim wide) times the candidates' vectors, so the
    candidates' vectors are read from memory once whatever asks (the summed likes and
    dislikes, the taste directions).

    One person's view has a few rows (three: likes, dislikes, taste). OpenBLAS's sgemm
    packs the whole candidates' matrix for a product that skinny and runs it at ~4 GFLOP/s
    (22 ms at 46,000 x 384); a matrix-vector product per row over a block of candidates that
    stays in cache reads the matrix once at memory speed (6 ms, ``bench/view_after_like.py``).
    Blocks of people (a digest, the evaluation) have many rows and go through sgemm."""
    vectors, columns = ctx.rows(ctx.index.vectors)
    rows = np.asarray(rows, dtype=np.float32)
    if isinstance(vectors, Int8Rows):
        out = _int8_products(vectors, rows)
    elif len(rows) > SKINNY_ROWS or sp.issparse(vectors):  # TF-IDF: a sparse product
        out = np.asarray(rows @ vectors.T)
    else:
        out = np.empty((len(rows), len(vectors)), np.float32)
        for start in range(0, len(vectors), SKINNY_BLOCK):
            block = vectors[start : start + SKINNY_BLOCK]
            for j, row in enumerate(rows):
                np.dot(block, row, out=out[j, start : start + len(block)])
    out = out[:, columns]
    return np.asarray(out, dtype=np.float32).reshape(len(rows), len(ctx.candidates))


def block_features(
    rec: Recommender, profiles: Sequence[Profile], ctx: _Context, keep: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """(people x candidates) z-scored signals (``FEATURES`` keys) for a block of people.

    The one feature path: feeds are ranked with it and fit-time tuning learns the blend
    weights through it (:mod:`recommender.tuning`).

    ``keep`` marks each person's own candidates (see :func:`zscore_rows`).
    """
    B, n_cand = len(profiles), len(ctx.candidates)
    liked = [np.asarray(p.liked, dtype=np.int64).ravel() for p in profiles]
    disliked = [np.asarray(p.disliked, dtype=np.int64).ravel() for p in profiles]
    n_liked = np.fromiter((len(x) for x in liked), np.int64, B)
    n_disliked = np.fromiter((len(x) for x in disliked), np.int64, B)
    L = _indicator(liked, rec.n_items)
    knn = np.zeros((B, n_cand), np.float32)
    if n_liked.any():
        near = ctx.index.neighbours_t.left_product(L).toarray()
        knn = np.asarray(near[:, ctx.at], dtype=np.float32)
    # centroid: mean similarity to the liked papers, a keyword query counting as one more;
    # the liked and the disliked papers' sums come from one pass over the candidates
    dis = n_disliked > 0
    D = _indicator([disliked[i] for i in np.flatnonzero(dis)], rec.n_items)
    summed = None
    # person -> (topics, dim) vectors of their keywords
    topics = {i: rec.topic_vectors(p.query) for i, p in enumerate(profiles) if p.query}
    if n_liked.any() or dis.any():
        LD = sp.vstack([L, D], format="csr")
        summed = rows_times(LD, rec.item_vectors)  # (people + dislikers, dim)
    directions, taste_plan = _taste_rows(rec, summed, topics, n_liked, n_disliked)
    if summed is not None and sp.issparse(summed):  # TF-IDF: one pass, as below
        products = _similarity_sums(rec, LD, ctx, summed, dense=directions)
        sums, taste_products = products[: LD.shape[0]], products[LD.shape[0] :]
    else:  # one pass over the candidates' vectors for the sums and the taste directions
        rows = directions if summed is None else np.vstack([summed, directions])
        products = _dense_products(ctx, rows)
        n_summed = 0 if summed is None else len(summed)
        sums = products[:n_summed] if summed is not None else np.zeros((B, n_cand), np.float32)
        taste_products = products[n_summed:]
    sum_liked, sum_disliked = sums[:B], sums[B:]
    n_centroid = n_liked.copy()
    for i, vectors in topics.items():
        sum_liked[i] += rec.topic_similarity(vectors, ctx.candidates).max(axis=1)
        n_centroid[i] += 1
    centroid = np.zeros((B, n_cand), np.float32)
    has = n_centroid > 0
    centroid[has] = sum_liked[has] / n_centroid[has, None].astype(np.float32)
    no_likes = n_liked == 0
    knn[no_likes] = centroid[no_likes]
    if n_disliked.any():
        # A dislike lowers both signals by the mean similarity to the disliked papers.
        penalty = np.float32(rec.content.dislike_weight) * (
            sum_disliked / n_disliked[dis, None].astype(np.float32)
        )
        scale = np.maximum(1.0, np.sqrt(n_liked[dis].astype(np.float64))).astype(np.float32)
        centroid[dis] -= penalty
        knn[dis] -= penalty * scale[:, None]
    feats = {
        "taste": zscore_rows(_taste_scores(taste_plan, taste_products, B, n_cand), keep),
        "knn": zscore_rows(knn, keep),
        "centroid": zscore_rows(centroid, keep),
    }
    collab = np.zeros((B, n_cand), np.float32)
    if rec.collab is not None:
        stored = len(rec.collab.user_factors_)
        U = np.zeros((B, rec.collab.factors), np.float32)
        solve = [
            i
            for i, p in enumerate(profiles)
            if (p.uidx is None or p.uidx >= stored) and (len(liked[i]) or p.uidx is not None)
        ]
        if solve:
            U[solve] = rec.collab.user_factors_batch(
                [liked[i] for i in solve], [disliked[i] for i in solve]
            )
        known = [i for i, p in enumerate(profiles) if p.uidx is not None and p.uidx < stored]
        if known:
            U[known] = rec.collab.user_factors_[[profiles[i].uidx for i in known]]
        factors, columns = ctx.rows(ctx.index.factors)
        collab = zscore_rows(factor_scores(U, factors)[:, columns], keep)
    feats["collab"] = collab
    # standardised over each person's own pool, like the other signals
    feats["popularity"] = zscore_rows(np.broadcast_to(ctx.popularity, (B, n_cand)), keep)
    return feats


def _taste_rows(rec, summed, topics, n_liked, n_disliked) -> tuple[np.ndarray, list]:
    """Each person's own linear taste model (:mod:`recommender.taste`) as direction rows:
    their likes (and keyword topics) against the corpus, dislikes as hard negatives; a
    person with topics and no likes gets one row per topic (scored by the best). Returns
    ``(rows, plan)``, ``plan`` a ``(person, first row, last row + 1)`` per person with a
    model, for :func:`_taste_scores`."""
    taste = rec.taste
    dim = rec.item_vectors.shape[1]
    if taste is None or not taste.available or (summed is None and not topics):
        return np.zeros((0, dim), np.float32), []
    B = len(n_liked)
    liked_sum = np.zeros((B, dim), np.float32)
    disliked_mean = np.zeros((B, dim), np.float32)
    dis = n_disliked > 0
    if summed is not None:
        summed = np.asarray(summed, dtype=np.float32)
        liked_sum[:] = summed[:B]
        disliked_mean[dis] = summed[B:] / n_disliked[dis, None].astype(np.float32)
    count = n_liked.astype(np.float32)
    for i, vectors in topics.items():
        if n_liked[i]:  # topics count as one more liked paper beside the likes
            liked_sum[i] += vectors.mean(axis=0)
            count[i] += 1
    has = count > 0
    rows = [taste.directions(liked_sum[has] / count[has, None], disliked_mean[has], dis[has])]
    plan = [(int(i), j, j + 1) for j, i in enumerate(np.flatnonzero(has))]
    at = len(plan)
    for i, vectors in topics.items():
        if not n_liked[i]:  # keywords alone: the best topic's model
            rows.append(
                taste.directions(
                    vectors, disliked_mean[[i] * len(vectors)], dis[[i] * len(vectors)]
                )
            )
            plan.append((i, at, at + len(vectors)))
            at += len(vectors)
    return np.concatenate(rows).astype(np.float32, copy=False), plan


def _taste_scores(plan: list, products: np.ndarray, B: int, n_cand: int) -> np.ndarray:
    """(people x candidates) taste scores from the products of :func:`_taste_rows`' rows
    with the candidates (a person's best row when they have several)."""
    out = np.zeros((B, n_cand), np.float32)
    for i, start, stop in plan:
        out[i] = products[start] if stop == start + 1 else products[start:stop].max(axis=0)
    return out


def factor_scores(U: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``U @ factors.T`` (people x candidates) in float32, each score one dot product that
    adds a candidate's factors in the same order wherever the candidate sits: a person's
    scores are the same bits alone or in a block of people and over any candidates (an
    index over a week or one built for a day). BLAS gives neither (its kernels sum a row
    differently by its position in a group of rows), so numpy's ``einsum`` loop computes
    them, one person at a time over the bundle's mapped float32 factors: 2 ms at 46,000
    candidates x 200 factors, against 5.6 ms for the float64 sums it replaces (which
    converted every block of factors first); blocks of 1,024 candidates (0.8 MB, cached)
    when many people share the call."""
    U = np.asarray(U, dtype=np.float32)
    if isinstance(factors, Int8Rows):
        return _int8_products(factors, U, einsum=True)
    out = np.empty((len(U), len(factors)), np.float32)
    block = len(factors) if len(U) <= SKINNY_ROWS else SKINNY_BLOCK
    for start in range(0, len(factors), max(block, 1)):
        part = factors[start : start + block]
        for i, row in enumerate(U):
            np.einsum("ij,j->i", part, row, out=out[i, start : start + len(part)])
    return out


def _int8_products(Q: Int8Rows, rows: np.ndarray, *, einsum: bool = False) -> np.ndarray:
    """(rows x candidates) ``rows`` times int8 rows ``Q``: a block of codes widened into a
    cached buffer (exact: integers), multiplied, and each candidate's sum scaled after, so
    a candidate's score is the same wherever it sits in a block (with ``einsum``, numpy's
    fixed-order dot per candidate: the same bits alone, in a block of people and over any
    candidates, as :func:`factor_scores` promises; else gemv per row for few rows, sgemm
    for many, as :func:`_dense_products`)."""
    n, dim = Q.shape
    out = np.empty((len(rows), n), np.float32)
    step = SKINNY_BLOCK if einsum or len(rows) <= SKINNY_ROWS else WIDEN_ROWS
    buffer = np.empty((min(step, max(n, 1)), dim), np.float32)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = buffer[: stop - start]
        np.copyto(block, Q.codes[start:stop], casting="unsafe")
        if einsum:
            for j, row in enumerate(rows):
                np.einsum("ij,j->i", block, row, out=out[j, start:stop])
        elif len(rows) <= SKINNY_ROWS:
            for j, row in enumerate(rows):
                np.dot(block, row, out=out[j, start:stop])
        else:
            out[:, start:stop] = rows @ block.T
    out *= np.asarray(Q.scales, dtype=np.float32)[None, :]
    return out


def rankable_mask(profiles: Sequence[Profile], ctx: _Context) -> np.ndarray:
    """(people x candidates) True where a candidate may be shown: never an excluded paper
    or one the person has rated."""
    keep = np.ones((len(profiles), len(ctx.candidates)), dtype=bool)
    for i, p in enumerate(profiles):
        drop = np.concatenate(
            [
                (
                    np.asarray(p.exclude, dtype=np.int64).ravel()
                    if isinstance(p.exclude, np.ndarray)
                    else np.fromiter((int(x) for x in p.exclude), np.int64)
                ),
                np.asarray(p.liked, dtype=np.int64).ravel(),
                np.asarray(p.disliked, dtype=np.int64).ravel(),
            ]
        )
        drop = drop[(drop >= 0) & (drop < len(ctx.pos_lookup))]
        pos = ctx.pos_lookup[drop]
        keep[i, pos[pos >= 0]] = False
    return keep
