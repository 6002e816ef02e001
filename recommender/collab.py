"""Collaborative model: ALS over person x paper likes, with a text bridge for new papers.

``implicit``'s AlternatingLeastSquares learns a factor vector per person and per paper from
likes (positive confidence) and dislikes (negative confidence: "not this, and we are sure").
A paper nobody has rated has no learned factors, so a *bridge* from text to factors, fitted on
rated papers, predicts factors for every paper; new papers get a collaborative score the day
they arrive. Two bridges, optionally mixed:

- ridge regression from text vectors to item factors (optionally stacked: a second ridge on
  other text features, e.g. TF-IDF beside embeddings, fitted to the first one's residuals);
- kNN: the similarity-weighted mean of the learned factors of the new paper's nearest rated
  papers in text space (weights ``max(cos, 0) ** power``).

Re-ranking one person after a like needs only that person's factors: :meth:`CollabModel.
user_factors_for` solves one small least-squares system (``factors x factors``) in well under
a millisecond, without refitting anything.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .blocks import cholesky, default_threads, map_blocks, row_blocks
from .quantized import Int8Rows

#: Rows of the factors per float64 block when summing ``YtY`` (bounds the temporary copy).
_YTY_BLOCK = 8192

#: A sparse (TF-IDF) ridge bridge is solved exactly through its kernel, the rated papers'
#: centred Gram matrix (one float32 Cholesky factorisation for every factor column), when
#: that matrix has at most this many elements (512 MB: 11,585 rated papers); above,
#: scikit-learn's ``sparse_cg`` (one conjugate gradient per factor column).
KERNEL_MAX_ELEMENTS = 2**27
#: Rows per block of the sparse part of the Gram matrix (bounds the sparse temporary).
_GRAM_BLOCK = 2048


def _as_index(values: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(list(values) if isinstance(values, set) else values, dtype=np.int64)


class CollabModel:
    """Implicit-feedback ALS plus a text-to-factors ridge bridge.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    regularization : float
        L2 penalty of ALS.
    alpha : float
        Confidence of a like (and, times ``dislike_weight``, of a dislike).
    dislike_weight : float
        Confidence of a dislike relative to a like.
    iterations : int
        ALS sweeps.
    bridge_regularization : float
        L2 penalty of the text-to-factors ridge regression.
    bridge_neighbours : int
        Nearest rated papers averaged by the kNN bridge (``0``: ridge bridge only).
    bridge_power : float
        Exponent on the cosine similarities weighting the kNN bridge's neighbours.
    bridge_knn_share : float
        Share of the kNN bridge in a new paper's factors (the rest: ridge).
    random_state : int
        Seed: the same data and seed give the same factors.
    num_threads : int
        Threads of a fit: ALS's (``0``: all cores), the kNN bridge's and the ridges' blocks
        (``0``: the cores, at most 4); each runs BLAS on one thread, so the factors are the
        same floats whatever the count.

    Attributes
    ----------
    user_factors_ : ndarray, shape (n_users, factors)
    item_factors_ : ndarray, shape (n_items, factors)
        Learned factors for rated papers, bridged factors for the others.
    bridged_factors_ : ndarray, shape (n_items, factors)
        Factors predicted from text for every paper (set by :meth:`fit`; not saved: the
        ranking reads ``item_factors_``, which holds them for every unrated paper).
    rated_ : ndarray of bool, shape (n_items,)
        Papers with at least one rating in the training data.
    likes_ : ndarray of float32, shape (n_items,)
        Number of likes of each paper in the training data.
    """

    def __init__(
        self,
        *,
        factors: int = 200,
        regularization: float = 1.0,
        alpha: float = 40.0,
        dislike_weight: float = 1.0,
        iterations: int = 15,
        bridge_regularization: float = 1.0,
        bridge_neighbours: int = 0,
        bridge_power: float = 5.0,
        bridge_knn_share: float = 0.5,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.dislike_weight = dislike_weight
        self.iterations = iterations
        self.bridge_regularization = bridge_regularization
        self.bridge_neighbours = bridge_neighbours
        self.bridge_power = bridge_power
        self.bridge_knn_share = bridge_knn_share
        self.random_state = random_state
        self.num_threads = num_threads

    def _confidence(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        C = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        C.data = np.where(C.data > 0, self.alpha, -self.alpha * self.dislike_weight).astype(
            np.float32
        )
        C.eliminate_zeros()
        return C

    def fit(
        self,
        user_items: sp.spmatrix,
        item_vectors: np.ndarray | sp.spmatrix,
        extra_vectors: np.ndarray | sp.spmatrix | None = None,
    ) -> CollabModel:
        """Fit ALS on ``user_items`` (n_users x n_items; +1 like, -1 dislike) and the bridge.

        ``item_vectors`` (n_items unit-length rows, from :mod:`recommender.text`) feed the
        bridges; ``extra_vectors`` (optional, same rows) feed a second ridge stacked on the
        first one's residuals.
        """
        _fit_together([self], [user_items], item_vectors, extra_vectors)
        return self

    def fit_each(
        self,
        ratings: Sequence[sp.spmatrix],
        item_vectors: np.ndarray | sp.spmatrix,
        extra_vectors: np.ndarray | sp.spmatrix | None = None,
    ) -> list[CollabModel]:
        """A copy of this model fitted on each of ``ratings`` (ratings matrices over the same
        papers), as ``[copy.deepcopy(self).fit(r, item_vectors, extra_vectors) for r in
        ratings]`` gives (within float32 rounding), with the work that depends on the text
        alone done once: the sparse ridges' Gram matrix and its factorisation over the
        union of the rated papers (when each one's rated papers include the previous one's,
        as a refit's self-tuning check and final fit do).
        """
        models = [copy.deepcopy(self) for _ in ratings]
        _fit_together(models, list(ratings), item_vectors, extra_vectors)
        return models

    def _fit_als(self, user_items: sp.spmatrix) -> np.ndarray:
        """ALS on ``user_items``: sets ``rated_``, ``likes_`` and ``user_factors_``; returns
        the learned factors of every paper (rows of unrated papers: 0)."""
        from implicit.cpu.als import AlternatingLeastSquares

        user_items = sp.csr_matrix(user_items)
        n_users, n_items = user_items.shape
        C = self._confidence(user_items)
        self.rated_ = np.asarray((abs(user_items) > 0).sum(axis=0)).ravel() > 0
        self.likes_ = np.asarray((user_items > 0).sum(axis=0), dtype=np.float32).ravel()
        rated = np.flatnonzero(self.rated_)
        factors = np.zeros((n_items, self.factors), dtype=np.float32)
        users = np.zeros((n_users, self.factors), dtype=np.float32)
        if C.nnz:
            # implicit's own threads do the work; nested BLAS threads only oversubscribe.
            # The constructor checks the BLAS thread count (and warns), so it goes inside too.
            with threadpool_limits(limits=1, user_api="blas"):
                als = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=1.0,  # confidences are already scaled by _confidence
                    iterations=self.iterations,
                    random_state=self.random_state,
                    num_threads=self.num_threads,
                    calculate_training_loss=False,
                )
                # The rated papers' columns only. A paper nobody rated is at its optimum
                # with factors 0 whatever the others' (nothing pulls it away from 0), so at
                # the optimum it adds nothing to anyone's solve, and its learned factors
                # are replaced by bridged ones below; fitting its column only cost time
                # (at 50,000 papers 40,000 of them: a quarter of ALS's time) and drew a
                # random start that moved every factor's path through the iterations.
                als.fit(C[:, rated].tocsr(), show_progress=False)
            users = np.asarray(als.user_factors, dtype=np.float32)
            factors[rated] = np.asarray(als.item_factors, dtype=np.float32)
        self.user_factors_ = users
        return factors

    def extended(
        self,
        item_vectors: np.ndarray | sp.spmatrix,
        new: np.ndarray,
        extra_vectors: np.ndarray | sp.spmatrix | None = None,
    ) -> CollabModel:
        """A copy that also holds the papers ``new`` (the last rows of ``item_vectors``,
        nobody has rated them), nothing refitted: their factors are bridged exactly as
        :meth:`fit` bridges unrated papers, by the fitted ridge (``extra_vectors``: the rows
        ``new`` of the stacked ridge's features) mixed with the kNN bridge over the rated
        papers. The people's factors and the learned papers' factors are shared."""
        new = _as_index(new)
        model = copy.copy(self)
        pad = np.zeros((len(new), self.factors), np.float32)
        model.rated_ = np.concatenate([self.rated_, np.zeros(len(new), bool)])
        model.likes_ = np.concatenate([self.likes_, np.zeros(len(new), np.float32)])
        bridged = self.bridge(item_vectors[new], extra_vectors)
        if self.bridge_neighbours > 0 and self.bridge_knn_share > 0:
            share = np.float32(self.bridge_knn_share)
            knn = model.knn_bridge(item_vectors, np.concatenate([self.item_factors_, pad]), new)
            bridged = share * knn + (1 - share) * bridged
        bridged = Int8Rows.quantize(bridged)
        model.__dict__.pop("bridged_factors_", None)  # a fit's, for the old papers only
        model.item_factors_ = Int8Rows.concat([Int8Rows.of(self.item_factors_), bridged])
        model._prepare()
        return model

    def _prepare(self) -> None:
        # YtY in float64, a block of rows at a time: the factors may be a mapped file, and a
        # float64 copy of them all would be a private ~80 MB per process at 50,000 papers.
        Y = self.item_factors_
        f = Y.shape[1]
        self.YtY_ = np.zeros((f, f))
        for start in range(0, len(Y), _YTY_BLOCK):
            block = np.asarray(Y[start : start + _YTY_BLOCK], dtype=np.float64)
            self.YtY_ += block.T @ block
        self._solve_cache: np.ndarray | None = None  # M^-1, M = YtY + reg I, built on demand

    def prepare_solves(self) -> None:
        """Build the shared part of every person's solve now (a publish or a load does)."""
        self._shared_solve()

    def _shared_solve(self) -> np.ndarray:
        """``M^-1`` with ``M = YtY + reg I`` (``factors x factors``, what every person's
        system shares); a person's rows of ``G = Y M^-1`` are made from it per request, so
        no process holds ``G`` for every paper."""
        if getattr(self, "_solve_cache", None) is None:
            M = self.YtY_ + self.regularization * np.eye(self.factors)
            self._solve_cache = np.linalg.inv(M)
        return self._solve_cache

    def _fit_bridge(
        self, X: np.ndarray | sp.spmatrix, factors: np.ndarray, rated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ridge regression from text vectors to learned factors, on rated papers only, by
        scikit-learn (``cholesky`` for dense vectors, ``sparse_cg`` for sparse ones): what
        :func:`_fit_ridges` falls back to when the exact kernel solve does not apply."""
        dim = X.shape[1]
        if rated.sum() < 2:
            return np.zeros((dim, self.factors), np.float32), np.zeros(self.factors, np.float32)
        from sklearn.linear_model import Ridge

        Xr = X[np.flatnonzero(rated)]
        Y = factors[rated]
        solver = "sparse_cg" if sp.issparse(Xr) else "cholesky"
        with threadpool_limits(limits=1, user_api="blas"):
            ridge = Ridge(alpha=self.bridge_regularization, solver=solver, tol=1e-4)
            ridge.fit(Xr, Y)
        coef = np.asarray(ridge.coef_, dtype=np.float32).T  # (dim, factors)
        return coef, np.asarray(ridge.intercept_, dtype=np.float32)

    def bridge(
        self,
        item_vectors: np.ndarray | sp.spmatrix,
        extra_vectors: np.ndarray | sp.spmatrix | None = None,
    ) -> np.ndarray:
        """Ridge-predicted item factors from text vectors (for papers nobody has rated yet).

        ``extra_vectors`` add the stacked ridge when the model was fitted with them.
        """
        rows = getattr(self, "bridge_rows_", None)
        out = np.asarray(_times(item_vectors, self.bridge_coef_, rows), dtype=np.float32)
        out = out + self.bridge_intercept_
        if extra_vectors is not None and getattr(self, "extra_coef_", None) is not None:
            rows = getattr(self, "extra_rows_", None)
            extra = np.asarray(_times(extra_vectors, self.extra_coef_, rows), dtype=np.float32)
            out = out + extra + self.extra_intercept_
        return out.astype(np.float32)

    def knn_bridge(
        self,
        item_vectors: np.ndarray | sp.spmatrix,
        factors: np.ndarray,
        items: np.ndarray,
        block: int = 1024,
    ) -> np.ndarray:
        """kNN-bridged factors of ``items``: weighted mean of their nearest rated papers' factors.

        ``item_vectors`` are the unit-length text rows of every paper, ``factors`` the learned
        factors (rows of rated papers are used). A paper is never its own neighbour. Blocks
        of ``block`` papers run in :meth:`fit_threads` threads
        (:func:`recommender.blocks.map_blocks`), with the same result as one.
        """
        rated = np.flatnonzero(self.rated_)
        out = np.zeros((len(items), self.factors), dtype=np.float32)
        k = min(self.bridge_neighbours, len(rated) - 1)
        if k <= 0 or not len(items):
            return out
        R = item_vectors[rated]
        RT = R.T.tocsr() if sp.issparse(R) else np.ascontiguousarray(R.T)
        Fr = np.asarray(factors[rated], dtype=np.float32)
        is_rated = np.full(len(self.rated_), -1, dtype=np.int64)
        is_rated[rated] = np.arange(len(rated))
        power = np.float32(self.bridge_power)

        def bridge_block(start: int, stop: int, scratch: dict) -> None:
            idx = items[start:stop]
            S = item_vectors[idx] @ RT
            S = np.asarray(S.toarray() if sp.issparse(S) else S, dtype=np.float32)
            own = is_rated[idx]
            S[np.flatnonzero(own >= 0), own[own >= 0]] = -np.inf
            # -S in place (the same floats as a negated copy, without one per block)
            nn = np.argpartition(np.negative(S, out=S), k - 1, axis=1)[:, :k]
            w = np.maximum(-np.take_along_axis(S, nn, axis=1), 0) ** power
            w /= np.maximum(w.sum(axis=1, keepdims=True), np.float32(1e-12))
            out[start:stop] = np.einsum("ik,ikf->if", w, Fr[nn])

        map_blocks(bridge_block, row_blocks(len(items), block), self.fit_threads())
        return out

    def fit_threads(self) -> int:
        """Threads of a fit's blocks: ``num_threads``, or with ``0`` the cores this process
        may use (at most :data:`recommender.blocks.MAX_DEFAULT_THREADS`)."""
        return self.num_threads if self.num_threads > 0 else default_threads()

    def user_factors_for(
        self, liked: Sequence[int] | np.ndarray = (), disliked: Sequence[int] | np.ndarray = ()
    ) -> np.ndarray:
        """Solve one person's factors from their liked/disliked ``pidx`` (no refit).

        Same normal equations as ALS's user step: ``(YtY + Yt(C-I)Y + reg I) x = Yt C p``,
        solved through :meth:`user_factors_batch`.
        """
        return self.user_factors_batch([liked], [disliked])[0]

    def user_factors_batch(
        self,
        liked: Sequence[Sequence[int] | np.ndarray],
        disliked: Sequence[Sequence[int] | np.ndarray],
    ) -> np.ndarray:
        """:meth:`user_factors_for` for many people at once: ``(len(liked), factors)`` float32.

        ``(YtY + reg I) + Yt(C-I)Y`` is a shared matrix plus a low-rank term (one row per rated
        paper), so the Woodbury identity turns each ``factors x factors`` solve into a
        ``n_rated x n_rated`` one for people with fewer ratings than factors; people with more
        get the ``factors x factors`` system directly. People with the same number of ratings
        are solved together.
        """
        f = self.factors
        out = np.zeros((len(liked), f), dtype=np.float32)
        like_c, dislike_c = self.alpha, self.alpha * self.dislike_weight
        rows: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
        for i, (li, di) in enumerate(zip(liked, disliked, strict=True)):
            li, di = _as_index(li), _as_index(di)
            k = len(li) + len(di)
            if not k:
                continue
            idx = np.concatenate([li, di])
            conf = np.concatenate([np.full(len(li), like_c), np.full(len(di), dislike_c)])
            pref = np.concatenate([np.ones(len(li)), np.zeros(len(di))])
            rows.setdefault(k, []).append((i, idx, conf, pref))
        if not rows:
            return out
        if min(like_c, dislike_c) <= 1.0:  # Woodbury needs C - I invertible: solve directly
            for group in rows.values():
                for i, idx, conf, pref in group:
                    Y = self.item_factors_[idx].astype(np.float64)
                    A = self.YtY_ + (Y.T * (conf - 1.0)) @ Y + self.regularization * np.eye(f)
                    out[i] = np.linalg.solve(A, Y.T @ (conf * pref))
            return out
        M_inv = self._shared_solve()
        Yall = self.item_factors_
        for k, group in rows.items():
            for start in range(0, len(group), 512):
                part = group[start : start + 512]
                who = np.fromiter((g[0] for g in part), np.int64, len(part))
                idx = np.stack([g[1] for g in part])
                conf = np.stack([g[2] for g in part])
                q = conf * np.stack([g[3] for g in part])  # (b, k)
                Yb = Yall[idx].astype(np.float64)  # (b, k, f)
                if k > f:
                    # More ratings than factors: the f x f normal equations are the smaller
                    # system (k f^2 + f^3 instead of k^2 f + k^3; 200 ratings: ~10x fewer).
                    A = (Yb * (conf - 1.0)[:, :, None]).transpose(0, 2, 1) @ Yb
                    A += self.YtY_ + self.regularization * np.eye(f)
                    rhs = np.einsum("bkf,bk->bf", Yb, q)
                    out[who] = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
                    continue
                Gb = Yb @ M_inv  # rows idx of G = Y M^-1, (b, k, f)
                H = Yb @ Gb.transpose(0, 2, 1)  # Y M^-1 Yt, (b, k, k)
                K = H + np.eye(k)[None] / (conf - 1.0)[:, :, None]
                s = np.linalg.solve(K, (H @ q[:, :, None]))[:, :, 0]
                out[who] = np.einsum("bkf,bk->bf", Gb, q - s)
        return out

    def score(
        self, user_factors: np.ndarray, items: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Dot products of one person's factors (or a ``(n, factors)`` stack) with ``items``."""
        Y = self.item_factors_
        Y = np.asarray(Y) if items is None else Y[_as_index(items)]
        return (np.asarray(user_factors, dtype=np.float32) @ Y.T).astype(np.float32)

    # -- persistence (arrays only; see recommender.artifacts) ---------------------------------

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Return ``(json_params, arrays)`` that :meth:`from_state` rebuilds (no pickles)."""
        params = {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "dislike_weight": self.dislike_weight,
            "iterations": self.iterations,
            "bridge_regularization": self.bridge_regularization,
            "bridge_neighbours": self.bridge_neighbours,
            "bridge_power": self.bridge_power,
            "bridge_knn_share": self.bridge_knn_share,
            "random_state": self.random_state,
            "num_threads": self.num_threads,
        }
        Y = Int8Rows.of(self.item_factors_)
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": Y.codes,
            "item_scales": Y.scales,
            "rated": self.rated_,
            "likes": self.likes_,
            "bridge_intercept": self.bridge_intercept_,
        }
        arrays.update(_nonzero_rows("bridge", self.bridge_coef_, self))
        if getattr(self, "extra_coef_", None) is not None:
            arrays.update(_nonzero_rows("extra", self.extra_coef_, self))
            arrays["extra_intercept"] = self.extra_intercept_
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> CollabModel:
        """Rebuild a fitted model from :meth:`state` output."""
        model = cls(**params)
        model.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        if "item_scales" in arrays:  # format 6: int8 rows, as fitted
            model.item_factors_ = Int8Rows(arrays["item_factors"], arrays["item_scales"])
        else:
            model.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        model.rated_ = np.asarray(arrays["rated"], dtype=bool)
        model.likes_ = np.asarray(arrays.get("likes", model.rated_), dtype=np.float32)
        # float16 from format 6 on: kept as stored (mapped; only a publish reads them)
        model.bridge_coef_ = arrays["bridge_coef"]
        model.bridge_rows_ = arrays.get("bridge_rows")  # None: every row stored
        model.bridge_intercept_ = np.asarray(arrays["bridge_intercept"], dtype=np.float32)
        model.extra_coef_ = model.extra_intercept_ = model.extra_rows_ = None
        if "extra_coef" in arrays:
            model.extra_coef_ = arrays["extra_coef"]
            model.extra_rows_ = arrays.get("extra_rows")
            model.extra_intercept_ = np.asarray(arrays["extra_intercept"], dtype=np.float32)
        for name in ("bridge", "extra"):
            coef, rows = getattr(model, f"{name}_coef_"), getattr(model, f"{name}_rows_")
            if rows is not None and len(rows) != len(coef):
                raise ValueError(f"{name}_coef has {len(coef)} rows, {name}_rows lists {len(rows)}")
        model._prepare()
        return model


def _fit_together(
    models: list[CollabModel],
    ratings: list[sp.spmatrix],
    item_vectors: np.ndarray | sp.spmatrix,
    extra_vectors: np.ndarray | sp.spmatrix | None,
) -> None:
    """Fit each of ``models`` on its ratings (:meth:`CollabModel.fit`): ALS, the ridge
    bridge and the stacked ridge on its residuals (one shared factorisation for sparse
    features, :func:`_fit_ridges`), the kNN bridge over the unrated papers, the factors."""
    # The learned factors as stored (int8 rows) from here on: the bridges are fitted on,
    # and a publish later bridges new papers from, the same values.
    learned = [Int8Rows.quantize(m._fit_als(r)) for m, r in zip(models, ratings, strict=True)]
    factors = [q[:] for q in learned]
    ridges = _fit_ridges(models, item_vectors, factors)
    for m, (coef, intercept) in zip(models, ridges, strict=True):
        coef = _half(coef)
        m.bridge_coef_, m.bridge_intercept_ = coef, intercept
        m.bridge_rows_ = m.extra_rows_ = None  # every row (see _nonzero_rows)
        m.extra_coef_ = m.extra_intercept_ = None
    if extra_vectors is not None:
        residuals = []
        for m, f in zip(models, factors, strict=True):
            rated = np.flatnonzero(m.rated_)
            residual = np.zeros_like(f)  # only the rated rows are read
            residual[rated] = f[rated] - m.bridge(item_vectors[rated])
            residuals.append(residual)
        ridges = _fit_ridges(models, extra_vectors, residuals)
        for m, (coef, intercept) in zip(models, ridges, strict=True):
            m.extra_coef_, m.extra_intercept_ = _half(coef), intercept
    bridged = [m.bridge(item_vectors, extra_vectors) for m in models]
    for m, f, b in zip(models, factors, bridged, strict=True):
        if m.bridge_neighbours > 0 and m.bridge_knn_share > 0:
            # one similarity product per fit: sharing one over both fits' unrated x rated
            # papers cost as much in copies of its rows and columns as it saved (measured)
            new, share = np.flatnonzero(~m.rated_), np.float32(m.bridge_knn_share)
            b[new] = share * m.knn_bridge(item_vectors, f, new) + (1 - share) * b[new]
    for m, q, b in zip(models, learned, bridged, strict=True):
        m.bridged_factors_ = b
        # int8 rows, as the bundle stores them: what serves is what the weights are tuned on
        b = Int8Rows.quantize(b)
        m.item_factors_ = Int8Rows(
            np.where(m.rated_[:, None], q.codes, b.codes),
            np.where(m.rated_, q.scales, b.scales).astype(np.float32),
        )
        m._prepare()


def _fit_ridges(
    models: list[CollabModel], X: np.ndarray | sp.spmatrix, factors: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each model's ridge from ``X`` to its factors over its rated papers: for sparse
    ``X`` through one shared kernel factorisation (:func:`_kernel_ridges`) when it applies,
    otherwise :meth:`CollabModel._fit_bridge` one model at a time."""
    alpha = models[0].bridge_regularization
    solved: list = [None] * len(models)
    if sp.issparse(X) and all(m.bridge_regularization == alpha for m in models):
        X = sp.csr_matrix(X)
        jobs = [(m.rated_, f) for m, f in zip(models, factors, strict=True)]
        with threadpool_limits(limits=1, user_api="blas"):
            threads = models[0].fit_threads()
            solved = _kernel_ridges(X, jobs, alpha, threads) or [
                (_kernel_ridges(X, [job], alpha, threads) or [None])[0] for job in jobs
            ]  # not nested: one factorisation each
    return [
        s if s is not None else m._fit_bridge(X, f, m.rated_)
        for m, f, s in zip(models, factors, solved, strict=True)
    ]


def _kernel_ridges(
    X: sp.csr_matrix, jobs: list[tuple[np.ndarray, np.ndarray]], alpha: float, threads: int = 1
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Ridge regressions with an intercept from the rows ``rated`` of sparse ``X`` to the
    same rows of ``Y``, one per job ``(rated, Y)``, solved exactly in their dual (what
    scikit-learn's ``sparse_cg`` solves one target column at a time by conjugate
    gradients to a relative residual of 1e-4); ``None`` when this does not apply (rated
    papers not nested, more of them than terms, or a Gram matrix above
    :data:`KERNEL_MAX_ELEMENTS`): the caller then uses scikit-learn.

    The union of the rated papers is ordered so that each job's papers come first (their
    sets must be nested: a self-tuning check's rated papers are among the final fit's),
    and its Gram matrix ``G`` (centred by the union's mean ``o``) is built once: the most
    common terms as one dense product, the rest as sparse products by blocks of rows, as
    the neighbour search does. One Cholesky factorisation ``L`` of ``G + alpha I`` serves
    every job and target: a job's rows are a leading block, whose factor is ``L``'s
    leading block. Its intercept comes from the bordered system (the ridge's dual with an
    unpenalised intercept): ``z = K^-1 y - b K^-1 1`` with ``b`` such that ``sum(z) = 0``,
    so any common centring gives the exact answer. At 10,670 rated papers x 109,641 terms x
    200 factors: ~6 s for both of a refit's fits, against ~40 s for ``sparse_cg``.
    ``threads`` build the Gram matrix's sparse blocks and factor it
    (:func:`recommender.blocks.cholesky`): the same floats on any count.
    Returns ``(coef (dim x targets), intercept (targets,))`` float32 per job.
    """
    from scipy.linalg import cho_solve

    from recommender.content import _split_common_terms

    masks = [np.asarray(rated, bool) for rated, _ in jobs]
    order = sorted(range(len(jobs)), key=lambda j: int(masks[j].sum()))
    for a, b in itertools.pairwise(order):
        if (masks[a] & ~masks[b]).any():
            return None
    sizes = [int(masks[j].sum()) for j in order]
    n, dim = sizes[-1], X.shape[1]
    if n >= dim or n * n > KERNEL_MAX_ELEMENTS or sizes[0] < 2:
        return None
    rows, seen = [], np.zeros(X.shape[0], bool)
    for j in order:  # each job's rated papers first: a leading block of the union
        rows.append(np.flatnonzero(masks[j] & ~seen))
        seen |= masks[j]
    rows = np.concatenate(rows)
    Xu = X[rows]
    offset = np.asarray(Xu.mean(axis=0), dtype=np.float64).ravel()
    rest, rest_t, common = _split_common_terms(Xu)
    gram = common @ common.T
    # the sparse part by blocks of rows, in threads (scipy sums each row on its own: the
    # same floats in any blocks)
    add_rows = functools.partial(_add_gram_rows, gram, rest, rest_t)
    map_blocks(add_rows, row_blocks(n, _GRAM_BLOCK), threads)
    del rest, rest_t, common, add_rows
    # centre: (x_i - o) . (x_j - o) = x_i . x_j - x_i . o - x_j . o + o . o
    along = (Xu @ offset).astype(np.float32)
    gram -= along[:, None]
    gram -= along[None, :]
    gram += np.float32(offset @ offset)
    gram[np.diag_indices(n)] += np.float32(alpha)
    try:  # in place, in threads, the same factor on any count
        factor = cholesky(gram, threads)
    except np.linalg.LinAlgError:  # not positive definite (no regularisation)
        return None
    out: list = [None] * len(jobs)
    for j, m in zip(order, sizes, strict=True):
        Y = np.asarray(jobs[j][1][rows[:m]], dtype=np.float64)
        y_offset = Y.mean(axis=0)
        rhs = np.concatenate([Y - y_offset, np.ones((m, 1))], axis=1).astype(np.float32)
        if m < n:  # a check fit's rows: the factor's leading block, read in place
            solved = _leading_cho_solve(factor, m, rhs)
        else:  # one LAPACK solve reads the factor once (column blocks in threads read it
            # once each: slower); factor.T is Fortran-ordered, its upper triangle L^T
            solved = cho_solve((factor.T, False), rhs, check_finite=False)
        solved = solved.astype(np.float64)
        b = solved[:, :-1].sum(axis=0) / solved[:, -1].sum()
        dual = (solved[:, :-1] - np.outer(solved[:, -1], b)).astype(np.float32)
        coef = np.asarray(Xu[:m].T @ dual, dtype=np.float32)  # sum(dual) = 0: no offset term
        intercept = y_offset + b - offset.astype(np.float32) @ coef
        out[j] = (coef, intercept.astype(np.float32))
    return out


def _add_gram_rows(gram, rest, rest_t, start: int, stop: int, scratch: dict) -> None:
    gram[start:stop] += (rest[start:stop] @ rest_t).toarray()


def _leading_cho_solve(factor: np.ndarray, m: int, rhs: np.ndarray, block: int = 1024):
    """Solve ``A[:m, :m] x = rhs`` from the lower Cholesky factor ``L`` of ``A``: the factor
    of a leading block is ``L[:m, :m]``; two triangular solves by blocks of rows, reading
    the factor in place (a copy of the block would be ``m^2`` floats)."""
    from scipy.linalg import solve_triangular

    z = np.empty_like(rhs)
    for s in range(0, m, block):
        e = min(s + block, m)
        z[s:e] = solve_triangular(
            factor[s:e, s:e], rhs[s:e] - factor[s:e, :s] @ z[:s], lower=True, check_finite=False
        )
    x = np.empty_like(rhs)
    for s in reversed(range(0, m, block)):
        e = min(s + block, m)
        x[s:e] = solve_triangular(
            factor[s:e, s:e],
            z[s:e] - factor[e:m, s:e].T @ x[e:m],
            lower=True,
            trans="T",
            check_finite=False,
        )
    return x


def _nonzero_rows(name: str, coef: np.ndarray, model: CollabModel) -> dict[str, np.ndarray]:
    """A ridge's coefficients as saved: only the rows that are not all zero, and which rows
    they are (``<name>_rows``), when some are. A TF-IDF term that occurs in no rated paper
    gets exactly zero coefficients (its column of the fitted rows is empty; at 50,728
    papers 23,450 of the stacked ridge's 109,641 terms), and a zero row adds nothing to a
    product, so :meth:`CollabModel.bridge` gives the same factors from the rows kept.
    A model whose coefficients are already such rows (loaded) saves them as they are."""
    rows = getattr(model, f"{name}_rows_", None)
    coef = np.asarray(coef).astype(RIDGE_TYPE, copy=False)  # exact: fitted as float16 values
    if rows is None:
        kept = np.flatnonzero(np.any(coef != 0, axis=1))
        if len(kept) == len(coef):
            return {f"{name}_coef": coef}
        rows, coef = kept.astype(np.min_scalar_type(max(len(coef) - 1, 0))), coef[kept]
    return {f"{name}_coef": coef, f"{name}_rows": rows}


#: How the ridges' coefficients are stored (from bundle format 6): only a publish reads
#: them (a new day's bridged factors), never a view, so their widening speed is
#: irrelevant; a fit rounds them first (:func:`_half`), so the publish bridges with what
#: the fit used. Half the bytes of float32: 34.6 MB at 50,728 papers.
RIDGE_TYPE = np.float16


def _half(coef: np.ndarray) -> np.ndarray:
    """``coef`` rounded to :data:`RIDGE_TYPE`, as float32."""
    return np.asarray(coef, dtype=np.float32).astype(RIDGE_TYPE).astype(np.float32)


def _times(X: np.ndarray | sp.spmatrix, coef: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``X @ full`` where ``full`` is zero but for its rows ``rows``, which are ``coef``
    (``rows`` None: ``coef`` is every row). Sparse ``X``: its entries in the kept columns,
    in their stored order, so each sum adds the same products in the same order."""
    coef = np.asarray(coef, dtype=np.float32)  # stored float16: widened for a publish
    if rows is None:
        return X @ coef
    rows = np.asarray(rows, dtype=np.int64)
    if sp.issparse(X):
        return sp.csr_matrix(X)[:, rows] @ coef
    return np.asarray(X)[:, rows] @ coef
