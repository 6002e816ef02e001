"""The neighbour search against this machine's sgemm floor, in one run.

Dense (embeddings): ``--papers`` unit vectors of ``--dim`` float32 (synthetic: the search's
cost does not depend on what the vectors mean), ``--served`` of them searched for their
``k`` = 200 nearest papers by :meth:`ContentModel.neighbours`. The floor is the same
blocked products alone (``X[block] @ X.T``, no selection), timed in the same run, so the
ratio holds on a loaded machine.

TF-IDF (``--tfidf``, CiteULike texts): the exact sparse search against a TruncatedSVD
search of ``--svd-dims`` dimensions whose neighbours are rescored exactly; prints the
recall of the exact top 200 and the times.

Usage: python bench/neighbours.py [--papers 50728] [--served 15000] [--runs 3] [--tfidf]
"""

import argparse
import statistics
import time

import numpy as np
from _common import BENCH

from recommender.content import ContentModel

parser = argparse.ArgumentParser()
parser.add_argument("--papers", type=int, default=50728)
parser.add_argument("--served", type=int, default=15000)
parser.add_argument("--dim", type=int, default=384)
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--tfidf", action="store_true")
parser.add_argument(
    "--day", type=int, default=0, help="also time a day of this many new papers (extend)"
)
parser.add_argument("--no-full", action="store_true", help="skip the full search (large N)")
parser.add_argument("--svd-dims", default="128,256,384")
args = parser.parse_args()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dense() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.papers, args.dim), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = np.sort(rng.choice(args.papers, args.served, replace=False))
    model = ContentModel(k=200).fit(X)
    XT = np.ascontiguousarray(X.T)
    block = 512

    def floor() -> None:
        for start in range(0, len(rows), block):
            X[rows[start : start + block]] @ XT

    print(
        f"dense {args.papers} papers x {args.dim} dims, {args.served} served, k 200, "
        f"{args.runs} runs (medians):"
    )
    if not args.no_full:
        floors, searches = [], []
        for _ in range(args.runs):  # alternate, so both see the same load
            floors.append(timed(floor))
            searches.append(timed(lambda: model.neighbours(rows)))
        f, s = statistics.median(floors), statistics.median(searches)
        flops = 2 * args.served * args.papers * args.dim
        print(f"  sgemm floor (products alone): {f:.2f} s = {flops / f / 1e9:.0f} GFLOP/s")
        print(f"  neighbours (products + top-200 selection): {s:.2f} s, {s / f:.2f}x the floor")
    if args.day:
        # The last `day` papers are new: served papers searched before them meet only them;
        # the new papers (served from now on) are searched against every paper.
        n_old = args.papers - args.day
        old_rows = rows[rows < n_old]
        new = np.arange(n_old, args.papers)
        # What the old lists hold does not change the cost (tests/test_content.py checks
        # that merging gives a full search's result): random lists spare a full search.
        old_index = rng.integers(0, n_old, (len(old_rows), 200), dtype=np.int32)
        old_sims = rng.random((len(old_rows), 200), dtype=np.float32)
        NT = np.ascontiguousarray(X[new].T)

        def day_floor() -> None:
            for start in range(0, len(old_rows), block):
                X[old_rows[start : start + block]] @ NT
            for start in range(0, len(new), block):
                X[new[start : start + block]] @ XT

        def day() -> None:
            model.merge_neighbours(old_rows, old_index, old_sims, new)
            model.neighbours(new)

        floors, days = [], []
        for _ in range(args.runs):
            floors.append(timed(day_floor))
            days.append(timed(day))
        f, s = statistics.median(floors), statistics.median(days)
        print(
            f"  a day of {args.day} new papers ({len(old_rows)} served lists merged, "
            f"{args.day} searched in full): {s:.2f} s; its products alone {f:.2f} s, "
            f"{s / f:.2f}x the floor"
        )


def tfidf() -> None:
    from sklearn.decomposition import TruncatedSVD

    from recommender.evaluate import load_task
    from recommender.text import TfidfText

    task = load_task(BENCH / "cold-dropoutnet")
    X = TfidfText().fit(task.texts).transform(task.texts)
    rows = np.arange(0, X.shape[0], 4)
    k = 200
    started = time.perf_counter()
    exact, _ = ContentModel(k=k).fit(X).neighbours(rows)
    t_exact = time.perf_counter() - started
    print(
        f"tfidf {X.shape[0]} papers x {X.shape[1]} terms ({X.nnz / X.shape[0]:.0f} per paper), "
        f"{len(rows)} searched: exact sparse search {t_exact:.1f} s"
    )
    for dims in (int(d) for d in args.svd_dims.split(",")):
        started = time.perf_counter()
        Z = TruncatedSVD(dims, random_state=0).fit_transform(X).astype(np.float32)
        Z /= np.linalg.norm(Z, axis=1, keepdims=True) + 1e-12
        t_svd = time.perf_counter() - started
        for wide in (k, 2 * k):
            started = time.perf_counter()
            found, _ = ContentModel(k=wide).fit(Z).neighbours(rows)
            r = np.repeat(rows, wide)
            exact_sims = np.asarray(X[r].multiply(X[found.ravel()]).sum(1)).reshape(found.shape)
            best = np.argpartition(-exact_sims, k - 1, axis=1)[:, :k]
            found = np.take_along_axis(found, best, 1)
            t_search = time.perf_counter() - started
            recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, found, strict=True)])
            print(
                f"  SVD {dims} dims (fit {t_svd:.1f} s), top {wide} rescored exactly: "
                f"search {t_search:.1f} s, recall of the exact top {k} {recall:.3f}"
            )


dense()
if args.tfidf:
    tfidf()
