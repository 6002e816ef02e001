"""Rows stored as int8 codes with one float32 scale per row.

A bundle's dense per-paper arrays (the embeddings' unit vectors, the collaborative
factors) are what every view reads for every candidate, and most of a bundle's bytes:
118.5 MB of float32 at 50,728 papers. :class:`Int8Rows` holds row ``i`` as
``scales[i] * codes[i]`` with ``codes`` in ``[-127, 127]`` (``scales[i]``: the row's
largest magnitude / 127), a quarter of the bytes. A row's rounding error is at most half a
step, 0.4% of its largest entry; the models are fitted with the rounded values
(:func:`recommender.model.fit_recommender` quantizes the vectors before any model sees
them, :class:`recommender.collab.CollabModel` its factors before it publishes them), so
what is served is what was fitted and tuned, not an approximation of it.

Why int8 and not float16: numpy widens float16 at ~1.7 ns an element on this machine (no
vector instructions for that cast), 30 ms for 46,000 x 384, while int8 widens at memory
speed, so the view's blocked products cost what float32's did (4.7 against 4.0 ms for three
rows over 46,228 candidates, ``/work/notes/s6``) and read a quarter of the bytes.

Reading: ``X[key]`` (any numpy row selection: an index, a slice, an array of rows, 2-D
included) gives the rows as float32; :meth:`Int8Rows.rows` is a view of consecutive rows
that stays int8 (a served window's candidates, shared by every worker through the mapped
file); ``np.asarray(X)`` widens everything (a publish, never a request). The kernels that
read every candidate (:func:`recommender.features._dense_products`,
:func:`recommender.features.factor_scores`) widen a cache-sized block at a time and apply
the scales after the product.
"""

from __future__ import annotations

import numpy as np

from .neighbourhoods import used_columns

#: The largest code: symmetric, so a row and its negation round alike.
CODE_MAX = 127
#: Rows widened at a time by :meth:`Int8Rows.dense` and the products (4,096 x 384 float32:
#: 6 MB).
WIDEN_ROWS = 4096


class Int8Rows:
    """A read-only ``(n, dim)`` float32 matrix stored as ``scales[:, None] * codes``."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, codes: np.ndarray, scales: np.ndarray):
        if codes.ndim != 2 or scales.ndim != 1 or len(codes) != len(scales):
            raise ValueError(
                f"int8 rows need (n, dim) codes and n scales, got {codes.shape} and {scales.shape}"
            )
        if codes.dtype != np.int8 or scales.dtype != np.float32:
            raise ValueError(
                f"int8 rows need int8 codes and float32 scales, got "
                f"{codes.dtype} and {scales.dtype}"
            )
        self.codes, self.scales = codes, scales

    @classmethod
    def quantize(cls, X) -> Int8Rows:
        """The nearest int8 rows to ``X`` (rows of zeros get scale 1)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"int8 rows quantize a 2-D array, got shape {X.shape}")
        peak = np.abs(X).max(axis=1) if X.shape[1] else np.zeros(len(X), np.float32)
        if not np.isfinite(peak).all():  # else NaN or inf would become arbitrary codes
            bad = np.flatnonzero(~np.isfinite(peak))
            raise ValueError(
                f"cannot store non-finite values as int8 rows: {len(bad)} row(s), the first "
                f"{int(bad[0])}"
            )
        scales = (peak / np.float32(CODE_MAX)).astype(np.float32)
        scales[~(scales > 0)] = 1.0
        codes = np.empty(X.shape, np.int8)
        for start in range(0, len(X), WIDEN_ROWS):
            part = slice(start, start + WIDEN_ROWS)
            q = np.rint(X[part] / scales[part, None])
            codes[part] = np.clip(q, -CODE_MAX, CODE_MAX)
        return cls(codes, scales)

    @classmethod
    def of(cls, X) -> Int8Rows:
        """``X`` itself if it is int8 rows, else :meth:`quantize` of it (a model loaded
        from a bundle of format 5 or before, when it is published again)."""
        return X if isinstance(X, Int8Rows) else cls.quantize(X)

    @classmethod
    def concat(cls, parts) -> Int8Rows:
        parts = list(parts)
        return cls(
            np.concatenate([p.codes for p in parts]), np.concatenate([p.scales for p in parts])
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scales.nbytes)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def __getitem__(self, key) -> np.ndarray:
        """The selected rows as float32 (a copy)."""
        if isinstance(key, tuple):
            raise TypeError("Int8Rows selects rows only; take columns of X[rows]")
        codes = np.asarray(self.codes[key])
        scales = np.asarray(self.scales[key], dtype=np.float32)
        return codes.astype(np.float32) * scales[..., None]

    def take(self, rows) -> Int8Rows:
        """The rows ``rows`` (an index array), still int8 (a copy)."""
        return Int8Rows(self.codes[rows], self.scales[rows])

    def rows(self, start: int, stop: int) -> Int8Rows:
        """Rows ``start:stop`` as a view (still int8, still mapped)."""
        return Int8Rows(self.codes[start:stop], self.scales[start:stop])

    def dense(self) -> np.ndarray:
        """Every row as float32 (a copy: a publish or a fit, not a request)."""
        out = np.empty(self.shape, np.float32)
        for start in range(0, len(self), WIDEN_ROWS):
            stop = min(start + WIDEN_ROWS, len(self))
            np.multiply(self.codes[start:stop], self.scales[start:stop, None], out=out[start:stop])
        return out

    def astype(self, dtype) -> np.ndarray:
        """Every row widened to ``dtype`` (a copy), as ``ndarray.astype``."""
        return self.dense().astype(dtype, copy=False)

    def __array__(self, dtype=None, copy=None):
        out = self.dense()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __matmul__(self, other) -> np.ndarray:
        """``X @ other`` for a dense ``(dim, m)`` or ``(dim,)`` operand, a block at a time."""
        other = np.asarray(other, dtype=np.float32)
        out = np.empty((len(self),) + other.shape[1:], np.float32)
        for start in range(0, len(self), WIDEN_ROWS):
            stop = min(start + WIDEN_ROWS, len(self))
            out[start:stop] = self[start:stop] @ other
        return out


def rows_times(M, X):
    """``M @ X`` for a sparse ``(people, n_items)`` selection of papers ``M``: with int8 rows,
    only the papers ``M`` names are widened (a person's liked rows, not the corpus)."""
    if not isinstance(X, Int8Rows):
        return M @ X
    used, picked = used_columns(M)
    return np.asarray(picked @ X[used], dtype=np.float32)
