"""Why a paper is shown: the liked paper it is closest to, or the key terms it shares.

:func:`explain` turns each person's chosen candidate positions into :class:`Ranked` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Ranked:
    """One ranked paper: its row, blended score and a short human-readable reason.

    ``because_pidx`` is the liked paper it is closest to (or ``None``); ``terms`` are key terms
    it shares with the person's likes or query (TF-IDF only).
    """

    pidx: int
    score: float
    reason: str
    because_pidx: int | None = None
    terms: tuple[str, ...] = ()


def explain(rec, profiles, ctx, feats, scores, tops, reasons, terms_list) -> list[list[Ranked]]:
    """Turn each person's top positions into :class:`Ranked` rows with their reasons."""
    out = []
    if not reasons:
        for i, top in enumerate(tops):
            pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
            out.append(
                [Ranked(p, s, "recommended") for p, s in zip(pidxs, row_scores, strict=True)]
            )
        return out
    because_of = _block_because(rec, profiles, ctx, tops)
    terms_of = (
        _block_terms(rec, profiles, ctx, tops, terms_list) if terms_list is not None else None
    )
    similar: dict[int, str] = {}
    for i, top in enumerate(tops):
        pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
        because = because_of[i]
        row_terms = terms_of[i] if terms_of is not None else [()] * len(top)
        if because is not None:
            why = [
                similar.get(b) or similar.setdefault(b, f"similar to a paper you liked (#{b})")
                for b in because
            ]
            because_list = because
        else:
            collab_wins = (feats["collab"][i, top] > feats["centroid"][i, top]).tolist()
            why = [
                "matches " + ", ".join(t)
                if t
                else ("liked by people with similar taste" if cw else "recommended")
                for t, cw in zip(row_terms, collab_wins, strict=True)
            ]
            because_list = [None] * len(top)
        out.append(
            [
                Ranked(p, s, r, b, t)
                for p, s, r, b, t in zip(
                    pidxs, row_scores, why, because_list, row_terms, strict=True
                )
            ]
        )
    return out


def _block_because(rec, profiles, ctx, tops) -> list[list[int] | None]:
    """For each shown paper, the person's liked paper it is most similar to (first on ties).

    Similarities are computed for the shown papers only (a block's few hundred), against
    every liked paper of the block, in one product.
    """
    B = len(profiles)
    liked = [np.asarray(p.liked, dtype=np.int64).ravel() for p in profiles]
    lens = np.fromiter((len(x) for x in liked), np.int64, B)
    widths = np.fromiter((len(t) for t in tops), np.int64, B)
    out: list[list[int] | None] = [None] * B
    if not lens.any() or not widths.any():
        return out
    k, m = int(lens.max()), int(widths.max())
    pad_liked = np.zeros((B, k), np.int64)
    pad_shown = np.zeros((B, m), np.int64)
    for i in range(B):
        pad_liked[i, : lens[i]] = liked[i]
        pad_shown[i, : widths[i]] = ctx.candidates[np.asarray(tops[i], dtype=np.int64)]
    rows, row_of = np.unique(pad_liked, return_inverse=True)
    cols, col_of = np.unique(pad_shown, return_inverse=True)
    table = rec.content.similarity(rows, cols)
    row_of, col_of = row_of.reshape(B, k), col_of.reshape(B, m)
    sims = table[row_of[:, :, None], col_of[:, None, :]]  # (B, k, m)
    sims[np.arange(k)[None, :] >= lens[:, None]] = -np.inf  # padding never wins
    best = np.take_along_axis(pad_liked, np.argmax(sims, axis=1), axis=1)  # (B, m)
    for i in np.flatnonzero(lens):
        out[i] = best[i, : widths[i]].tolist()
    return out


def _row_entries(M: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Positions in ``M.data``/``M.indices`` of the stored entries of ``rows``, row by row."""
    starts, ends = M.indptr[rows], M.indptr[rows + 1]
    lens = ends - starts
    return np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))


def _block_terms(rec, profiles, ctx, tops, terms_list, n_terms: int = 3):
    """Top TF-IDF terms each shown paper shares with its person's likes and query.

    A person's profile is the sum of their liked papers' vectors plus their query's,
    summed with one ``bincount`` per block of people into a dense (people x terms)
    scratch: no sparse products, so one person costs a few array operations.
    """
    B = len(profiles)
    lens = np.fromiter((len(t) for t in tops), np.int64, B)
    if not lens.sum():
        return [[] for _ in range(B)]
    V = rec.item_vectors.shape[1]
    vectors = rec.item_vectors
    # each person's liked rows, in pidx order (a canonical summation order)
    liked = [np.sort(np.asarray(p.liked, dtype=np.int64).ravel()) for p in profiles]
    n_liked = np.fromiter((len(x) for x in liked), np.int64, B)
    flat_liked = np.concatenate([np.zeros(0, np.int64), *liked])
    liked_owner = np.repeat(np.arange(B), n_liked)
    queries = {i: rec.text.transform([p.query]).tocsr() for i, p in enumerate(profiles) if p.query}
    owner = np.repeat(np.arange(B), lens)
    X = vectors[ctx.candidates[np.concatenate(tops).astype(np.int64)]].tocsr()
    X.sort_indices()  # products in term order: ties keep the first term
    x_row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    x_owner = owner[x_row]
    # profile weight at each (shown paper, term), a block of people at a time
    weight = np.zeros(len(X.data), dtype=np.float64)
    step = 256
    x_starts = np.searchsorted(x_owner, np.arange(0, B + step, step))
    l_starts = np.searchsorted(liked_owner, np.arange(0, B + step, step))
    for j, start in enumerate(range(0, B, step)):
        stop = min(start + step, B)
        rows = flat_liked[l_starts[j] : l_starts[j + 1]]
        whose = liked_owner[l_starts[j] : l_starts[j + 1]] - start
        at = _row_entries(vectors, rows)
        per_row = vectors.indptr[rows + 1] - vectors.indptr[rows]
        keys = [np.repeat(whose, per_row) * V + vectors.indices[at].astype(np.int64)]
        vals = [vectors.data[at].astype(np.float64)]
        for i in range(start, stop):
            if i in queries:
                q = queries[i]
                keys.append((i - start) * V + q.indices.astype(np.int64))
                vals.append(q.data.astype(np.float64))
        scratch = np.bincount(
            np.concatenate(keys), weights=np.concatenate(vals), minlength=(stop - start) * V
        )
        a, b = x_starts[j], x_starts[j + 1]
        weight[a:b] = scratch[(x_owner[a:b] - start) * V + X.indices[a:b]]
    prod = X.data * weight
    nz = np.flatnonzero(prod)
    order = nz[np.lexsort((-prod[nz], x_row[nz]))]
    rows = x_row[order]
    first = np.searchsorted(rows, rows)  # start of each row's run
    keep = order[np.arange(len(order)) - first < n_terms]
    words = [terms_list[t] for t in X.indices[keep].tolist()]
    bounds = np.searchsorted(x_row[keep], np.arange(X.shape[0] + 1)).tolist()
    per_item = [tuple(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out, at = [], 0
    for k in lens.tolist():
        out.append(per_item[at : at + k])
        at += k
    return out
