"""Time a full refit (TF-IDF + content + ALS + bridge) at CiteULike scale.

16,980 papers, 5,551 people, ~165k likes (cold-dropoutnet's train.csv).
Usage: python bench/refit.py [--runs 3]. Target: < 60 s (embedding excluded).
"""

import argparse

from _common import BENCH, median_time

from recommender.evaluate import load_task
from recommender.model import fit_recommender

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
args = parser.parse_args()
task = load_task(BENCH / "cold-dropoutnet")
ui = task.user_items
print(f"{ui.shape[1]} papers, {ui.shape[0]} people, {ui.nnz} likes")
med, times = median_time(lambda: fit_recommender(task.texts, ui), args.runs)
print(
    f"full refit: median {med:.1f} s over {args.runs} runs ({', '.join(f'{t:.1f}' for t in times)})"
)
