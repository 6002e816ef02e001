"""Collaborative model: ALS over person x paper likes, with a text bridge for new papers.

``implicit``'s AlternatingLeastSquares learns a factor vector per person and per paper from
likes (positive confidence) and dislikes (negative confidence: "not this, and we are sure").
A paper nobody has rated has no learned factors, so a ridge regression from text vectors to
item factors (the *bridge*, fitted on rated papers) predicts factors for every paper; new
papers get a collaborative score the day they arrive.

Re-ranking one person after a like needs only that person's factors: :meth:`CollabModel.
user_factors_for` solves one small least-squares system (``factors x factors``) in well under
a millisecond, without refitting anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits


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
    random_state : int
        Seed: the same data and seed give the same factors.
    num_threads : int
        ALS threads (``0`` = all cores); BLAS is pinned to one thread during fitting.

    Attributes
    ----------
    user_factors_ : ndarray, shape (n_users, factors)
    item_factors_ : ndarray, shape (n_items, factors)
        Learned factors for rated papers, bridged factors for the others.
    bridged_factors_ : ndarray, shape (n_items, factors)
        Factors predicted from text for every paper.
    rated_ : ndarray of bool, shape (n_items,)
        Papers with at least one rating in the training data.
    """

    def __init__(
        self,
        *,
        factors: int = 200,
        regularization: float = 1.0,
        alpha: float = 10.0,
        dislike_weight: float = 1.0,
        iterations: int = 15,
        bridge_regularization: float = 1.0,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.dislike_weight = dislike_weight
        self.iterations = iterations
        self.bridge_regularization = bridge_regularization
        self.random_state = random_state
        self.num_threads = num_threads

    def _confidence(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        C = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        C.data = np.where(C.data > 0, self.alpha, -self.alpha * self.dislike_weight).astype(
            np.float32
        )
        C.eliminate_zeros()
        return C

    def fit(self, user_items: sp.spmatrix, item_vectors: np.ndarray | sp.spmatrix) -> CollabModel:
        """Fit ALS on ``user_items`` (n_users x n_items; +1 like, -1 dislike) and the bridge.

        ``item_vectors`` (n_items rows, from :mod:`recommender.text`) feed the bridge.
        """
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.cpu.als import AlternatingLeastSquares

        user_items = sp.csr_matrix(user_items)
        n_users, n_items = user_items.shape
        C = self._confidence(user_items)
        self.rated_ = np.asarray((abs(user_items) > 0).sum(axis=0)).ravel() > 0
        factors = np.zeros((n_items, self.factors), dtype=np.float32)
        users = np.zeros((n_users, self.factors), dtype=np.float32)
        if C.nnz:
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # confidences are already scaled by _confidence
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
                calculate_training_loss=False,
            )
            # implicit's own threads do the work; nested BLAS threads only oversubscribe.
            with threadpool_limits(limits=1, user_api="blas"):
                als.fit(C, show_progress=False)
            users = np.asarray(als.user_factors, dtype=np.float32)
            factors = np.asarray(als.item_factors, dtype=np.float32)
        self.user_factors_ = users
        self.bridge_coef_, self.bridge_intercept_ = self._fit_bridge(
            item_vectors, factors, self.rated_
        )
        self.bridged_factors_ = self.bridge(item_vectors)
        self.item_factors_ = np.where(self.rated_[:, None], factors, self.bridged_factors_)
        self._prepare()
        return self

    def _prepare(self) -> None:
        Y = self.item_factors_.astype(np.float64)
        self.YtY_ = Y.T @ Y

    def _fit_bridge(
        self, X: np.ndarray | sp.spmatrix, factors: np.ndarray, rated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ridge regression from text vectors to learned factors, on rated papers only."""
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

    def bridge(self, item_vectors: np.ndarray | sp.spmatrix) -> np.ndarray:
        """Predict item factors from text vectors (for papers nobody has rated yet)."""
        out = item_vectors @ self.bridge_coef_
        return (np.asarray(out, dtype=np.float32) + self.bridge_intercept_).astype(np.float32)

    def user_factors_for(
        self, liked: Sequence[int] | np.ndarray = (), disliked: Sequence[int] | np.ndarray = ()
    ) -> np.ndarray:
        """Solve one person's factors from their liked/disliked ``pidx`` (no refit).

        Same normal equations as ALS's user step: ``(YtY + Yt(C-I)Y + reg I) x = Yt C p``.
        """
        liked, disliked = _as_index(liked), _as_index(disliked)
        f = self.factors
        if not len(liked) and not len(disliked):
            return np.zeros(f, dtype=np.float32)
        idx = np.concatenate([liked, disliked])
        conf = np.concatenate(
            [
                np.full(len(liked), self.alpha),
                np.full(len(disliked), self.alpha * self.dislike_weight),
            ]
        )
        pref = np.concatenate([np.ones(len(liked)), np.zeros(len(disliked))])
        Y = self.item_factors_[idx].astype(np.float64)
        A = self.YtY_ + (Y.T * (conf - 1.0)) @ Y + self.regularization * np.eye(f)
        b = Y.T @ (conf * pref)
        return np.linalg.solve(A, b).astype(np.float32)

    def partial_fit_user(
        self,
        uidx: int,
        liked: Sequence[int] | np.ndarray = (),
        disliked: Sequence[int] | np.ndarray = (),
    ) -> CollabModel:
        """Recompute person ``uidx``'s factors after new feedback (grows the table if new)."""
        if uidx >= len(self.user_factors_):
            grow = np.zeros((uidx + 1 - len(self.user_factors_), self.factors), np.float32)
            self.user_factors_ = np.vstack([self.user_factors_, grow])
        self.user_factors_[uidx] = self.user_factors_for(liked, disliked)
        return self

    def score(
        self, user_factors: np.ndarray, items: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Dot products of one person's factors (or a ``(n, factors)`` stack) with ``items``."""
        Y = self.item_factors_ if items is None else self.item_factors_[_as_index(items)]
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
            "random_state": self.random_state,
            "num_threads": self.num_threads,
        }
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "bridged_factors": self.bridged_factors_,
            "rated": self.rated_,
            "bridge_coef": self.bridge_coef_,
            "bridge_intercept": self.bridge_intercept_,
        }
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> CollabModel:
        """Rebuild a fitted model from :meth:`state` output."""
        model = cls(**params)
        model.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        model.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        model.bridged_factors_ = np.asarray(arrays["bridged_factors"], dtype=np.float32)
        model.rated_ = np.asarray(arrays["rated"], dtype=bool)
        model.bridge_coef_ = np.asarray(arrays["bridge_coef"], dtype=np.float32)
        model.bridge_intercept_ = np.asarray(arrays["bridge_intercept"], dtype=np.float32)
        model._prepare()
        return model
