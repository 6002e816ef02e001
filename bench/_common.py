"""Shared helpers for the engine benchmarks: the CiteULike data as matrices."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BENCH = Path(
    os.environ.get(
        "PAPERFEED_BENCH_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "bench" / "citeulike-a",
    )
)


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    """Run ``fn`` ``runs`` times; return the median and all timings in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
