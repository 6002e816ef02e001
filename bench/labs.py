"""Ranking at the sizes people run: one person, a lab of 5, a lab of 20 (issue 16).

    python bench/labs.py [--split labs-test] [--out bench/out] [--reuse-arxiv-sanity]

For every task of the split (``lab1-g*``, ``lab5-g*``, ``lab20-g*``, format in
``shared/bench/README.md``) and every group size, three rankings of the same people:

- **group**: paperfeed's default configuration fitted on the group's ratings, exactly as a
  refit does (self-tuning included);
- **alone**: each member fitted and ranked as a one-person install (only their ratings);
- **arxiv-sanity**: the arxiv-sanity-lite algorithm (per-person LinearSVC on TF-IDF, every
  other paper a negative), which never sees colleagues either.

Prints per size the people-weighted recall@100 and ndcg@20 of each, the ratios to the
arxiv-sanity algorithm, and group against alone; writes ``labs-<split>.json`` and a plot of
quality against group size (``labs-<split>.png``) to ``--out``. Tune on ``labs-val`` only;
``labs-test`` is for reporting. The SVM takes a few minutes and does not depend on
paperfeed's code, so ``--reuse-arxiv-sanity`` reads it from an earlier JSON of the split.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _common import BENCH

from recommender.evaluate import (
    arxiv_sanity_rankings,
    fit_and_rank,
    load_task,
    one_person,
    task_metrics,
)
from recommender.text import default_text_kind

METRICS = ("recall@100", "ndcg@20")
RANKERS = ("group", "alone", "arxiv-sanity")


def run(split: str, text: str, old: dict, progress: bool) -> dict:
    """Per-person metrics of every ranker on every task of ``split``."""
    per_person: dict[str, dict[str, dict]] = {r: {} for r in RANKERS}
    sizes: dict[str, int] = {}
    tasks = sorted(p for p in (BENCH / split).iterdir() if (p / "task.json").exists())
    for n, task_dir in enumerate(tasks, 1):
        started = time.perf_counter()
        task = load_task(task_dir)
        size = len(task.user_ids)
        users = sorted(task.test)
        _, group = fit_and_rank(task, text=text)
        for u in users:
            key = f"{task.name}/{task.user_ids[u]}"
            sizes[key] = size
            per_person["group"][key] = task_metrics({u: group[u]}, {u: task.test[u]}, [100])
            if size == 1:
                per_person["alone"][key] = per_person["group"][key]
            else:
                _, alone = fit_and_rank(one_person(task, u), text=text)
                per_person["alone"][key] = task_metrics({u: alone[u]}, {u: task.test[u]}, [100])
        reuse = old.get("per_person", {}).get("arxiv-sanity", {})
        if all(f"{task.name}/{task.user_ids[u]}" in reuse for u in users):
            for u in users:
                key = f"{task.name}/{task.user_ids[u]}"
                per_person["arxiv-sanity"][key] = reuse[key]
        else:
            svm = arxiv_sanity_rankings(task, users, 100)
            for u in users:
                key = f"{task.name}/{task.user_ids[u]}"
                per_person["arxiv-sanity"][key] = task_metrics(
                    {u: svm[u]}, {u: task.test[u]}, [100]
                )
        if progress:
            took = time.perf_counter() - started
            print(
                f"  [{n}/{len(tasks)}] {task.name}: {len(users)} people, {took:.1f} s", flush=True
            )
    return {"split": split, "text": text, "sizes": sizes, "per_person": per_person}


def summary(result: dict) -> dict[int, dict[str, dict[str, float]]]:
    """People-weighted mean of each metric per group size and ranker."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for size in sorted(set(result["sizes"].values())):
        keys = [k for k, s in result["sizes"].items() if s == size]
        out[size] = {
            r: {m: sum(result["per_person"][r][k][m] for k in keys) / len(keys) for m in METRICS}
            | {"people": len(keys)}
            for r in RANKERS
        }
    return out


def table(result: dict) -> str:
    rows = [
        "| group size | people | paperfeed (group) | alone | arxiv-sanity | ratio to arxiv-sanity "
        "| group / alone |",
        "|---|---:|---|---|---|---|---|",
    ]
    for size, s in summary(result).items():
        g, a, b = s["group"], s["alone"], s["arxiv-sanity"]

        def pair(x):
            return f"{x['recall@100']:.4f} / {x['ndcg@20']:.4f}"

        def ratio(x, y):
            return " / ".join(f"{x[m] / y[m]:.2f}×" if y[m] else "–" for m in METRICS)

        rows.append(
            f"| {size} | {g['people']} | {pair(g)} | {pair(a)} | {pair(b)} | {ratio(g, b)} "
            f"| {ratio(g, a)} |"
        )
    return "\n".join(rows)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(result)
    sizes = list(s)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, METRICS, strict=True):
        for ranker, style in zip(RANKERS, ("o-", "s--", "^:"), strict=True):
            ax.plot(sizes, [s[n][ranker][metric] for n in sizes], style, label=ranker)
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("people in the install")
        ax.set_ylabel(metric)
        ax.set_title(f"{result['split']}: {metric}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="labs-test", help="labs-val (tuning) or labs-test")
    parser.add_argument("--text", default=None, help="default: what a refit uses")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("out"))
    parser.add_argument("--reuse-arxiv-sanity", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    text = args.text or default_text_kind()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"labs-{args.split}.json"
    old = json.loads(path.read_text()) if args.reuse_arxiv_sanity and path.exists() else {}
    started = time.perf_counter()
    result = run(args.split, text, old, progress=True)
    result["summary"] = summary(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    path.write_text(json.dumps(result, indent=1))
    plot(result, args.out / f"labs-{args.split}.png")
    print(f"{args.split}, text model {text}, {result['seconds']} s")
    print(table(result))


if __name__ == "__main__":
    main()
