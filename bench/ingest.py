"""Ingest throughput: the real sample dumps, and a generated 50,000-paper dump.

Measures parse + store + FTS indexing into a fresh SQLite file, median of
several runs (the machine is shared and noisy). Target: 50,000 papers < 10 s.

    .venv/bin/python bench/ingest.py [--papers 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from recommender import store
from recommender.dumps import parse_dump_file
from recommender.ingest import ingest_paths

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "dumps"


def generate_dump(path: Path, papers: int, seed: int = 0) -> None:
    """A Daily-Papers-style text dump whose words come from the real dumps."""
    rng = random.Random(seed)
    real = [p for f in sorted(SAMPLES.glob("*.txt")) for p in parse_dump_file(f).papers]
    title_words = sorted({w for p in real for w in p.title.split()})
    abstracts = [p.abstract for p in real]
    lines = ["Get trending papers in your email inbox!", "Subscribe"]
    for i in range(papers):
        title = " ".join(rng.choice(title_words) for _ in range(rng.randint(4, 12)))
        lines += [f"{title} {i}", rng.choice(abstracts)]
    path.write_text("\n".join(lines), encoding="utf-8")


def time_ingest(paths: list[Path]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        db = store.open_db(Path(tmp) / "bench.db")
        start = time.perf_counter()
        results = ingest_paths(db, paths)
        elapsed = time.perf_counter() - start
        db.close()
    return elapsed, sum(r.record.papers for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    real = sorted(SAMPLES.glob("*.txt"))
    times = [time_ingest(real) for _ in range(args.runs)]
    median = statistics.median(t for t, _ in times)
    count = times[0][1]
    print(
        f"real dumps: {len(real)} files, {count} paper rows, "
        f"median {median * 1000:.0f} ms over {args.runs} runs ({count / median:,.0f} papers/s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "generated.txt"
        generate_dump(big, args.papers)
        size_mb = big.stat().st_size / 1e6
        times = [time_ingest([big]) for _ in range(args.runs)]
    median = statistics.median(t for t, _ in times)
    print(
        f"generated dump: {args.papers:,} papers ({size_mb:.0f} MB), "
        f"median {median:.2f} s over {args.runs} runs ({args.papers / median:,.0f} papers/s); "
        f"runs: {', '.join(f'{t:.2f}' for t, _ in times)} s; target < 10 s: "
        f"{'met' if median < 10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
