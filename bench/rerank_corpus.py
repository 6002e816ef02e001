"""Re-rank one person over a whole corpus after a like, with the default text model.

The model is fitted on cold-dropoutnet's ratings (16,980 papers) and the candidates'
neighbourhoods are built once, as a publish does; then a person with 160 likes and 40
dislikes likes candidates one at a time, and every like re-ranks all 16,980 papers (top 50,
with reasons and match labels, as the feed asks). Prints the median and p90 latency over
``--likes`` likes, per run, and the median of the runs' medians. Target (issue 16): < 20 ms.

Usage: python bench/rerank_corpus.py [--likes 30] [--runs 3] [--text embeddings]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _common import BENCH

from recommender.evaluate import cache_dir, load_task
from recommender.model import fit_recommender
from recommender.ranking import CandidateIndex, Profile, rank_users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--likes", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--text", default="embeddings")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    task = load_task(BENCH / "cold-dropoutnet")
    started = time.perf_counter()
    rec = fit_recommender(task.texts, task.user_items, text=args.text, cache_dir=cache_dir())
    fitted = time.perf_counter() - started
    everything = np.arange(rec.n_items)
    started = time.perf_counter()
    index = CandidateIndex.build(rec, everything)
    indexed = time.perf_counter() - started
    print(
        f"fit (self-tuning included) {fitted:.1f} s; neighbourhoods of all papers {indexed:.1f} s"
    )
    rng = np.random.default_rng(0)
    medians = []
    for run in range(args.runs):
        rated = rng.choice(rec.n_items, size=200 + args.likes, replace=False)
        person = Profile(liked=list(rated[:160]), disliked=list(rated[160:200]))
        lat = []
        for paper in rated[200:]:
            person.liked = [*person.liked, int(paper)]
            start = time.perf_counter()
            rank_users(rec, [person], candidates=everything, n=50, index=index)
            lat.append(1000 * (time.perf_counter() - start))
        medians.append(statistics.median(lat))
        print(
            f"run {run + 1}: median {medians[-1]:.1f} ms, p90 {np.percentile(lat, 90):.1f} ms "
            f"({len(lat)} likes, {rec.n_items:,} papers)"
        )
    overall = statistics.median(medians)
    print(f"re-rank after a like over {rec.n_items:,} papers: median of runs {overall:.1f} ms")


if __name__ == "__main__":
    main()
