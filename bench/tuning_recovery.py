"""Does fit-time self-tuning find good weights from a deployment's own ratings alone?

Starts from *wrong* shipped weights (equal weights, ``BlendWeights.default()``) and ranks a
task with and without self-tuning (TF-IDF). Usage:

    python bench/make_validation.py
    python bench/tuning_recovery.py bench/out/val2/val2-cold bench/out/val2/val2-warm

Prints ndcg@20 / recall@100 per task for both. Validation tasks only.
"""

import argparse
from pathlib import Path

import _common  # noqa: F401 (pins BLAS threads)

from recommender.evaluate import _profiles, load_task, task_metrics
from recommender.model import fit_recommender
from recommender.ranking import rank_users
from recommender.weights import BlendWeights

parser = argparse.ArgumentParser()
parser.add_argument("tasks", nargs="+", type=Path)
args = parser.parse_args()
for path in args.tasks:
    task = load_task(path)
    users = sorted(task.test)
    for tune in (False, True):
        rec = fit_recommender(
            task.texts, task.user_items, weights=BlendWeights.default(), tune=tune
        )
        ranked = rank_users(
            rec, _profiles(task, users), candidates=task.candidates, n=100, reasons=False
        )
        rankings = {u: [r.pidx for r in rs] for u, rs in zip(users, ranked, strict=True)}
        m = task_metrics(rankings, task.test, [20, 100])
        label = "equal weights + self-tuning" if tune else "equal weights, untuned"
        print(f"{path.name} {label}: ndcg@20 {m['ndcg@20']:.4f} recall@100 {m['recall@100']:.4f}")
