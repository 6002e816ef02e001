"""Serving cost against the newest dump's size: publish once, then per-person work only.

For each size N of a generated newest dump (beside the four sample dumps), one person with
200 ratings (160 likes, 40 dislikes) on the sample papers:

- publish: ``pipeline.refit`` (fit + the per-corpus precompute stored in the bundle), parts;
- bundle load: what a worker does at start (``warm_up``), or in a thread beside the bundle
  it serves after a publish; never inside a request;
- first load: the first feed request over the loaded bundle (nothing memoised);
- cached view: the same feed again (the memo), p50/p99 of 200 loads;
- re-rank after a rating: like one more of the dump's papers, rank again (a memo miss
  each time), median/p99 of 30;
- and at the smallest size, the digest's batch ranking of many people over one dump.

Usage: python bench/serving.py [--sizes 250,17000,50000] [--people 10000] [--text tfidf]
Targets (issue 10): first load < 1 s and cached p99 < 20 ms at 50,000; cached views within
1.5x of each other across sizes; re-rank after a rating < 20 ms at 17,000.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from recommender import pipeline, store  # noqa: E402
from recommender.config import load_settings  # noqa: E402
from recommender.dumps import parse_dump  # noqa: E402
from recommender.ingest import ingest_paths  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "serving"


def generated_dump(n: int, words: list[str], seed: int) -> bytes:
    """``n`` papers of text drawn from the sample dumps' vocabulary (JSONL)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        title = " ".join(rng.choices(words, k=8)) + f" {seed}-{i}"
        abstract = " ".join(rng.choices(words, k=120))
        lines.append(json.dumps({"title": title, "abstract": abstract}))
    return "\n".join(lines).encode()


def build(size: int, text: str) -> tuple[Path, dict]:
    data = OUT / f"{text}-{size}"
    if data.exists():
        shutil.rmtree(data)
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, sorted((ROOT / "samples" / "dumps").iterdir()), dump_date="2026-11-20")
    words = sorted(
        {w.lower() for (_, t, a) in store.all_papers(db) for w in f"{t} {a}".split() if w.isalpha()}
    )
    dump = parse_dump(generated_dump(size, words, size), fmt="jsonl", source="newest.jsonl")
    store.record_dump(db, dump, dump_date="2026-11-21")
    uid = store.create_user(db, "ada@example.org", "x")
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id < 5")]
    rated = random.Random(1).sample(old, 200)
    for i, paper in enumerate(rated):
        store.set_rating(db, uid, paper, 1 if i < 160 else -1)
    os.environ["PAPERFEED_TEXT_MODEL"] = text
    report = pipeline.refit(db, load_settings(data), progress=True)
    db.close()
    return data, report


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(data: Path) -> dict:
    settings = load_settings(data)
    db = store.open_db(settings.db_path)
    uid = store.get_user_by_email(db, "ada@example.org")["id"]
    feeds = pipeline.FeedService(settings)
    today = pipeline.FeedQuery(uid, window="today")
    started = time.perf_counter()
    feeds.bundle()  # a worker does this at start (warm_up), or beside serving after a publish
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    first = feeds.feed(db, today).items
    first_s = time.perf_counter() - started
    assert first and first[0].reason != "new in this dump"
    cached = []
    for _ in range(200):
        started = time.perf_counter()
        feeds.feed(db, today)
        cached.append(time.perf_counter() - started)
    newest = store.latest_dump(db)["id"]
    dump = store.dump_new_paper_ids(db, newest)
    rerank = []
    for paper in dump[-30:]:
        store.set_rating(db, uid, paper, 1)
        started = time.perf_counter()
        feeds.feed(db, today)
        rerank.append(time.perf_counter() - started)
    db.close()
    return {
        "bundle_load_s": load_s,
        "first_load_s": first_s,
        "cached_p50_ms": 1000 * statistics.median(cached),
        "cached_p99_ms": 1000 * percentile(cached, 99),
        "rerank_median_ms": 1000 * statistics.median(rerank),
        "rerank_p99_ms": 1000 * percentile(rerank, 99),
    }


def digest_batch(data: Path, people: int) -> float:
    """Seconds to rank the newest dump for ``people`` people (1-30 ratings each), top 10."""
    settings = load_settings(data)
    db = store.open_db(settings.db_path)
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id < 5")]
    rng = random.Random(2)
    ids = []
    with db.conn:
        for n in range(people):
            cur = db.execute(
                "INSERT INTO users (email, created_at) VALUES (?, '2026-11-01')", [f"p{n}@x.org"]
            )
            ids.append(cur.lastrowid)
            db.conn.executemany(
                "INSERT INTO ratings (user_id, paper_id, value, created_at, updated_at)"
                " VALUES (?, ?, 1, '', '')",
                [(cur.lastrowid, p) for p in rng.sample(old, rng.randint(1, 30))],
            )
    candidates = tuple(store.dump_new_paper_ids(db, store.latest_dump(db)["id"]))
    requests = [
        pipeline.FeedQuery(u, window="papers", papers=candidates, page_size=10) for u in ids
    ]
    feeds = pipeline.FeedService(settings)
    feeds.bundle()
    started = time.perf_counter()
    feeds.feeds(db, requests)
    seconds = time.perf_counter() - started
    db.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="250,17000,50000")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--text", default="tfidf")
    args = parser.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        data, report = build(size, args.text)
        figures = measure(data)
        rows.append((size, report, figures))
        print(f"newest dump {size:,} papers: publish {report['seconds']} s {report['parts']}")
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()), flush=True)
        if size == min(int(s) for s in args.sizes.split(",")) and args.people:
            seconds = digest_batch(data, args.people)
            print(
                f"  digest batch: {args.people:,} people x {size} papers, top 10: {seconds:.2f} s"
            )
    print(
        "\n| newest dump | publish s | bundle load s | first load s | cached p50/p99 ms "
        "| re-rank median/p99 ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size, report, f in rows:
        print(
            f"| {size:,} | {report['seconds']:.1f} | {f['bundle_load_s']:.2f} "
            f"| {f['first_load_s']:.2f} "
            f"| {f['cached_p50_ms']:.2f} / {f['cached_p99_ms']:.2f} "
            f"| {f['rerank_median_ms']:.1f} / {f['rerank_p99_ms']:.1f} |"
        )
    cached = [f["cached_p50_ms"] for _, _, f in rows]
    print(f"cached view, largest / smallest dump: {max(cached) / min(cached):.2f}x")


if __name__ == "__main__":
    main()
