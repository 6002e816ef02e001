"""The published neighbourhoods, stored narrow and widened a row at a time.

A bundle holds, for every served paper (candidate), its ``k`` nearest papers and their
similarities: a sparse ``(n_items, n_candidates)`` matrix stored by paper row
(:class:`recommender.features.CandidateIndex`), so that a person's kNN signal is the sum
of their rated papers' rows. Its column indices are candidate positions, so they fit the
narrowest unsigned integer type that holds the candidate count (``uint16`` below 65,536
served papers: half the bytes of scipy's ``int32``).

scipy keeps no such matrix: its constructor would copy a ``uint16`` index array into
``int32``, a private copy of the whole matrix in every web worker that maps the bundle.
:class:`NeighbourRows` therefore keeps the stored (memory-mapped) arrays as they are and
hands scipy only the rows a request reads (:meth:`NeighbourRows.rows`), widened to
``int32`` indices and ``float32`` similarities.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: How the similarities are stored: float16 (3 significant digits) halves the bytes of
#: float32; every read widens them back to float32.
SIMILARITY_TYPE = np.float16


def index_dtype(n_columns: int) -> np.dtype:
    """The narrowest unsigned integer type holding every column index below ``n_columns``."""
    return np.min_scalar_type(max(int(n_columns) - 1, 0))


def used_columns(M: sp.spmatrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """``(used, M_used)``: the columns ``M`` has entries in, sorted, and ``M`` restricted
    to them (``M_used @ X[used]`` is ``M @ X``, each row's entries in their stored order),
    so a product reads only the rows of ``X`` that a few people's papers select."""
    M = sp.csr_matrix(M)
    used, at = np.unique(M.indices, return_inverse=True)
    return used, sp.csr_matrix((M.data, at.ravel(), M.indptr), shape=(M.shape[0], len(used)))


class NeighbourRows:
    """A CSR matrix's three arrays, kept as stored (narrow indices, possibly mapped).

    ``data``: the similarities; ``indices``: column (candidate position) of each, any
    unsigned or signed integer type; ``indptr``: where each row starts, as in CSR.
    """

    def __init__(self, data, indices, indptr, shape: tuple[int, int]):
        if len(data) != len(indices) or len(indptr) != shape[0] + 1:
            raise ValueError(
                f"neighbourhoods do not fit their shape {shape}: {len(data)} similarities, "
                f"{len(indices)} indices, {len(indptr)} row pointers"
            )
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))

    @classmethod
    def of(cls, M) -> NeighbourRows:
        """``M`` itself, or a scipy matrix stored with the narrowest index type and
        :data:`SIMILARITY_TYPE` (a copy: a publish or a fit-time index, never a request)."""
        if isinstance(M, NeighbourRows):
            return M
        M = sp.csr_matrix(M)
        indices = M.indices.astype(index_dtype(M.shape[1]))
        return cls(M.data.astype(SIMILARITY_TYPE), indices, M.indptr, M.shape)

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1]) if len(self.indptr) else 0

    def rows(self, pidx) -> sp.csr_matrix:
        """``(len(pidx), n_candidates)`` CSR of the rows ``pidx`` (in that order, repeats
        allowed), with ``int32`` indices and ``float32`` similarities: only these rows are
        widened."""
        pidx = np.asarray(pidx, dtype=np.int64).ravel()
        starts = np.asarray(self.indptr[pidx], dtype=np.int64)
        lens = np.asarray(self.indptr[pidx + 1], dtype=np.int64) - starts
        indptr = np.zeros(len(pidx) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        take = np.arange(indptr[-1], dtype=np.int64) + np.repeat(starts - indptr[:-1], lens)
        idx = np.int32 if max(self.shape[1], indptr[-1]) < 2**31 else np.int64
        return sp.csr_matrix(
            (
                np.asarray(self.data[take], dtype=np.float32),
                np.asarray(self.indices[take], dtype=idx),
                indptr.astype(idx),
            ),
            shape=(len(pidx), self.shape[1]),
        )

    def left_product(self, L: sp.spmatrix) -> sp.csr_matrix:
        """``L @ self`` (``L``: people x n_items, e.g. their liked papers), reading only the
        rows ``L`` selects. Each of ``L``'s rows keeps the order of its entries, so the sums
        are accumulated in the same order as scipy's product over the whole matrix."""
        used, L_used = used_columns(L)
        return sp.csr_matrix(L_used @ self.rows(used))

    def tocsr(self) -> sp.csr_matrix:
        """The whole matrix as a scipy CSR (a copy: for a publish and tests, not requests)."""
        idx = np.int32 if max(self.shape[1], self.nnz) < 2**31 else np.int64
        return sp.csr_matrix(
            (
                np.asarray(self.data, dtype=np.float32),
                np.asarray(self.indices, dtype=idx),
                np.asarray(self.indptr, dtype=idx),
            ),
            shape=self.shape,
        )

    def tocsc(self) -> sp.csc_matrix:
        return self.tocsr().tocsc()
