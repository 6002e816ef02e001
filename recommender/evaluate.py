"""Offline evaluation on benchmark task folders (format: shared/bench/README.md).

:func:`evaluate_task` fits every model on ``train.csv`` plus all item texts, ranks the
task's candidates for every evaluated person through :func:`recommender.ranking.rank_users`
(the same path the feeds use), and computes recall@K, precision@20 and ndcg@20 exactly as the
README defines them. Two baselines run alongside: a TF-IDF centroid and arxiv-sanity-lite's
per-person linear SVM.

``python -m recommender.evaluate --learn-weights TASK_DIR`` learns the ranking blend weights
(tune on cold-aldi-val only) and writes them to ``recommender/weights.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.fsio import atomic_write_text
from recommender.model import Recommender, fit_recommender
from recommender.ranking import Profile, rank_users
from recommender.text import paper_text
from recommender.weights import BAND_EDGES, BANDS, WEIGHTS_PATH

# -- metrics (README: per user, then averaged) ------------------------------------------------


def recall_at_k(ranked: list | np.ndarray, relevant: set, k: int) -> float:
    """|ranked[:k] ∩ relevant| / |relevant| (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return len(set(list(ranked)[:k]) & relevant) / len(relevant)


def precision_at_k(ranked: list | np.ndarray, relevant: set, k: int) -> float:
    """|ranked[:k] ∩ relevant| / k."""
    return len(set(list(ranked)[:k]) & relevant) / k


def ndcg_at_k(ranked: list | np.ndarray, relevant: set, k: int) -> float:
    """Binary-gain NDCG@k: Σ 1/log2(rank+1) over hits in ranked[:k]; ideal over min(k, |G|)."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(r + 2) for r, item in enumerate(list(ranked)[:k]) if item in relevant)
    idcg = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return float(dcg / idcg)


def task_metrics(
    rankings: dict[str, list], truth: dict[str, set], ks: list[int]
) -> dict[str, float]:
    """Average recall@K for every K in ``ks``, precision@20 and ndcg@20 over ``truth``'s users."""
    users = list(truth)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean([recall_at_k(rankings[u], truth[u], k) for u in users]))
    out["precision@20"] = float(np.mean([precision_at_k(rankings[u], truth[u], 20) for u in users]))
    out["ndcg@20"] = float(np.mean([ndcg_at_k(rankings[u], truth[u], 20) for u in users]))
    return out


# -- task loading -----------------------------------------------------------------------------


