"""paperfeed's full refit against arxiv-sanity-lite's ``compute.py`` on the same papers.

arxiv-sanity-lite's batch step (``compute.py``) fits a TF-IDF vectorizer (word 1-2-grams,
20,000 features, min_df 5, max_df 0.1, sublinear tf, English stop words, accents stripped),
transforms every paper with it and pickles the features (``pids``, the float32 matrix, the
vocabulary and idf). Its per-person SVMs are fitted later, per request. The arxiv-sanity
side here is that step with the same vectorizer settings, re-stated with scikit-learn (the
peer's code is not vendored): fit, transform, pickle, in its own process, over the texts of
the same SQLite database the refit reads.

paperfeed's side is ``pipeline.refit`` in its own process (what ``paperfeed refit`` runs):
every model fitted (text, content, ALS, the bridges, self-tuning on the ratings), the served
papers' neighbourhoods searched, the bundle written. Three kinds, alternated in each run:
- ``tfidf first``: ``PAPERFEED_TEXT_MODEL=tfidf``, no earlier bundle and no term-count
  cache (a new install: every text counted);
- ``embeddings first``: the default model, no earlier bundle and no term-count cache
  (embeddings come from the synthetic cache of ``bench/scale.py``: encoding is a
  once-per-paper cost, measured by ``bench/encode.py``, not a refit's);
- ``embeddings nightly``: the same refit again, with the first one's bundle in place (what
  the 03:30 job does: unchanged papers keep their neighbourhoods, and with the ratings
  unchanged the first one's tuned blend weights are reused: no check fit, no weight search;
  the term counts are read from the cache the first one filled, as a nightly refit reads
  those of the papers the day's publish counted).

The corpus is ``bench/scale.py``'s (days of 1,500 generated papers, the last 30 days served,
300 people with 40 likes each). Reports the median seconds of ``--runs`` alternated runs,
each side's peak RSS, and the size of the features file against the bundle. Beside the wall
time, each process's CPU time (user + system): on a shared machine another job's share of
the cores stretches the wall time of whichever side runs beside it, not the CPU time.

The refit's threads are ``PAPERFEED_FIT_THREADS`` (``--threads N`` sets it; unset: the
setting's default, the cores up to 4). BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1``,
as ``bench/scale.py`` sets it), in the refit's blocks as in compute.py.

Usage: nice -n 5 python bench/versus_compute.py [--papers 50728] [--runs 3] [--threads N]
Target (issue 17): the refit no slower than compute.py on the same papers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from scale import OUT, REFIT, day_of_papers, fill_cache, sample_text

from recommender import store
from recommender.bundles import current_name
from recommender.dumps import parse_dump

REPO = Path(__file__).resolve().parents[1]
COMPUTE = """
import pickle, resource, sys
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from recommender import store
from recommender.text import paper_text
db = store.open_db(sys.argv[1] + "/paperfeed.db")
papers = store.all_papers(db)
texts = [paper_text(title, abstract) for _, title, abstract in papers]
v = TfidfVectorizer(
    strip_accents="unicode", lowercase=True, analyzer="word", stop_words="english",
    token_pattern=r"(?u)\\b[a-zA-Z_][a-zA-Z0-9_]+\\b", ngram_range=(1, 2),
    max_features=20000, norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True,
    max_df=0.1, min_df=5,
)
v.fit(texts)
x = v.transform(texts).astype(np.float32)
features = {"pids": [p[0] for p in papers], "x": x, "vocab": v.vocabulary_, "idf": v._tfidf.idf_}
with open(sys.argv[2], "wb") as f:
    pickle.dump(features, f)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def make_corpus(data: Path, papers: int, people: int) -> None:
    words, sentences = sample_text()
    db = store.open_db(data / "paperfeed.db")
    rng = random.Random(papers)
    for d in range(-(-papers // 1500)):
        n = min(1500, papers - d * 1500)
        dump = parse_dump(day_of_papers(n, rng, words, sentences, f"d{d}"), fmt="jsonl")
        day = (date(2026, 1, 1) + timedelta(days=d)).isoformat()
        store.record_dump(db, dump, dump_date=day)
    ids = [r[0] for r in db.execute("SELECT id FROM papers")]
    for p in range(people):
        uid = store.create_user(db, f"p{p}@example.org", "x")
        for paper in rng.sample(ids, 40):
            store.set_rating(db, uid, paper, 1)
    fill_cache(db, data / "cache")
    db.close()


def timed(code: str, args: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``code`` in its own process: ``(wall seconds, CPU seconds, last line printed)``.

    CPU seconds (user + system, every thread) hold better than wall time on a shared
    machine: another job's share of the cores stretches the wall time, not the CPU time."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - started, cpu, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=50728)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="PAPERFEED_FIT_THREADS of the refits"
    )
    args = parser.parse_args()
    data = OUT / f"versus-{args.papers}"
    if not (data / "paperfeed.db").exists():
        shutil.rmtree(data, ignore_errors=True)
        make_corpus(data, args.papers, args.people)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PAPERFEED_DATA_DIR": str(data)}
    env["PAPERFEED_CACHE_DIR"] = str(data / "cache")
    if args.threads is not None:
        env["PAPERFEED_FIT_THREADS"] = str(args.threads)
    features = data / "features.p"
    seconds: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    peak: dict[str, float] = {}
    parts: dict[str, dict] = {}
    for run in range(args.runs):
        for kind in ("compute.py", "tfidf first", "embeddings first", "embeddings nightly"):
            if kind == "compute.py":
                took, used, out = timed(COMPUTE, [str(data), str(features)], env)
                peak[kind] = float(out)
            else:
                if kind.endswith("first"):  # a new install: no bundle, nothing counted
                    shutil.rmtree(data / "models", ignore_errors=True)
                    for counted in (data / "cache").glob("terms-*.npz"):
                        counted.unlink()
                text = kind.split()[0]
                took, used, out = timed(REFIT, [str(data)], {**env, "PAPERFEED_TEXT_MODEL": text})
                report = json.loads(out)
                peak[kind], parts[kind] = report["peak_mb"], report["parts"]
                # "reused": the blend weights of the earlier tuning, no check fit
                parts[kind]["tuning"] = report["tuning"]["status"]
            seconds.setdefault(kind, []).append(took)
            cpu.setdefault(kind, []).append(used)
            print(
                f"run {run + 1} {kind}: {took:.1f} s (CPU {used:.1f} s) {parts.get(kind, '')}",
                flush=True,
            )
    base = statistics.median(seconds["compute.py"])
    base_cpu = statistics.median(cpu["compute.py"])
    threads = env.get("PAPERFEED_FIT_THREADS", "default")
    print(f"\n{args.papers} papers, median of {args.runs} alternated runs, threads {threads}:")
    for kind, times in seconds.items():
        med, med_cpu = statistics.median(times), statistics.median(cpu[kind])
        print(
            f"  {kind:<20} {med:7.1f} s  {med / base:5.2f}x compute.py  "
            f"CPU {med_cpu:7.1f} s  {med_cpu / base_cpu:5.2f}x  "
            f"peak RSS {peak[kind]:.0f} MB  ({', '.join(f'{t:.1f}' for t in times)})"
        )
    bundle = data / "models" / "bundles" / current_name(data / "models")
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    print(
        f"  features file {features.stat().st_size / 2**20:.1f} MB; "
        f"the last embeddings bundle {size / 2**20:.1f} MB"
    )


if __name__ == "__main__":
    main()
