"""The view after a like over a large window, in process: ``FeedService.feed`` after each
of a few likes, for a person with 200 ratings (160 likes, 40 dislikes), over every served
paper of an existing data dir (the ``papers`` window: ~46,000 candidates at 50,728 papers).

Each run is a fresh process (the bundle loaded and warmed as a web worker does, two views
to settle), then ``--likes`` views, each after liking one more served paper (a memo miss
each time); the likes are undone afterwards, so every run starts from the same ratings.
With ``--compare DIR`` (another checkout, e.g. ``git archive main``) the runs alternate
between this checkout and that one, and the printed digest of each run's pages (ids and
scores of every view) says whether both rank the same. Each view's wall time and its
thread's CPU time are printed: on a loaded machine the CPU time is the steadier of the two
(the ranking runs in one thread, ``OPENBLAS_NUM_THREADS=1``).

Usage: python bench/view_after_like.py --data /tmp/c50k [--data ...] [--runs 3] [--likes 8]
       [--compare /tmp/main-archive] [--profile 30]
Data: /work/notes/s4/mkcorpus.py 50728 DIR, then ``paperfeed refit`` (PAPERFEED_DATA_DIR,
PAPERFEED_CACHE_DIR=DIR/cache, PAPERFEED_TEXT_MODEL). Target (issue 17): p50 under 30 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
EMAIL = "bench@example.org"  # bench/worker_memory.py's person, if it is there already


def child(data: Path, likes: int, seed: int, profile: int) -> dict:
    """One run in this process: the per-view times (ms) and a digest of the pages."""
    import random

    from recommender import store
    from recommender.config import load_settings
    from recommender.feed import FeedQuery, FeedService
    from recommender.feedback import record_feedback

    settings = load_settings(data)
    service = FeedService(settings)
    start = time.perf_counter()
    bundle = service.bundle()
    bundle.warm()
    load_s = time.perf_counter() - start
    db = store.open_db(settings.db_path)
    served = bundle.paper_ids[bundle.index.candidates].tolist()
    user = store.get_user_by_email(db, EMAIL)
    if user is None:  # as bench/worker_memory.py makes them: 160 likes, 40 dislikes
        uid = store.create_user(db, EMAIL, "x")
        rng = random.Random(2)
        for i, paper in enumerate(rng.sample(served, 200)):
            store.set_rating(db, uid, paper, 1 if i < 160 else -1)
    else:
        uid = user["id"]
    rated = {r["paper_id"] for r in store.user_ratings(db, uid)}
    rng = random.Random(seed)
    liked = rng.sample([p for p in served if p not in rated], likes + profile)
    query = FeedQuery(uid, window="papers", papers=tuple(served))
    digest, order, scores = hashlib.sha256(), hashlib.sha256(), []
    times, cpu = [], []
    try:
        for _ in range(2):
            service.feed(db, query)
        for paper in liked[:likes]:
            record_feedback(db, uid, paper, 1)
            start, start_cpu = time.perf_counter(), time.thread_time()
            page = service.feed(db, query)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
            for item in page.items:
                digest.update(f"{item.paper_id}:{item.score!r};".encode())
                order.update(f"{item.paper_id};".encode())
                scores.append(float(item.score))
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            for paper in liked[likes:]:
                record_feedback(db, uid, paper, 1)
                prof.enable()
                service.feed(db, query)
                prof.disable()
            stats = pstats.Stats(prof, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(45)
            stats.print_callers("asarray|csr_matvec|c_einsum|_dense_products")
    finally:
        for paper in liked:
            record_feedback(db, uid, paper, None)
        db.close()
    return {
        "p50_ms": statistics.median(times),
        "cpu_p50_ms": statistics.median(cpu),
        "times_ms": [round(t, 1) for t in times],
        "candidates": len(served),
        "load_s": load_s,
        "digest": digest.hexdigest()[:16],
        "order": order.hexdigest()[:16],
        "scores": scores,
    }


def run(repo: Path, data: Path, likes: int, seed: int, profile: int = 0) -> dict:
    """:func:`child` in a fresh process with ``repo`` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(repo), "PAPERFEED_CACHE_DIR": str(data / "cache")}
    env.setdefault("PAPERFEED_TEXT_MODEL", "embeddings")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--data", str(data)]
    command += ["--likes", str(likes), "--seed", str(seed), "--profile", str(profile)]
    out = subprocess.run(command, env=env, cwd="/", check=True, capture_output=not profile)
    if profile:
        return {}
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--likes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another checkout to alternate with")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many views")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.data[0], args.likes, args.seed, args.profile)
        print(json.dumps(result))
        return
    checkouts = [("this", REPO)] + ([("compare", args.compare)] if args.compare else [])
    for data in args.data:
        if args.profile:
            run(REPO, data, args.likes, args.seed, args.profile)
            continue
        results: dict[str, list[dict]] = {name: [] for name, _ in checkouts}
        for r in range(args.runs):
            order = checkouts if r % 2 == 0 else checkouts[::-1]
            for name, repo in order:
                res = run(repo, data, args.likes, args.seed)
                results[name].append(res)
                print(
                    f"{data.name} {name:8} run {r + 1}: p50 {res['p50_ms']:.1f} ms "
                    f"(CPU {res['cpu_p50_ms']:.1f}) "
                    f"{res['times_ms']} ({res['candidates']} candidates, load "
                    f"{res['load_s']:.1f} s, load avg {os.getloadavg()[0]:.1f}) {res['digest']}",
                    flush=True,
                )
        for name, runs in results.items():
            p50s = [r["p50_ms"] for r in runs]
            cpus = [r["cpu_p50_ms"] for r in runs]
            print(
                f"{data.name} {name:8}: median of {len(runs)} runs' p50 "
                f"{statistics.median(p50s):.1f} ms (runs: {', '.join(f'{p:.1f}' for p in p50s)})"
                f"; thread CPU {statistics.median(cpus):.1f} ms"
                f" (runs: {', '.join(f'{p:.1f}' for p in cpus)})"
            )
        if args.compare:
            ratios = [
                a["p50_ms"] / b["p50_ms"]
                for a, b in zip(results["this"], results["compare"], strict=True)
            ]
            print(
                f"{data.name}: this / compare, each run against the one beside it: median "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
            )
            same = {r["digest"] for runs in results.values() for r in runs}
            print(f"{data.name}: pages {'identical' if len(same) == 1 else 'DIFFER'}: {same}")
            if len(same) > 1:  # the papers and their order, and how far the scores moved
                orders = {r["order"] for runs in results.values() for r in runs}
                moved = max(
                    abs(x - y)
                    for a, b in zip(results["this"], results["compare"], strict=True)
                    for x, y in zip(a["scores"], b["scores"], strict=True)
                )
                print(
                    f"{data.name}: papers and order {'identical' if len(orders) == 1 else 'DIFFER'}"
                    f", largest score difference {moved:.3g}"
                )


if __name__ == "__main__":
    main()
