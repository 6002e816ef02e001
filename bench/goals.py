"""The goals table of issue 13 in one run: four public test tasks, three rankers, a plot.

    python bench/goals.py [--out bench/out] [--reuse-arxiv-sanity] [--tasks a,b]

For each task: paperfeed with sentence embeddings (the default), paperfeed with TF-IDF
(``PAPERFEED_TEXT_MODEL=tfidf``), both fitted exactly as a refit does (self-tuning on the
task's train.csv), and the arxiv-sanity-lite algorithm (per-person LinearSVC). Prints a
markdown table with the goals, writes ``goals.json`` and ``goals.png`` to ``--out``.
Report only: nothing here is tuned on a test task. The SVM takes minutes per task; its
results do not depend on paperfeed's code, so ``--reuse-arxiv-sanity`` reads them from an
earlier ``goals.json``. Needs the embeddings cache warm (PAPERFEED_CACHE_DIR) or ~10 min to
encode the 16,980 papers once.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _common import BENCH

from recommender.evaluate import (
    arxiv_sanity_rankings,
    evaluate_task,
    load_task,
    task_metrics,
)

GOALS = {  # task: (metric, goal)
    "cold-dropoutnet": ("recall@100", 0.72),
    "cold-aldi-test": ("ndcg@20", 0.28),
    "warm-aldi-test": ("ndcg@20", 0.25),
    "one-like": ("recall@300", 0.33),
}
RANKERS = ("embeddings", "tfidf", "arxiv-sanity")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("out"))
    parser.add_argument("--reuse-arxiv-sanity", action="store_true")
    parser.add_argument("--tasks", default=",".join(GOALS))
    parser.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=None,
        help="only print the table and plot from these goals.json files (runs split in parts)",
    )
    args = parser.parse_args()
    if args.merge is not None:
        results = {}
        for path in args.merge:
            results.update(json.loads(path.read_text()))
        results = {name: results[name] for name in GOALS if name in results}
        report(results, args.out)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "goals.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    results: dict = {}
    for name in args.tasks.split(","):
        results[name] = {}
        for text in ("embeddings", "tfidf"):
            r = evaluate_task(BENCH / name, text=text, baselines=False, progress=False)
            results[name][text] = {
                "metrics": r["metrics"],
                "seconds": r["seconds"],
                "tuning_status": r["tuning"]["status"],
            }
            print(f"{name} {text}: {r['metrics'][GOALS[name][0]]:.4f} ({r['seconds']} s)")
        if args.reuse_arxiv_sanity and "arxiv-sanity" in old.get(name, {}):
            results[name]["arxiv-sanity"] = old[name]["arxiv-sanity"]
        else:
            task = load_task(BENCH / name)
            users = sorted(task.test)
            n = max([*task.ks, 20])
            svm = arxiv_sanity_rankings(task, users, n)
            results[name]["arxiv-sanity"] = {"metrics": task_metrics(svm, task.test, task.ks)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**old, **results}, indent=2) + "\n")
        os.replace(tmp, path)
    report(results, args.out)


def report(results: dict, out: Path) -> None:
    """Print the markdown goals table and write the plot."""
    print()
    print("| task | embeddings (default) | TF-IDF | arxiv-sanity algorithm | goal | met? |")
    print("|---|---:|---:|---:|---:|---|")
    for name, per in results.items():
        metric, goal = GOALS[name]
        vals = [per[r]["metrics"][metric] for r in RANKERS]
        met = "yes" if vals[0] >= goal else f"no ({vals[0] - goal:+.4f})"
        cells = " | ".join(f"{v:.4f}" for v in vals)
        print(f"| {name} {metric} | {cells} | ≥ {goal} | {met} |")
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "goals.png")
    print(f"\nwrote {out / 'goals.png'}")


def plot(results: dict, path: Path) -> None:
    """Bars per task: the three rankers and the goal line, each task's own metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3 * len(results), 3.2))
    axes = [axes] if len(results) == 1 else list(axes)
    for ax, (name, per) in zip(axes, results.items(), strict=True):
        metric, goal = GOALS[name]
        vals = [per[r]["metrics"][metric] for r in RANKERS]
        ax.bar(range(3), vals, color=["tab:blue", "tab:orange", "tab:gray"])
        ax.axhline(goal, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xticks(range(3), ["emb.", "tfidf", "arxiv-s."], fontsize=8)
        ax.set_title(f"{name}\n{metric}", fontsize=9)
        for x, v in enumerate(vals):
            ax.text(x, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    main()
