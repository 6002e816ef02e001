"""Benchmark: the morning digest run for 10,000 people over a 250-paper dump.

Rank (the production ranking, per person), render (text + HTML from the Jinja
templates, signed links) and deliver over SMTP to a local aiosmtpd server in
its own process, through :func:`recommender.digest.send_due_digests`: what the
scheduler's digest job does at 07:00 when everyone's hour has come at once.
Target: under 60 s. Each run is a following day (a new period, the next ten
papers for everyone); the median of the runs is reported.

    .venv/bin/python bench/digest.py [--people 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender import digest, pipeline, store  # noqa: E402
from recommender.config import load_settings  # noqa: E402
from recommender.dumps import parse_dump_file  # noqa: E402

SAMPLES = REPO / "samples" / "dumps"
#: Zones whose 07:00 falls between 05:00 and 07:00 UTC: at 07:05 UTC everyone is due at once.
ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Africa/Lagos", "Europe/Helsinki"]

SERVER = """
import asyncio, signal, sys
from aiosmtpd.controller import Controller

class Count:
    received = 0
    async def handle_DATA(self, server, session, envelope):
        Count.received += 1
        return "250 OK"

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait, in every thread
controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
controller.stop()
print(Count.received, flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_hundred_fifty_paper_dump(folder: Path) -> Path:
    """A JSON Lines dump of 250 papers not in the first sample dump."""
    papers = []
    for name in ("2026-11-18_002_928061713d22a60e.txt", "2026-11-19_003_b22038616ce28914.txt"):
        papers += parse_dump_file(SAMPLES / name).papers
    seen, rows = set(), []
    for paper in papers:
        if paper.title not in seen:
            seen.add(paper.title)
            rows.append({"title": paper.title, "abstract": paper.abstract})
    path = folder / "new.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows[:250]) + "\n", encoding="utf-8")
    return path


def build(settings, people: int) -> None:
    """History dump, ``people`` confirmed people with 3-6 likes each, refit, new dump."""
    from recommender.ingest import ingest_paths

    db = store.open_db(settings.db_path)
    ingest_paths(db, [SAMPLES / "2026-11-16_000_7b2f11b90d39ad34.txt"], dump_date="2025-03-09")
    history = [r[0] for r in db.execute("SELECT id FROM papers").fetchall()]
    rng = random.Random(0)
    stamp = "2025-01-01T00:00:00+00:00"
    users = [
        (f"reader{i:05}@example.org", stamp, stamp, rng.choice(ZONES), 7) for i in range(people)
    ]
    with store.transaction(db):
        db.conn.executemany(
            "INSERT INTO users (email, created_at, email_confirmed_at, timezone, digest_hour)"
            " VALUES (?, ?, ?, ?, ?)",
            users,
        )
    ids = [r[0] for r in db.execute("SELECT id FROM users ORDER BY id").fetchall()]
    ratings = [
        (uid, pid, 1, "web", stamp, stamp)
        for uid in ids
        for pid in rng.sample(history, rng.randint(3, 6))
    ]
    with store.transaction(db):
        db.conn.executemany(
            "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ratings,
        )
    with tempfile.TemporaryDirectory() as tmp:
        ingest_paths(db, [two_hundred_fifty_paper_dump(Path(tmp))], dump_date="2025-03-10")
    started = time.perf_counter()
    report = pipeline.refit(db, settings)
    print(
        f"setup: {people} people, {len(ratings)} likes, {report['papers']} papers; "
        f"refit {time.perf_counter() - started:.1f} s (nightly job, not timed below)"
    )
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout.readline().strip() == "ready"
        os.environ["PAPERFEED_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        os.environ["PAPERFEED_SECRET_KEY"] = "bench"
        settings = load_settings(Path(tmp) / "data")
        settings.ensure_dirs()
        build(settings, args.people)
        db = store.open_db(settings.db_path)
        times, sent = [], 0
        for run in range(args.runs):
            now = datetime(2025, 3, 10, 7, 5, tzinfo=UTC) + timedelta(days=run)
            started = time.perf_counter()
            report = digest.send_due_digests(db, settings, now=now)
            times.append(time.perf_counter() - started)
            sent += report.sent
            print(
                f"run {run + 1}: {times[-1]:.1f} s: choosing papers (ranking) "
                f"{report.choose_seconds:.1f} s, render + deliver {report.deliver_seconds:.1f} s "
                f"({report.summary()})"
            )
        server.send_signal(signal.SIGTERM)
        received = int(server.communicate(timeout=30)[0].strip() or 0)
    median = statistics.median(times)
    print(
        f"digest for {args.people} people, 250-paper dump: median {median:.1f} s over "
        f"{len(times)} runs ({args.people / median:.0f} people/s); target < 60 s; "
        f"SMTP server received {received} of {sent} sent"
    )


if __name__ == "__main__":
    main()
