"""Content model: score papers for a person from the texts of the papers they liked and disliked.

Two signals, both computed from cosine similarities between paper vectors
(rows of :mod:`recommender.text` output, unit length):

- ``centroid``: mean similarity to the liked papers (= cosine to their centroid, up to a
  per-person constant, which per-person z-scoring removes). Broad topical match.
- ``knn``: item-kNN. For each candidate only its ``k`` most similar papers in the whole
  collection count as neighbours; the score sums the similarity to the liked papers among
  them. Sharper: one very close liked paper beats many loosely related ones.

Disliked papers push similar candidates down (their mean similarity is subtracted).
With no likes, a keyword query vector stands in for the centroid (onboarding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .blocks import map_blocks, row_blocks
from .quantized import Int8Rows

Matrix = np.ndarray | sp.csr_matrix


#: Similarities per block of a neighbour search, at most (bounds its memory).
BLOCK_ELEMENTS = 2**27


#: TF-IDF searches over at least this many papers split off their most common terms.
SPLIT_MIN_PAPERS = 2000
#: At most this many common terms go to the dense part (and at most 256 MB of it).
SPLIT_TERMS = 500


def _split_common_terms(X: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """``(rest, rest.T, common)``: TF-IDF rows split by column into the terms found in at least
    1% of the papers (at most :data:`SPLIT_TERMS`) as a dense float32 matrix, and the others
    as a sparse one, so that ``X @ X.T == rest @ rest.T + common @ common.T``.

    A sparse product costs the sum over terms of (papers with the term)^2: on 50,000
    generated abstracts the 500 most common terms are 87% of it, and scipy builds a nearly
    dense sparse result from them. As a dense product (BLAS) they cost little: the search
    took 8.8 s instead of 16.1 s for 4,000 rows against 50,000 papers.
    """
    n = X.shape[0]
    df = np.bincount(X.indices, minlength=X.shape[1])
    limit = min(SPLIT_TERMS, 2**26 // n)
    common = np.argsort(-df, kind="stable")[:limit]
    common = np.sort(common[df[common] >= max(2, 0.01 * n)])
    is_common = np.zeros(X.shape[1], dtype=bool)
    is_common[common] = True
    rest = X[:, np.flatnonzero(~is_common)].tocsr()
    dense = np.asarray(X[:, common].toarray(), dtype=np.float32)
    return rest, rest.T.tocsr(), dense


def _add_sparse(out: np.ndarray, part: sp.spmatrix) -> None:
    """``out += part`` for a C-ordered float32 ``out`` and a sparse ``part`` of its shape,
    without making ``part`` dense first (each entry added once, as ``toarray`` then ``+``
    would: the same float32 sums)."""
    part = sp.csr_matrix(part, dtype=out.dtype)
    try:  # scipy's own loop behind toarray(), which adds into its output
        from scipy.sparse._sparsetools import csr_todense
    except ImportError:  # pragma: no cover - a scipy that moved it
        out += part.toarray()
        return
    csr_todense(out.shape[0], out.shape[1], part.indptr, part.indices, part.data, out)


def _as_index(values: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(list(values) if isinstance(values, set) else values, dtype=np.int64)


class ContentModel:
    """Item-kNN plus centroid similarity over text vectors.

    Parameters
    ----------
    k : int
        Neighbourhood size for the kNN signal: a liked paper counts for a candidate only if it
        is among the candidate's ``k`` most similar papers.
    knn_weight : float
        Kept for saved models' manifests; the ranking learns its own blend of the two signals
        (:mod:`recommender.weights`).
    dislike_weight : float
        How strongly similarity to disliked papers lowers a score.
    block_size : int
        Rows per block when computing similarities (bounds memory).

    Attributes
    ----------
    item_vectors_ : ndarray or csr_matrix
        One unit-length row per paper (matrix row = ``pidx``).
    """

    def __init__(
        self,
        *,
        k: int = 200,
        knn_weight: float = 0.5,
        dislike_weight: float = 1.0,
        block_size: int = 2048,
    ) -> None:
        self.k = k
        self.knn_weight = knn_weight
        self.dislike_weight = dislike_weight
        self.block_size = block_size

    def fit(self, item_vectors: Matrix) -> ContentModel:
        """Store the paper vectors (``n_papers x dim``, unit-length rows)."""
        if sp.issparse(item_vectors):
            self.item_vectors_ = item_vectors.tocsr()
        elif isinstance(item_vectors, Int8Rows):  # kept as stored: a bundle's mapped rows
            self.item_vectors_ = item_vectors
        else:
            self.item_vectors_ = np.asarray(item_vectors)
        self.n_items_ = self.item_vectors_.shape[0]
        return self

    # -- similarities -------------------------------------------------------------------------

    def similarity(self, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
        """Return dense cosine similarities ``(len(rows), len(cols))`` as float32.

        ``None`` means all papers.
        """
        X = self.item_vectors_
        if isinstance(X, Int8Rows) and cols is None:
            # against every paper (a paper's page): int8 rows widened a block at a time
            A = X.dense() if rows is None else X[_as_index(rows)]
            return np.ascontiguousarray((X @ A.T).T, dtype=np.float32)
        A = X if rows is None else X[_as_index(rows)]
        B = X if cols is None else X[_as_index(cols)]
        out = np.empty((A.shape[0], B.shape[0]), dtype=np.float32)
        BT = B.T.tocsr() if sp.issparse(B) else B.T
        for start in range(0, A.shape[0], self.block_size):
            block = A[start : start + self.block_size] @ BT
            out[start : start + self.block_size] = block.toarray() if sp.issparse(block) else block
        return out

    def neighbours(
        self,
        rows: np.ndarray | None = None,
        *,
        block_rows: int = 512,
        progress: bool = False,
        threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each paper's ``k`` nearest other papers: ``(index, similarity)``, ``(len(rows), k)``.

        A blocked top-k search: ``block_rows`` papers at a time are compared with every paper
        (one matrix product) and ``np.argpartition`` keeps the ``k`` best, so memory stays at
        one block's row of similarities whatever the corpus size (one block per thread).
        Rows are unordered within a paper's ``k``; ties at the ``k``-th value are broken
        arbitrarily. ``threads`` search blocks at the same time
        (:func:`recommender.blocks.map_blocks`): the same result, bit for bit, as one.
        """
        rows = np.arange(self.n_items_) if rows is None else _as_index(rows)
        k = max(min(self.k, self.n_items_ - 1), 0)
        index = np.zeros((len(rows), k), dtype=np.int32)
        sims = np.zeros((len(rows), k), dtype=np.float32)
        if k == 0 or not len(rows):
            return index, sims
        X = self.item_vectors_
        if isinstance(X, Int8Rows):  # every paper is compared: widened once for the search
            X = X.dense()
        # Dense: the transposed view (BLAS reads it as is; a copy would double the vectors).
        XT = X.T.tocsr() if sp.issparse(X) else X.T
        head = None
        if sp.issparse(X) and X.shape[0] >= SPLIT_MIN_PAPERS:
            X, XT, head = _split_common_terms(X)
        # A block's similarities (float32) and argpartition's indices (int64) are 12 bytes
        # per paper per row: at 500,000 papers 512 rows held 3 GB, so rows shrink with the
        # corpus to keep the blocks in flight (one per thread) under BLOCK_ELEMENTS (1.5 GB).
        threads = max(1, int(threads))
        limit = BLOCK_ELEMENTS // max(self.n_items_ * threads, 1)
        block_rows = max(16, min(block_rows, limit))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(rows), desc="neighbours", unit="paper")

        def search(start: int, stop: int, scratch: dict) -> None:
            idx = rows[start:stop]
            if head is not None:
                # TF-IDF with common terms split off: the dense product goes into one
                # buffer per thread and the sparse one is added into it (the same sums as
                # adding the two arrays, without a fresh dense copy of the sparse block
                # and a third array per block).
                if "buffer" not in scratch:  # a joined last block has one row more
                    scratch["buffer"] = np.empty((block_rows + 1, len(head)), np.float32)
                block = np.matmul(head[idx], head.T, out=scratch["buffer"][: len(idx)])
                _add_sparse(block, X[idx] @ XT)
            else:
                block = X[idx] @ XT
                block = np.asarray(block.toarray() if sp.issparse(block) else block, np.float32)
            block[np.arange(len(idx)), idx] = -np.inf  # a paper is not its own neighbour
            top = np.argpartition(block, -k, axis=1)[:, -k:]
            index[start:stop] = top
            sims[start:stop] = np.take_along_axis(block, top, axis=1)
            if bar is not None:
                bar.update(len(idx))

        try:
            map_blocks(search, row_blocks(len(rows), block_rows), threads)
        finally:
            if bar is not None:
                bar.close()
        return index, sims

    def merge_neighbours(
        self, rows: np.ndarray, index: np.ndarray, sims: np.ndarray, new: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Update the ``k`` nearest papers of ``rows`` (``index``/``sims``, from
        :meth:`neighbours` over the papers before ``new``) with the papers ``new``.

        Only ``rows x new`` similarities are computed (one product per block): a paper
        enters a row's list when it beats the list's least similar paper. Exact when the
        vectors of the papers before ``new`` did not change since ``index`` was searched.
        """
        rows, new = _as_index(rows), _as_index(new)
        index, sims = np.asarray(index), np.asarray(sims)
        if not len(rows) or not len(new):
            return index.copy(), sims.copy()
        k = index.shape[1]
        X = self.item_vectors_
        NT = X[new].T.tocsr() if sp.issparse(X) else np.ascontiguousarray(X[new].T)
        out_index, out_sims = np.empty_like(index), np.empty_like(sims)
        for start in range(0, len(rows), self.block_size):
            idx = rows[start : start + self.block_size]
            block = X[idx] @ NT
            block = np.asarray(block.toarray() if sp.issparse(block) else block, np.float32)
            block[idx[:, None] == new[None, :]] = -np.inf  # a paper is not its own neighbour
            both_sims = np.concatenate([sims[start : start + len(idx)], block], axis=1)
            both = np.concatenate(
                [index[start : start + len(idx)], np.broadcast_to(new, block.shape)], axis=1
            )
            top = np.argpartition(both_sims, -k, axis=1)[:, -k:]
            out_index[start : start + len(idx)] = np.take_along_axis(both, top, axis=1)
            out_sims[start : start + len(idx)] = np.take_along_axis(both_sims, top, axis=1)
        return out_index, out_sims


def zscore(scores: np.ndarray) -> np.ndarray:
    """Standardise one person's scores (mean 0, std 1); constant scores become zeros."""
    scores = np.asarray(scores, dtype=np.float32)
    std = float(scores.std())
    if not np.isfinite(std) or std < 1e-12:
        return np.zeros_like(scores)
    return (scores - scores.mean()) / std
