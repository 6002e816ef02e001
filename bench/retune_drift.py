"""How far the tuned blend weights move when the ratings change, against the tuning's own noise.

A refit reuses the blend weights an earlier refit tuned while at most
``refit.RETUNE_RATINGS_SHARE`` of the ratings changed since. This measures what that costs:
the weights tuned on the ratings (hold-out seed 0) against those tuned with another
hold-out seed on the same ratings (the tuning's own noise: a re-tune on unchanged ratings
moves this far), and against those tuned (seed 0) after a share of the ratings changed:
half of the changes likes removed at random, half new likes of random papers by random
people. Prints the largest and the mean absolute difference over every learned weight
(cold and warm regimes, every band, with and without the collaborative signal).

The corpus is ``bench/versus_compute.py``'s (built there; embeddings from its synthetic
cache). Usage: OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/retune_drift.py
[--papers 50728] [--shares 0.05 0.2] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from scale import OUT

from recommender import store
from recommender.model import fit_recommender
from recommender.refit import _user_items
from recommender.text import paper_text


def learned(rec) -> np.ndarray:
    """Every blend weight of ``rec``, in one fixed order."""
    w = rec.weights
    values = []
    for table in (w.weights, w.content or {}):
        for regime in sorted(table):
            for band in sorted(table[regime]):
                values += [table[regime][band][f] for f in sorted(table[regime][band])]
    return np.asarray(values)


def changed(user_items: sp.csr_matrix, share: float, rng) -> sp.csr_matrix:
    """``user_items`` with ``share`` of its ratings changed: half removed, half added."""
    coo = user_items.tocoo()
    n = int(round(share * coo.nnz))
    keep = np.ones(coo.nnz, bool)
    keep[rng.choice(coo.nnz, size=n // 2, replace=False)] = False
    rows = rng.integers(0, user_items.shape[0], size=n - n // 2)
    cols = rng.integers(0, user_items.shape[1], size=n - n // 2)
    out = sp.csr_matrix(
        (
            np.concatenate([coo.data[keep], np.ones(len(rows), np.float32)]),
            (np.concatenate([coo.row[keep], rows]), np.concatenate([coo.col[keep], cols])),
        ),
        shape=user_items.shape,
    )
    out.data[:] = np.sign(out.data)  # a new like of an already liked paper stays one like
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=50728)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = OUT / f"versus-{args.papers}"
    db = store.open_db(data / "paperfeed.db")
    papers = store.all_papers(db)
    pidx_of = {pid: i for i, (pid, _, _) in enumerate(papers)}
    ratings = [(u, pidx_of[p], v) for u, p, v in store.all_ratings(db) if p in pidx_of]
    user_items = _user_items(ratings, len(papers))
    texts = [paper_text(t, a) for _, t, a in papers]

    def tune(matrix, seed: int) -> np.ndarray:
        rec = fit_recommender(
            texts,
            matrix,
            text="embeddings",
            cache_dir=data / "cache",
            seed=seed,
            threads=args.threads,
        )
        assert rec.tuning_["status"] == "tuned", rec.tuning_["status"]
        return learned(rec)

    base = tune(user_items, 0)
    rows = [("same ratings, hold-out seed 1", tune(user_items, 1))]
    rng = np.random.default_rng(1)
    for share in args.shares:
        rows.append(
            (
                f"{share:.0%} of the ratings changed, seed 0",
                tune(changed(user_items, share, rng), 0),
            )
        )
    print(f"\n{args.papers} papers, {user_items.nnz} ratings; weights against seed 0's:")
    for label, w in rows:
        diff = np.abs(w - base)
        print(f"  {label:<40} max |diff| {diff.max():.4f}  mean |diff| {diff.mean():.4f}")


if __name__ == "__main__":
    main()
