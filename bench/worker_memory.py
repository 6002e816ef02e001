"""What web workers cost in memory: gunicorn with 2 workers serving one published bundle.

Builds the data of ``bench/serving.py`` (the four sample dumps plus a generated newest dump
of ``--papers`` papers, one refit), starts gunicorn with ``--workers`` sync workers on it,
logs one person with 200 ratings in, loads the feed until both workers have served it,
likes a paper and loads the feed again (the view after a like). Then reads each worker's
RSS and PSS (``/proc/<pid>/smaps_rollup``: shared pages count once across the processes
that map them) and the bundle's size on disk.

Usage: python bench/worker_memory.py [--papers 50000] [--text tfidf] [--workers 2]
       python bench/worker_memory.py --data DIR [--text embeddings] [--runs 3]
``--data`` serves an existing data dir with its published bundle (no build, no refit; e.g.
``/work/notes/s4/mkcorpus.py 50728 DIR`` then ``paperfeed refit``): the bench person is
added once, and each run's likes are taken back afterwards, so runs see the same data.
To compare with another checkout, copy this file into its ``bench/`` and run it there
(the server and the refit run the code of the checkout the script sits in).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

from serving import build  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from recommender import store  # noqa: E402

# bench/web.py's client (not the app's `web` package)
_spec = importlib.util.spec_from_file_location("bench_web", REPO / "bench" / "web.py")
bench_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_web)
EMAIL, PASSWORD, Client = bench_web.EMAIL, bench_web.PASSWORD, bench_web.Client


def memory_mb(pid: int) -> tuple[float, float, float]:
    """RSS, PSS and private anonymous memory (what no other process can share) in MB."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()

    def field(name: str) -> float:
        return int(re.search(rf"^{name}:\s+(\d+)", text, re.M).group(1)) / 1024

    return field("Rss"), field("Pss"), field("Anonymous")


def serve_and_measure(data: Path, *, text: str, workers: int, seed: int = 2) -> dict:
    """gunicorn with ``workers`` sync workers on ``data``: one person with 200 ratings loads
    the feed until every worker served it, then likes 10 of the newest papers, loading the
    feed after each. Returns the views' latencies and each worker's RSS and PSS (MB)."""
    db = store.open_db(data / "paperfeed.db")
    rng = random.Random(seed)
    if store.get_user_by_email(db, EMAIL) is None:
        uid = store.create_user(db, EMAIL, generate_password_hash(PASSWORD))
        newest_dump = db.execute("SELECT max(id) FROM dumps").fetchone()[0]
        old = [
            r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id < ?", [newest_dump])
        ]
        for i, paper in enumerate(rng.sample(old, 200)):
            store.set_rating(db, uid, paper, 1 if i < 160 else -1)
    newest = store.recent_paper_ids(db, 0)
    db.close()
    port = bench_web.free_port()
    env = {
        **os.environ,
        "PAPERFEED_DATA_DIR": str(data),
        "PAPERFEED_SECRET_KEY": "bench",
        "PAPERFEED_TEXT_MODEL": text,
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--config", "python:web.gunicorn_conf"]
    command += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--timeout", "300", "web:create_app()"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        client = Client(port)
        for _ in range(600):
            try:
                client.log_in()
                break
            except OSError:
                time.sleep(0.5)
        # Every worker ranks the feed at least once: the kernel tends to hand sequential
        # connections to the same worker, so the feed is asked for by ``workers`` clients
        # at once, a few times (a sync worker busy ranking accepts nothing meanwhile).
        with ThreadPoolExecutor(workers) as pool:
            for _ in range(3):
                for status, _, _ in pool.map(lambda _: client.request("GET", "/"), range(workers)):
                    assert status == 200, status
        views = []
        for _ in range(4 * workers):
            status, _, elapsed = client.request("GET", "/")
            assert status == 200, status
            views.append(elapsed)
        after_like = []
        liked = rng.sample(newest, 10)
        for paper in liked:
            status, _, _ = client.request(
                "POST",
                f"/papers/{paper}/rate",
                {"value": "like"},
                {"X-CSRFToken": client.token, "Accept": "application/json"},
            )
            assert 200 <= status < 300, status
            status, _, elapsed = client.request("GET", "/")
            assert status == 200, status
            after_like.append(elapsed)
        pids = sorted(bench_web.ServerCPU(server.pid).workers())
        mem = {pid: memory_mb(pid) for pid in pids}
    finally:
        server.terminate()
        server.wait(timeout=60)
        db = store.open_db(data / "paperfeed.db")  # the next run starts from the same ratings
        uid = store.get_user_by_email(db, EMAIL)["id"]
        for paper in liked:
            store.delete_rating(db, uid, paper)
        db.close()
    return {
        "view_ms": statistics.median(views) * 1000,
        "after_like_ms": statistics.median(after_like) * 1000,
        "workers": mem,
    }


def bundle_mb(data: Path) -> float:
    bundle = data / "models" / "bundles" / (data / "models" / "CURRENT").read_text().strip()
    return sum(p.stat().st_size for p in bundle.iterdir()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=50000)
    parser.add_argument("--text", default="tfidf")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, help="serve this data dir as it is (no build)")
    parser.add_argument("--runs", type=int, default=1, help="servers started one after another")
    args = parser.parse_args()
    if args.data is None:
        started = time.perf_counter()
        data, report = build(args.papers, args.text)
        refit_s = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{REPO.name}: {args.papers} + sample papers, text {args.text}")
        print(
            f"  refit (build): {refit_s:.1f} s, parts {report.get('parts', report)}; "
            f"peak RSS of the build process {peak:.0f} MB"
        )
    else:
        data = args.data
        db = store.open_db(data / "paperfeed.db")
        print(f"{REPO.name}: {data} ({store.count_papers(db)} papers), text {args.text}")
        db.close()
    print(f"  bundle on disk: {bundle_mb(data):.1f} MB")
    for run in range(args.runs):
        served = serve_and_measure(data, text=args.text, workers=args.workers)
        for pid, (rss, pss, anon) in served["workers"].items():
            print(
                f"  run {run + 1} worker {pid}: RSS {rss:.0f} MB, PSS {pss:.0f} MB, "
                f"private anonymous {anon:.0f} MB"
            )
        print(
            f"  run {run + 1}: feed view p50 {served['view_ms']:.0f} ms; "
            f"view after a like p50 {served['after_like_ms']:.0f} ms"
        )


if __name__ == "__main__":
    main()
