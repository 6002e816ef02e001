"""A year of arXiv on one machine (issue 17): full refit, per-day publish, memory, views.

For each size N: N papers over days of ``--day`` papers (1,500: arXiv's daily volume), the
served window the last 30 days. Titles are random words of the sample dumps; abstracts are
sentences of the sample abstracts recombined. **Embeddings are synthetic**: the embedding
cache is prefilled with unit vectors around 64 topic centres (384 dims, float32), because
encoding 500k texts at ~9 papers/s would take the whole run; the refit runs the default
embeddings pipeline on them (the cache answers every text). ``--people`` people with 40
likes each give the collaborative model something to fit.

Per size, in order:
- full refit: ``pipeline.refit`` in its own process over N - day papers (seconds, parts,
  peak RSS of that process);
- per-day publish: one more day of papers ingested, then ``paperfeed publish``
  (:func:`recommender.refit.publish`: the fitted models reused, the served papers of the
  last publish only meet the new day's papers: see bundle.json's ``neighbourhoods``), then
  the same day by a full ``pipeline.refit`` (what the ingest job ran before), and the ratio;
- gunicorn with 2 workers: each worker's RSS and PSS, the feed view and the view after a
  like (``bench/worker_memory.py``), and the bundle's size on disk.

Usage: nice -n 10 python bench/scale.py [--sizes 100000,250000,500000] [--people 300]
[--day 1500] [--no-serve] [--no-refit-after] [--keep]
Targets (issue 17, at 500k): per-day publish < 60 s, full refit < 15 min.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from worker_memory import REPO, bundle_mb, serve_and_measure  # noqa: E402

from recommender import store  # noqa: E402
from recommender.dumps import parse_dump  # noqa: E402
from recommender.text import DEFAULT_EMBEDDING_MODEL, paper_text, resolve_model_path  # noqa: E402

OUT = REPO / "bench" / "out" / "scale"
DIM, TOPICS = 384, 64
REFIT = """
import json, resource, sys
from recommender import pipeline, store
from recommender.config import load_settings
from recommender.refit import publish
db = store.open_db(sys.argv[1] + "/paperfeed.db")
write = publish if sys.argv[2:] == ["publish"] else pipeline.refit
report = write(db, load_settings(sys.argv[1]))
report["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(report, default=str))
"""


def sample_text() -> tuple[list[str], list[str]]:
    """Words of the sample titles, sentences of the sample abstracts."""
    words, sentences = set(), []
    for path in sorted((REPO / "samples" / "dumps").iterdir()):
        for line in path.read_text().splitlines():
            if len(line) > 200:
                sentences += [s.strip() + "." for s in line.split(". ") if len(s) > 30]
            words.update(w.lower() for w in line.split() if w.isalpha() and len(w) > 3)
    return sorted(words), sentences


def day_of_papers(n: int, rng: random.Random, words, sentences, tag: str) -> bytes:
    rows = [
        {
            "title": " ".join(rng.choices(words, k=9)) + f" {tag}-{i}",
            "abstract": " ".join(rng.choices(sentences, k=6)),
        }
        for i in range(n)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode()


def fill_cache(db, cache: Path) -> None:
    """A synthetic unit vector for every paper's text, in the embeddings cache."""
    papers = store.all_papers(db)
    keys = np.array(
        [hashlib.sha1(paper_text(t, a).encode("utf-8")).hexdigest() for _, t, a in papers],
        dtype="U40",
    )
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    topic = np.array([int(k[:8], 16) % TOPICS for k in keys])
    vectors = centres[topic] + 1.5 * rng.standard_normal((len(keys), DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    name = f"embeddings-{resolve_model_path(DEFAULT_EMBEDDING_MODEL).name}-128.npz"
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cache / name, keys=keys, vectors=vectors)


def refit(data: Path, env: dict, mode: str = "refit") -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", REFIT, str(data), mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return time.perf_counter() - started, json.loads(proc.stdout.strip().splitlines()[-1])


def full_refit(data: Path, env: dict) -> None:
    seconds, report = refit(data, env)
    print(
        f"  full refit ({report['papers']} papers, {report['served_papers']} served): "
        f"{seconds:.1f} s, parts {report['parts']}, peak RSS {report['peak_mb']:.0f} MB"
    )
    tuning = report.get("tuning") or {}
    print(
        f"    of the fit: self-tuning and the collaborative fits {tuning.get('seconds')} s "
        f"(the check and final collaborative fits together {tuning.get('collab_fit_seconds')} s, "
        f"search {tuning.get('search_seconds')} s)"
    )


def run(size: int, args, words, sentences) -> None:
    data = OUT / f"papers-{size}"
    env = {**os.environ, "PAPERFEED_TEXT_MODEL": "embeddings", "PYTHONPATH": str(REPO)}
    env["PAPERFEED_DATA_DIR"] = str(data)
    env["PAPERFEED_CACHE_DIR"] = str(data / "cache")  # else the encoder runs for every text
    # the last day is a full --day of papers (the published one); a remainder goes first
    days = [args.day] * (size // args.day) + ([size % args.day] if size % args.day else [])
    days = days[-1:] + days[:-1] if size % args.day else days
    first = date(2026, 1, 1)
    rng = random.Random(size)
    if args.keep and (data / "models" / "CURRENT").exists():
        # an earlier run's corpus and bundle: one more day of papers, then the publish
        db = store.open_db(data / "paperfeed.db")
        d = db.execute("SELECT count(*) FROM dumps").fetchone()[0]
        rng = random.Random(size + d)
        days = [args.day]
        print(f"{size} papers: kept from an earlier run ({d} days of dumps)")
    else:
        shutil.rmtree(data, ignore_errors=True)
        db = store.open_db(data / "paperfeed.db")
        started = time.perf_counter()
        for d, n in enumerate(days[:-1]):
            dump = parse_dump(day_of_papers(n, rng, words, sentences, f"d{d}"), fmt="jsonl")
            store.record_dump(db, dump, dump_date=(first + timedelta(days=d)).isoformat())
        old = [r[0] for r in db.execute("SELECT id FROM papers")]
        for p in range(args.people):
            uid = store.create_user(db, f"p{p}@example.org", "x")
            for paper in rng.sample(old, 40):
                store.set_rating(db, uid, paper, 1)
        fill_cache(db, data / "cache")
        print(f"{size} papers: corpus and cache made in {time.perf_counter() - started:.0f} s")
        d = len(days) - 1
        full_refit(data, env)
    n = days[-1]
    dump = parse_dump(day_of_papers(n, rng, words, sentences, f"d{d}"), fmt="jsonl")
    store.record_dump(db, dump, dump_date=(first + timedelta(days=d)).isoformat())
    fill_cache(db, data / "cache")
    db.close()
    seconds, report = refit(data, env, "publish")
    assert report["published"] and not report.get("refit_because"), report
    name = report["version"]
    info = json.loads((data / "models" / "bundles" / name / "bundle.json").read_text())
    print(
        f"  per-day publish (+{n} papers, models of {report['fit_of']} reused): {seconds:.1f} s, "
        f"parts {report['parts']}, neighbourhoods {info.get('neighbourhoods')}, "
        f"peak RSS {report['peak_mb']:.0f} MB"
    )
    # The same day as the ingest job published it before `paperfeed publish` existed: a
    # full refit (its neighbourhoods extend the publish's, whose vectors are the same).
    if not args.no_refit_after:
        before, report = refit(data, env)
        print(
            f"  the same day by a full refit (before): {before:.1f} s, parts {report['parts']}; "
            f"refit / publish = {before / seconds:.1f}x"
        )
    if args.no_serve:
        return
    served = serve_and_measure(data, text="embeddings", workers=2)
    workers = ", ".join(f"RSS {r:.0f} MB / PSS {p:.0f} MB" for r, p in served["workers"].values())
    print(
        f"  bundle {bundle_mb(data):.0f} MB; 2 workers: {workers}; feed view p50 "
        f"{served['view_ms']:.0f} ms, view after a like p50 {served['after_like_ms']:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,250000,500000")
    parser.add_argument("--day", type=int, default=1500)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--no-serve", action="store_true", help="skip the gunicorn part")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse an earlier run's corpus and bundle: skip building it and its full "
        "refit, add one more day of papers and publish it",
    )
    parser.add_argument(
        "--no-refit-after",
        action="store_true",
        help="skip the full refit of the published day (the before-publish comparison)",
    )
    args = parser.parse_args()
    words, sentences = sample_text()
    for size in (int(s) for s in re.split(r"[, ]+", args.sizes) if s):
        run(size, args, words, sentences)


if __name__ == "__main__":
    main()