@dataclass
class Task:
    """A loaded task folder, with ids mapped to matrix rows."""

    name: str
    spec: dict
    item_ids: list[str]
    texts: list[str]
    user_ids: list[str]
    user_items: sp.csr_matrix  # people x papers, +1 like / -1 dislike
    test: dict[int, set[int]]  # uidx -> held-out liked pidx
    mask: dict[int, set[int]]
    candidates: np.ndarray

    @property
    def ks(self) -> list[int]:
        return [int(k) for k in self.spec.get("k", [20, 50, 100])]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_task(task_dir: Path) -> Task:
    """Read ``task.json``, the shared items file, train/test/mask CSVs and candidates."""
    task_dir = Path(task_dir)
    spec_path = task_dir / "task.json"
    if not spec_path.exists():
        raise FileNotFoundError(f"{task_dir} is not a task folder: it has no task.json")
    spec = json.loads(spec_path.read_text())
    items_path = (task_dir / spec.get("items", "items.jsonl")).resolve()
    item_ids, texts = [], []
    with open(items_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                item_ids.append(str(obj["id"]))
                texts.append(paper_text(obj.get("title", ""), obj.get("abstract", "")))
    pidx = {i: n for n, i in enumerate(item_ids)}
    train = _read_csv(task_dir / "train.csv")
    test_rows = _read_csv(task_dir / "test.csv")
    mask_rows = _read_csv(task_dir / "mask.csv") if (task_dir / "mask.csv").exists() else []
    user_ids: list[str] = []
    uidx: dict[str, int] = {}
    for row in (*train, *test_rows):
        if row["user"] not in uidx:
            uidx[row["user"]] = len(user_ids)
            user_ids.append(row["user"])
    rows = [uidx[r["user"]] for r in train]
    cols = [pidx[r["item"]] for r in train]
    vals = [1.0 if float(r.get("value") or 1) > 0 else -1.0 for r in train]
    user_items = sp.csr_matrix(
        (np.asarray(vals, np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    user_items.sum_duplicates()
    user_items.data = np.sign(user_items.data)
    test: dict[int, set[int]] = {}
    for r in test_rows:
        test.setdefault(uidx[r["user"]], set()).add(pidx[r["item"]])
    mask: dict[int, set[int]] = {}
    for r in mask_rows:
        if r["user"] in uidx and r["item"] in pidx:
            mask.setdefault(uidx[r["user"]], set()).add(pidx[r["item"]])
    cand_ids = [c.strip() for c in (task_dir / "candidates.txt").read_text().split() if c.strip()]
    candidates = np.asarray([pidx[c] for c in cand_ids], dtype=np.int64)
    return Task(
        spec.get("name", task_dir.name),
        spec,
        item_ids,
        texts,
        user_ids,
        user_items,
        test,
        mask,
        candidates,
    )


def _profiles(task: Task, users: list[int]) -> list[Profile]:
    out = []
    ui = task.user_items
    for u in users:
        lo, hi = ui.indptr[u], ui.indptr[u + 1]
        cols, vals = ui.indices[lo:hi], ui.data[lo:hi]
        out.append(
            Profile(
                liked=cols[vals > 0], disliked=cols[vals < 0], exclude=task.mask.get(u, ()), uidx=u
            )
        )
    return out


# -- baselines --------------------------------------------------------------------------------


def _ranked_from_scores(scores: np.ndarray, candidates: np.ndarray, exclude: set, n: int):
    scores = scores.astype(np.float64).copy()
    if exclude:
        pos = np.flatnonzero(np.isin(candidates, list(exclude)))
        scores[pos] = -np.inf
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return candidates[top[np.isfinite(scores[top])]].tolist()


def tfidf_centroid_rankings(task: Task, users: list[int], vectors: sp.csr_matrix, n: int):
    """Baseline: cosine to the centroid of the person's liked papers (TF-IDF)."""
    from sklearn.preprocessing import normalize

    likes = task.user_items[users].multiply(task.user_items[users] > 0).tocsr()
    profiles = normalize(likes @ vectors)
    Xc = vectors[task.candidates].T.tocsc()
    out = {}
    for start in range(0, len(users), 512):
        block = (profiles[start : start + 512] @ Xc).toarray()
        for row, u in zip(block, users[start : start + 512], strict=True):
            out[u] = _ranked_from_scores(row, task.candidates, task.mask.get(u, set()), n)
    return out


def arxiv_sanity_rankings(task: Task, users: list[int], n: int, progress: bool = False):
    """Baseline: arxiv-sanity-lite's per-person LinearSVC on TF-IDF word 1-2-grams.

    Positives: the person's liked papers; negatives: every other paper. Same vectorizer and
    SVM settings as arxiv-sanity-lite (``C=0.01``, ``class_weight="balanced"``).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vec = TfidfVectorizer(
        strip_accents="unicode",
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
        ngram_range=(1, 2),
        max_features=20000,
        sublinear_tf=True,
        min_df=5,
        dtype=np.float32,
    )
    X = vec.fit_transform(task.texts).tocsr()
    Xc = X[task.candidates]
    iterator = users
    if progress:
        from tqdm import tqdm

        iterator = tqdm(users, desc="arxiv-sanity svm", unit="person")
    out = {}
    for u in iterator:
        liked = task.user_items[u].indices[task.user_items[u].data > 0]
        y = np.zeros(X.shape[0], dtype=np.int8)
        y[liked] = 1
        if y.sum() == 0:
            out[u] = []
            continue
        clf = LinearSVC(C=0.01, class_weight="balanced", max_iter=1000, tol=1e-4)
        clf.fit(X, y)
        scores = clf.decision_function(Xc)
        out[u] = _ranked_from_scores(scores, task.candidates, task.mask.get(u, set()), n)
    return out


# -- the evaluation ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where benchmarks keep the embedding cache (``PAPERFEED_CACHE_DIR``)."""
    from .config import load_settings

    return load_settings().cache_dir


def fit_and_rank(
    task: Task, *, text: str = "tfidf", tune: bool = True, progress: bool = False
) -> tuple[Recommender, dict[int, list[int]]]:
    """Fit exactly as a refit does (self-tuning included) on ``task``'s training ratings
    alone, and rank its candidates for every evaluated person: ``(model, uidx -> pidx)``."""
    users = sorted(task.test)
    rec = fit_recommender(
        task.texts, task.user_items, text=text, cache_dir=cache_dir(), tune=tune, progress=progress
    )
    ranked = rank_users(
        rec,
        _profiles(task, users),
        candidates=task.candidates,
        n=max([*task.ks, 20]),
        reasons=False,
        progress=progress,
    )
    return rec, {u: [r.pidx for r in rs] for u, rs in zip(users, ranked, strict=True)}


def one_person(task: Task, u: int) -> Task:
    """``task`` as if person ``u`` were alone: only their ratings, test and mask."""
    keep = sp.csr_matrix(task.user_items.shape, dtype=np.float32).tolil()
    keep[u] = task.user_items[u]
    return Task(
        f"{task.name}-alone-{task.user_ids[u]}",
        task.spec,
        task.item_ids,
        task.texts,
        task.user_ids,
        keep.tocsr(),
        {u: task.test[u]},
        {u: task.mask[u]} if u in task.mask else {},
        task.candidates,
    )


def evaluate_task(
    task_dir: Path,
    *,
    text: str = "tfidf",
    rankings_path: Path | None = None,
    plot_path: Path | None = None,
    baselines: bool = True,
    tune: bool = True,
    progress: bool = True,
) -> dict:
    """Fit on the task's training data, rank its candidates, and score against test.csv.

    Returns a JSON-serialisable dict: ``task``, ``users``, ``metrics``, ``baselines``
    (``tfidf-centroid``, ``arxiv-sanity``), ``references`` (from task.json), ``seconds``.
    ``rankings_path`` gets one JSON line per user ``{"user", "items"}`` (best first, at least
    max(k) item ids); ``plot_path`` a PNG of recall@K and ndcg@20 against the references.
    """
    start = time.perf_counter()
    task = load_task(Path(task_dir))
    users = sorted(task.test)
    n = max([*task.ks, 20])
    rec, rankings = fit_and_rank(task, text=text, tune=tune, progress=progress)
    result: dict = {
        "task": task.name,
        "text": text,
        "users": len(users),
        "metrics": task_metrics(rankings, task.test, task.ks),
        "tuning": rec.tuning_,
        "baselines": {},
        "references": {
            k: v for k, v in task.spec.get("reference", {}).items() if isinstance(v, dict)
        },
    }
    if rankings_path is not None:
        _write_rankings(Path(rankings_path), task, rankings)
    if baselines:
        tfidf = rec.item_vectors if rec.text_kind == "tfidf" else None
        if tfidf is None:
            from recommender.text import TfidfText

            tfidf = TfidfText().fit(task.texts).transform(task.texts)
        base = tfidf_centroid_rankings(task, users, tfidf, n)
        result["baselines"]["tfidf-centroid"] = task_metrics(base, task.test, task.ks)
        svm = arxiv_sanity_rankings(task, users, n, progress=progress)
        result["baselines"]["arxiv-sanity"] = task_metrics(svm, task.test, task.ks)
    result["seconds"] = round(time.perf_counter() - start, 1)
    if plot_path is not None:
        plot_result(result, Path(plot_path), task.ks)
    return result


def _write_rankings(path: Path, task: Task, rankings: dict[int, list[int]]) -> None:
    lines = (
        json.dumps({"user": task.user_ids[u], "items": [task.item_ids[i] for i in items]})
        for u, items in rankings.items()
    )
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def plot_result(result: dict, path: Path, ks: list[int]) -> None:
    """PNG: recall@K curves (ours, baselines, references) and ndcg@20 bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    series = {"paperfeed": result["metrics"], **result["baselines"]}
    for name, m in series.items():
        ax1.plot(ks, [m[f"recall@{k}"] for k in ks], marker="o", label=name)
    for name, ref in result["references"].items():
        pts = [(k, ref[f"recall@{k}"]) for k in ks if f"recall@{k}" in ref]
        if pts:
            ax1.scatter(*zip(*pts, strict=True), marker="*", s=90, label=f"{name} (published)")
    ax1.set_xlabel("K")
    ax1.set_ylabel("recall@K")
    ax1.set_title(result["task"])
    ax1.legend(fontsize=7)
    bars = {name: m["ndcg@20"] for name, m in series.items()}
    bars.update(
        {f"{k} (pub.)": v["ndcg@20"] for k, v in result["references"].items() if "ndcg@20" in v}
    )
    ax2.barh(list(bars), list(bars.values()), color="tab:blue")
    ax2.set_xlabel("ndcg@20")
    ax2.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def format_report(result: dict) -> str:
    """A readable text table of a result from :func:`evaluate_task`."""
    rows = {"paperfeed (" + result.get("text", "tfidf") + ")": result["metrics"]}
    rows.update(result.get("baselines", {}))
    cols = list(result["metrics"])
    width = max(len(r) for r in [*rows, *result.get("references", {}), "method"]) + 2
    lines = [
        f"task {result['task']}: {result['users']} users, {result['seconds']} s",
        "method".ljust(width) + "".join(c.rjust(13) for c in cols),
    ]
    for name, m in rows.items():
        lines.append(name.ljust(width) + "".join(f"{m[c]:13.4f}" for c in cols))
    for name, ref in result.get("references", {}).items():
        vals = "".join((f"{ref[c]:13.4f}" if c in ref else "-".rjust(13)) for c in cols)
        lines.append((name + " *").ljust(width) + vals)
    if result.get("references"):
        lines.append("* published reference (their features: full abstracts)")
    return "\n".join(lines)


# -- learning the blend weights (cold-aldi-val only) ------------------------------------------


def warm_split(task: Task, *, share: float = 0.2, seed: int = 0) -> Task:
    """A warm task carved from ``task``'s training data alone (no test.csv is read).

    Each person with at least 5 likes has ``share`` of them held out; candidates are every
    paper with a remaining like; the remaining likes are masked, as in warm-aldi-test.
    """
    rng = np.random.default_rng(seed)
    ui = task.user_items.tocsr()
    keep_rows, keep_cols, test, mask = [], [], {}, {}
    for u in range(ui.shape[0]):
        liked = ui.indices[ui.indptr[u] : ui.indptr[u + 1]]
        held = set()
        if len(liked) >= 5:
            held = set(rng.choice(liked, size=max(1, int(len(liked) * share)), replace=False))
        for i in liked:
            if i in held:
                test.setdefault(u, set()).add(int(i))
            else:
                keep_rows.append(u)
                keep_cols.append(i)
                mask.setdefault(u, set()).add(int(i))
    train = sp.csr_matrix(
        (np.ones(len(keep_rows), np.float32), (keep_rows, keep_cols)), shape=ui.shape
    )
    rated = np.flatnonzero(np.asarray(train.sum(axis=0)).ravel() > 0)
    rated_set = set(rated.tolist())
    test = {u: {i for i in g if i in rated_set} for u, g in test.items()}
    test = {u: g for u, g in test.items() if g}
    return Task(
        task.name + "-warm",
        task.spec,
        task.item_ids,
        task.texts,
        task.user_ids,
        train,
        test,
        mask,
        rated,
    )


def learn_blend_weights(
    task_dir: Path,
    *,
    text: str = "tfidf",
    max_people: int = 800,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Learn the shipped blend weights on a validation task; returns the weights.json entry.

    The same procedure as every refit's self-tuning (:mod:`recommender.tuning`), on the task's
    ``train.csv`` alone, with more validation people and no pull towards earlier weights.
    """
    task = load_task(Path(task_dir))
    rec = fit_recommender(
        task.texts,
        task.user_items,
        text=text,
        cache_dir=cache_dir(),
        seed=seed,
        tuning_options={"max_people": max_people, "prior_people": 0.0},
        progress=progress,
    )
    report = rec.tuning_
    return {
        "weights": rec.weights.weights,
        "content_weights": rec.weights.content,
        "objective": "mean of ndcg@20 and recall@100 per band on a held-out slice of train.csv "
        "(recommender.tuning; likes subsampled into the band)",
        "validation_objective": {
            regime: {band: e.get("learned_objective") for band, e in bands.items()}
            for regime, bands in report["regimes"].items()
        },
        "validation_people": {
            regime: {band: e["people"] for band, e in bands.items()}
            for regime, bands in report["regimes"].items()
        },
        "task": task.name,
        "bands": list(BANDS),
        "band_edges": list(BAND_EDGES),
        "command": f"python -m recommender.evaluate --learn-weights {task_dir} --text {text}",
    }


def main(argv: list[str] | None = None) -> int:
    """Small developer entry point; the user-facing command is ``paperfeed evaluate``."""
    parser = argparse.ArgumentParser(prog="python -m recommender.evaluate")
    parser.add_argument("task_dir", type=Path)
    parser.add_argument("--text", default=None, help="default: what a refit uses")
    parser.add_argument(
        "--learn-weights",
        action="store_true",
        help="learn blend weights on this (validation!) task, update weights.json",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rankings", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument(
        "--no-tune", action="store_true", help="shipped weights only (no fit-time self-tuning)"
    )
    args = parser.parse_args(argv)
    if args.text is None:
        from recommender.config import load_settings

        args.text = load_settings().text_kind
    if args.learn_weights:
        entry = learn_blend_weights(args.task_dir, text=args.text)
        data = json.loads(WEIGHTS_PATH.read_text()) if WEIGHTS_PATH.exists() else {}
        kind = args.text.split(":")[0]
        for kept in ("small", "small_from"):  # learned on labs-val, not here
            if kept in data.get(kind, {}):
                entry[kept] = data[kind][kept]
        data[kind] = entry
        atomic_write_text(WEIGHTS_PATH, json.dumps(data, indent=2) + "\n")
        print(json.dumps(entry["weights"], indent=2))
        return 0
    result = evaluate_task(
        args.task_dir,
        text=args.text,
        rankings_path=args.rankings,
        plot_path=args.plot,
        baselines=not args.no_baselines,
        tune=not args.no_tune,
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
