"""The content signals written the slow, obvious way: the definitions the fast path in
:mod:`recommender.features` is checked against (tests only; production never calls these).
"""

from __future__ import annotations

import numpy as np


def neighbour_floor(model, rows) -> np.ndarray:
    """For each paper in ``rows``, the similarity of its ``k``-th nearest other paper."""
    rows = np.asarray(rows, dtype=np.int64)
    k = min(model.k, model.n_items_ - 1)
    sims = model.similarity(rows, None)
    sims[np.arange(len(rows)), rows] = -np.inf  # a paper is not its own neighbour
    return np.partition(sims, -k, axis=1)[:, -k].astype(np.float32)


def score_parts(model, sim_liked, sim_disliked=None, *, floor=None, sim_query=None) -> dict:
    """``centroid`` and ``knn`` from similarities (candidates x liked / disliked papers):
    centroid = mean similarity to the likes (a query counting as one more), knn = summed
    similarity to the likes at least as close as the candidate's floor; a dislike lowers both
    by the mean similarity to the dislikes (knn times sqrt(likes))."""
    n = sim_liked.shape[0]
    cols = [sim_liked] if sim_liked.shape[1] else []
    if sim_query is not None:
        cols.append(np.asarray(sim_query, dtype=np.float32).reshape(n, 1))
    centroid = np.hstack(cols).mean(axis=1) if cols else np.zeros(n, np.float32)
    if sim_liked.shape[1]:
        near = sim_liked >= floor[:, None] if floor is not None else np.ones_like(sim_liked, bool)
        knn = np.where(near, sim_liked, 0.0).sum(axis=1)
    else:
        knn = centroid.copy()
    if sim_disliked is not None and sim_disliked.shape[1]:
        penalty = model.dislike_weight * sim_disliked.mean(axis=1)
        centroid = centroid - penalty
        knn = knn - penalty * max(1.0, float(sim_liked.shape[1]) ** 0.5)
    return {"centroid": centroid.astype(np.float32), "knn": knn.astype(np.float32)}


def assert_same_neighbourhoods(got: list[dict], want: list[dict]) -> None:
    """Each candidate's neighbours (``{paper: similarity}`` per candidate) are the same, but
    for papers tied at its least similarity: the stored similarities are float16, so a
    publish that merges new papers into stored lists compares a new paper's similarity
    with a rounded one, and can keep one paper where a full search keeps another whose
    similarity rounds to the same value (rounding keeps order, so only at the k-th)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert sorted(g.values()) == sorted(w.values())
        least = min(w.values(), default=None)
        assert {j: v for j, v in g.items() if v != least} == {
            j: v for j, v in w.items() if v != least
        }
