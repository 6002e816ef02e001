"""Time `evaluate_task` on cold-dropoutnet (TF-IDF fit included, baselines off).

Usage: python bench/evaluate.py [--runs 3] [--task cold-dropoutnet]. Target: < 120 s.
"""

import argparse

from _common import BENCH, median_time

from recommender.evaluate import evaluate_task

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--task", default="cold-dropoutnet")
args = parser.parse_args()
results = []
med, times = median_time(
    lambda: results.append(evaluate_task(BENCH / args.task, baselines=False, progress=False)),
    args.runs,
)
recall = results[-1]["metrics"]["recall@100"]
print(
    f"evaluate {args.task}: median {med:.1f} s over {args.runs} runs "
    f"({', '.join(f'{t:.1f}' for t in times)}); recall@100 {recall:.4f}"
)
