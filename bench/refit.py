"""Time a full refit at CiteULike scale, with and without fit-time self-tuning.

16,980 papers, 5,551 people, ~165k likes (cold-dropoutnet's train.csv); TF-IDF + content +
ALS + bridge, plus (self-tuning, the default) the held-out ALS fit and the weight search.
Usage: python bench/refit.py [--runs 3] [--text tfidf|embeddings]. Target: < 60 s
(embedding encoding excluded: with --text embeddings the cache must be warm).
"""

import argparse
import os
from pathlib import Path

from _common import BENCH, median_time

from recommender.evaluate import load_task
from recommender.model import fit_recommender

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--text", default="tfidf")
args = parser.parse_args()
task = load_task(BENCH / "cold-dropoutnet")
ui = task.user_items
cache = Path(os.environ.get("PAPERFEED_CACHE_DIR", Path.home() / ".cache" / "paperfeed"))
print(f"{ui.shape[1]} papers, {ui.shape[0]} people, {ui.nnz} likes, text {args.text}")
tuned = []
for tune in (False, True):
    med, times = median_time(
        lambda tune=tune: tuned.append(
            fit_recommender(task.texts, ui, text=args.text, cache_dir=cache, tune=tune).tuning_
        ),
        args.runs,
    )
    label = "refit with self-tuning" if tune else "refit without tuning"
    print(
        f"{label}: median {med:.1f} s over {args.runs} runs "
        f"({', '.join(f'{t:.1f}' for t in times)})"
    )
steps = sorted(t["seconds"] for t in tuned if t.get("status") == "tuned")
if steps:
    print(
        "of which self-tuning (held-out ALS fit + weight search): "
        f"median {steps[len(steps) // 2]:.1f} s"
    )
