"""What re-ranking a feed page costs a like: the rating POST as app.js sends it (with the
ids of the page's 20 cards, answered with their new order) against the plain POST.

The person of bench/web.py (200 ratings, a 250-paper newest dump) likes a paper of the
first feed page and undoes it, ``--rounds`` times per run, through the Flask test client
(no network, CSRF off: the figures are the app's own work). Each like changes the
ratings, so every re-rank recomputes the ranking. Prints the median over ``--runs`` of
each run's median latency, per kind, and their ratio.

Usage: python bench/rerank.py [--rounds 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from web import create_app  # noqa: E402


def _web_bench():
    """bench/web.py (its data dir and person), loaded by path: its name is the app's."""
    spec = importlib.util.spec_from_file_location("bench_web", REPO / "bench" / "web.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_run(client, rounds: int) -> dict[str, float]:
    page = client.get("/feed.json").get_json()["papers"]
    ids = [p["paper_id"] for p in page]
    visible = ",".join(map(str, ids))
    times: dict[str, list[float]] = {"plain": [], "rerank": []}
    json_headers = {"Accept": "application/json"}
    for i in range(rounds):
        paper = ids[i % len(ids)]
        for kind, extra in (("plain", {}), ("rerank", {"next": "/", "visible": visible})):
            started = time.perf_counter()
            answer = client.post(
                f"/papers/{paper}/rate", data={"value": "like", **extra}, headers=json_headers
            )
            times[kind].append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.data
            assert ("order" in answer.get_json()) == (kind == "rerank")
            client.post(f"/papers/{paper}/rate", data={"value": "undo"}, headers=json_headers)
    return {kind: statistics.median(values) * 1000 for kind, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench = _web_bench()
    with tempfile.TemporaryDirectory(prefix="paperfeed-rerank-") as tmp:
        data = Path(tmp)
        print("building the data dir (4 dumps, 200 ratings, refit)...", flush=True)
        bench.build_data(data)
        app = create_app({"DATA_DIR": str(data), "WTF_CSRF_ENABLED": False})
        client = app.test_client()
        client.post("/login", data={"email": bench.EMAIL, "password": bench.PASSWORD})
        one_run(client, 3)  # warm: model loaded, caches filled
        runs = [one_run(client, args.rounds) for _ in range(args.runs)]
    plain = statistics.median(r["plain"] for r in runs)
    rerank = statistics.median(r["rerank"] for r in runs)
    print(f"rate POST, plain:                 median {plain:.1f} ms")
    print(f"rate POST, re-ranking 20 cards:   median {rerank:.1f} ms")
    print(f"ratio re-rank / plain: {rerank / plain:.2f} ({args.runs} runs x {args.rounds} likes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
