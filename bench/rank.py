"""Time ranking: a 1,000-paper dump for 100,000 synthetic people (top 50 each), and
re-ranking one person after a like (a new person with a few likes, and one with 200
ratings against a 250-paper dump, the web benchmark's shape).

Usage: python bench/rank.py [--people 100000] [--runs 3]. Targets: < 60 s and < 50 ms.
"""

import argparse
import statistics
import time

import numpy as np
from _common import BENCH, median_time

from recommender.evaluate import load_task
from recommender.model import fit_recommender
from recommender.ranking import Profile, rank_for_user, rank_users

parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=100_000)
parser.add_argument("--runs", type=int, default=3)
args = parser.parse_args()
rng = np.random.default_rng(0)
task = load_task(BENCH / "cold-dropoutnet")
rec = fit_recommender(task.texts, task.user_items)
dump = rng.choice(rec.n_items, size=1000, replace=False)  # today's dump
sizes = rng.integers(1, 31, size=args.people)
profiles = [Profile(liked=rng.choice(rec.n_items, size=s, replace=False)) for s in sizes]
med, times = median_time(lambda: rank_users(rec, profiles, candidates=dump, n=50), args.runs)
print(
    f"rank 1,000 papers for {args.people:,} people, top 50: median {med:.1f} s "
    f"({', '.join(f'{t:.1f}' for t in times)})"
)


def rerank_after_likes(person: Profile, candidates: np.ndarray, likes: int = 50) -> str:
    """Like ``likes`` candidates one at a time, re-ranking after each; median and p90 (ms).

    New factors are solved from the person's ratings each time; nothing refits.
    """
    lat = []
    for i in range(likes):
        person.liked = [*person.liked, int(candidates[i])]
        start = time.perf_counter()
        rank_for_user(rec, person, candidates=candidates, n=50)
        lat.append(time.perf_counter() - start)
    return (
        f"median {1000 * statistics.median(lat):.1f} ms "
        f"(p90 {1000 * np.percentile(lat, 90):.1f} ms, {likes} likes)"
    )


newcomer = Profile(liked=list(profiles[0].liked))
print(f"re-rank one person after a like: {rerank_after_likes(newcomer, dump)}")
# Someone with 200 ratings (160 likes, 40 dislikes) and a 250-paper dump.
rated = rng.choice(np.setdiff1d(np.arange(rec.n_items), dump), size=200, replace=False)
heavy = Profile(liked=list(rated[:160]), disliked=list(rated[160:]))
print(
    "re-rank a person with 200 ratings after a like (250 papers): "
    + rerank_after_likes(heavy, dump[:250])
)
