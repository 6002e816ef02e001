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

    python bench/labs.py --interests [--split labs-test]

runs interests instead (issue 18): a person with two interests is simulated by merging the
likes of two one-person seeds (``lab1-gA`` and ``lab1-gB``, every pair of the split), in one
one-person install that knows both. The **blended** ranking is today's single profile of
every like; **per interest** ranks each seed's likes on its own, every paper kept in its
best section (:func:`recommender.ranking.best_sections`, what the feed does). Each seed's
held-out papers are scored against the blended list and against its own section (top 100
and top 20 of each). Prints both, their ratios, and how many seeds per-interest ranking beats.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _common import BENCH

from recommender.evaluate import (
    Task,
    arxiv_sanity_rankings,
    cache_dir,
    fit_and_rank,
    load_task,
    one_person,
    task_metrics,
)
from recommender.model import fit_recommender
from recommender.ranking import Profile, best_sections, rank_users
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


def merged(a: Task, b: Task) -> tuple[Task, np.ndarray, np.ndarray]:
    """One person with the likes of the one-person tasks ``a`` and ``b`` (the same corpus):
    the merged task and each seed's liked rows."""
    likes_a, likes_b = (t.user_items[0].indices[t.user_items[0].data > 0] for t in (a, b))
    liked = np.union1d(likes_a, likes_b)
    ui = sp.csr_matrix(
        (np.ones(len(liked), np.float32), (np.zeros(len(liked), np.int64), liked)),
        shape=(1, len(a.item_ids)),
    )
    task = Task(
        f"{a.name}+{b.name}",
        a.spec,
        a.item_ids,
        a.texts,
        ["merged"],
        ui,
        {0: a.test[0] | b.test[0]},
        {0: a.mask.get(0, set()) | b.mask.get(0, set())},
        np.union1d(a.candidates, b.candidates),
    )
    return task, likes_a, likes_b


def rank_pair(a: Task, b: Task, text: str) -> dict[str, dict[str, dict]]:
    """Each seed's metrics against the blended list and against its own section."""
    task, likes_a, likes_b = merged(a, b)
    rec = fit_recommender(task.texts, task.user_items, text=text, cache_dir=cache_dir())
    exclude = task.mask[0]
    whole = len(task.candidates)
    blended, own_a, own_b = rank_users(
        rec,
        [
            Profile(liked=np.sort(np.union1d(likes_a, likes_b)), exclude=exclude, uidx=0),
            Profile(liked=likes_a, exclude=exclude),
            Profile(liked=likes_b, exclude=exclude),
        ],
        candidates=task.candidates,
        n=whole,
        reasons=False,
    )
    section_a, section_b = best_sections([own_a, own_b])
    out = {}
    for seed, section in ((a, section_a), (b, section_b)):
        truth = {0: seed.test[0]}
        out[seed.name] = {
            "blended": task_metrics({0: [r.pidx for r in blended]}, truth, [50, 100]),
            "interest": task_metrics({0: [r.pidx for r in section]}, truth, [50, 100]),
        }
    return out


def run_interests(split: str, text: str, progress: bool) -> dict:
    """Every pair of the split's one-person seeds, merged into one person with two interests."""
    seeds = sorted(p for p in (BENCH / split).glob("lab1-g*") if (p / "task.json").exists())
    tasks = [load_task(p) for p in seeds]
    pairs = [(i, j) for i in range(len(tasks)) for j in range(i + 1, len(tasks))]
    per_seed: list[dict] = []
    for n, (i, j) in enumerate(pairs, 1):
        started = time.perf_counter()
        for name, metrics in rank_pair(tasks[i], tasks[j], text).items():
            per_seed.append({"pair": f"{tasks[i].name}+{tasks[j].name}", "seed": name, **metrics})
        if progress:
            took = time.perf_counter() - started
            print(f"  [{n}/{len(pairs)}] {tasks[i].name}+{tasks[j].name}: {took:.1f} s", flush=True)
    return {"split": split, "text": text, "per_seed": per_seed}


def interests_table(result: dict) -> str:
    rows = result["per_seed"]
    mean = {
        r: {m: float(np.mean([x[r][m] for x in rows])) for m in METRICS}
        for r in ("blended", "interest")
    }
    wins = {m: sum(x["interest"][m] > x["blended"][m] for x in rows) for m in METRICS}
    ties = {m: sum(x["interest"][m] == x["blended"][m] for x in rows) for m in METRICS}
    same = {
        "better": sum(x["interest"]["recall@50"] > x["blended"]["recall@100"] for x in rows),
        "tied": sum(x["interest"]["recall@50"] == x["blended"]["recall@100"] for x in rows),
    }
    i50 = float(np.mean([x["interest"]["recall@50"] for x in rows]))
    b, i = mean["blended"], mean["interest"]
    return "\n".join(
        [
            "| seeds (pairs x 2) | blended | per interest | ratio | per interest better / tied |",
            "|---:|---|---|---|---|",
            f"| {len(rows)} | {b['recall@100']:.4f} / {b['ndcg@20']:.4f} "
            f"| {i['recall@100']:.4f} / {i['ndcg@20']:.4f} "
            f"| {i['recall@100'] / b['recall@100']:.2f}× / {i['ndcg@20'] / b['ndcg@20']:.2f}× "
            f"| {wins['recall@100']} / {ties['recall@100']} (recall@100), "
            f"{wins['ndcg@20']} / {ties['ndcg@20']} (ndcg@20) |",
            "",
            "The same room for both (two sections of 50 against one list of 100): "
            f"recall@50 per interest {i50:.4f} against recall@100 blended "
            f"{b['recall@100']:.4f}, {i50 / b['recall@100']:.2f}×; better / tied "
            f"{same['better']} / {same['tied']} of {len(rows)} seeds.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="labs-test", help="labs-val (tuning) or labs-test")
    parser.add_argument("--text", default=None, help="default: what a refit uses")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("out"))
    parser.add_argument("--reuse-arxiv-sanity", action="store_true")
    parser.add_argument("--interests", action="store_true", help="two seeds merged (issue 18)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    text = args.text or default_text_kind()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.interests:
        started = time.perf_counter()
        result = run_interests(args.split, text, progress=True)
        result["seconds"] = round(time.perf_counter() - started, 1)
        (args.out / f"interests-{args.split}.json").write_text(json.dumps(result, indent=1))
        print(f"{args.split} interests, text model {text}, {result['seconds']} s")
        print(interests_table(result))
        return
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
