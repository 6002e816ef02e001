"""The web app under load: gunicorn with 2 workers, one person with 200 ratings, a
250-paper dump; 20 concurrent clients each load the feed page and post a like (then
undo it, so the person keeps 200 ratings). Reports p50/p99 latency per kind and
requests per second, the median of several runs. ``--churn`` changes the ratings
before every feed load instead, so every load recomputes the ranking.

Usage: python bench/web.py [--clients 20] [--rounds 20] [--runs 3] [--workers 2]
                           [--threads 1] [--churn]
Target: feed page p99 under 50 ms. Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from werkzeug.security import generate_password_hash  # noqa: E402

from recommender import pipeline, store  # noqa: E402
from recommender.config import load_settings  # noqa: E402
from recommender.dumps import parse_dump_file  # noqa: E402
from recommender.ingest import ingest_paths  # noqa: E402

SAMPLES = REPO / "samples" / "dumps"
EMAIL, PASSWORD = "bench@example.org", "bench password"
_LENGTH = re.compile(rb"\r\nContent-Length: (\d+)", re.IGNORECASE)
_SET_COOKIE = re.compile(rb"\r\nSet-Cookie: ([^;\r\n]+)", re.IGNORECASE)
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


def build_data(data: Path) -> None:
    """Three sample dumps as history, a 250-paper newest dump, a person with 200 ratings."""
    db = store.open_db(data / "paperfeed.db")
    history = sorted(SAMPLES.glob("*.txt"))
    for day, path in enumerate(history[:3], start=1):
        ingest_paths(db, [path], dump_date=f"2026-11-{day:02d}")
    newest = [p for p in parse_dump_file(history[3]).papers]
    rows = [{"title": p.title, "abstract": p.abstract} for p in newest]
    extra = [p for path in history[:3] for p in parse_dump_file(path).papers]
    rows += [
        {"title": f"{p.title} (extended version)", "abstract": p.abstract}
        for p in extra[: 250 - len(rows)]
    ]
    dump = data / "newest.jsonl"
    dump.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ingest_paths(db, [dump], dump_date="2026-11-20")
    uid = store.create_user(db, EMAIL, generate_password_hash(PASSWORD))
    rng = random.Random(0)
    old = [r[0] for r in db.execute("SELECT id FROM papers WHERE first_dump_id < 4").fetchall()]
    for paper in rng.sample(old, 200):
        store.set_rating(db, uid, paper, 1 if rng.random() < 0.8 else -1)
    pipeline.refit(db, load_settings(data))
    db.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One browser: a session cookie and the CSRF token, one request per connection.

    gunicorn's sync workers close the connection after every response, so each request
    connects anew (``Connection: close`` asks any other worker class to do the same).
    The load generator runs on the same two cores as the server and every millisecond of
    CPU it spends is taken from the server: requests are written and responses read with
    plain sockets, not ``http.client`` (whose header parsing cost more CPU per request
    than a rating POST's view).
    """

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None, headers=None):
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        data = b""
        if body is not None:
            data = urllib.parse.urlencode(body).encode()
            lines += ["Content-Type: application/x-www-form-urlencoded"]
            lines += [f"Content-Length: {len(data)}"]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(message)  # one send: no Nagle / delayed-ACK stall on the body
            raw = b""
            while b"\r\n\r\n" not in raw and (chunk := sock.recv(262144)):
                raw += chunk
            head, _, content = raw.partition(b"\r\n\r\n")
            length = _LENGTH.search(head)
            want = int(length.group(1)) if length else None
            while (want is None or len(content) < want) and (chunk := sock.recv(262144)):
                content += chunk
            # Close as soon as the response is complete, as a browser does on
            # "Connection: close": gunicorn's sync worker waits for the client's FIN
            # before it takes the next request.
        elapsed = time.perf_counter() - start
        status = int(head[9:12])
        cookie = _SET_COOKIE.search(head)
        if cookie:
            self.cookie = cookie.group(1).decode()
        text = content.decode()
        found = _TOKEN.search(text)
        if found:
            self.token = found.group(1) or found.group(2)
        return status, text, elapsed

    def log_in(self) -> None:
        self.request("GET", "/login")
        status, _, _ = self.request(
            "POST", "/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": self.token}
        )
        assert status == 302, status


_PAPER = re.compile(r'data-paper-id="(\d+)"')


def client_loop(
    port: int,
    rounds: int,
    out: dict[str, list[float]],
    errors: list[str],
    churn: list[int] | None = None,
    ready: threading.Barrier | None = None,
):
    """Each round: load the feed, then two rating POSTs.

    Default: like a paper from the feed and undo it, so the person's ratings are the
    same at every feed load (a reload). With ``churn`` (older paper ids, one list per
    client): like a new older paper and undo the previous one, so the ratings differ at
    every feed load and the ranking must be recomputed every time.
    """
    client = Client(port)
    client.log_in()
    if ready is not None:
        # Logging in hashes a password (scrypt, ~100 ms of CPU): start measuring only
        # when every client is in, or the first feed loads queue behind the logins.
        ready.wait()
    previous = None
    for round_ in range(rounds):
        status, page, elapsed = client.request("GET", "/")
        if status != 200:
            errors.append(f"feed {status}")
            continue
        out["feed"].append(elapsed)
        if churn is None:
            pick = random.randrange(10)  # one of the first ten papers (stop reading there)
            found = itertools.islice(_PAPER.finditer(page), pick, pick + 1)
            paper = int(next(found).group(1))
            posts = [(paper, "like"), (paper, "undo")]
        else:
            paper = churn[round_ % len(churn)]
            posts = [(paper, "like")] + ([(previous, "undo")] if previous else [])
            previous = paper
        for target, value in posts:
            status, _, elapsed = client.request(
                "POST",
                f"/papers/{target}/rate",
                {"value": value},
                {"X-CSRFToken": client.token, "Accept": "application/json"},
            )
            if status != 200:
                errors.append(f"rate {status}")
            out["rate"].append(elapsed)
    if churn is not None and previous:
        client.request(
            "POST",
            f"/papers/{previous}/rate",
            {"value": "undo"},
            {"X-CSRFToken": client.token, "Accept": "application/json"},
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def one_run(port: int, clients: int, rounds: int, churn: list[int] | None = None) -> dict:
    out: dict[str, list[float]] = {"feed": [], "rate": []}
    errors: list[str] = []
    # Each client likes its own older papers (none rated, none in the newest dump).
    pools = [churn[i::clients] for i in range(clients)] if churn else [None] * clients
    began: list[float] = []
    ready = threading.Barrier(clients, action=lambda: began.append(time.perf_counter()))
    threads = [
        threading.Thread(target=client_loop, args=(port, rounds, out, errors, pools[i], ready))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began[0]
    total = len(out["feed"]) + len(out["rate"])
    return {
        "feed_p50": percentile(out["feed"], 0.5) * 1000,
        "feed_p99": percentile(out["feed"], 0.99) * 1000,
        "rate_p50": percentile(out["rate"], 0.5) * 1000,
        "rate_p99": percentile(out["rate"], 0.99) * 1000,
        "rps": total / wall,
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20, help="feed loads per client per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (> 1: gthread workers)"
    )
    parser.add_argument(
        "--churn",
        action="store_true",
        help="ratings change before every feed load (like a new older paper, undo the last)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="paperfeed-bench-web-"))
    data = root / "data"
    server = None
    try:
        build_data(data)
        churn = None
        if args.churn:
            db = store.open_db(data / "paperfeed.db")
            churn = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM papers WHERE first_dump_id < 4 AND id NOT IN"
                    " (SELECT paper_id FROM ratings) ORDER BY id"
                ).fetchall()
            ]
            db.close()
        port = free_port()
        env = {
            **os.environ,
            "PAPERFEED_DATA_DIR": str(data),
            "PAPERFEED_SECRET_KEY": "bench",
            "OPENBLAS_NUM_THREADS": "1",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [
                str(gunicorn),
                "--config",
                "python:web.gunicorn_conf",  # as in the Procfile
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "web:create_app()",
            ],
            cwd=REPO,
            env=env,
        )
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        # Warm up both workers (model load) before measuring.
        one_run(port, 4, 3)
        runs = [one_run(port, args.clients, args.rounds, churn) for _ in range(args.runs)]
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        kind = "sync" if args.threads == 1 else f"gthread x{args.threads}"
        print(
            f"{args.clients} clients, gunicorn {args.workers} {kind} workers, 250-paper dump, "
            f"person with 200 ratings; median of {args.runs} runs; "
            + (
                "ratings change before every feed load (--churn)"
                if args.churn
                else "like + undo between feed loads"
            )
        )
        for i, r in enumerate(runs, start=1):
            print(
                f"  run {i}: feed p50 {r['feed_p50']:.1f} ms p99 {r['feed_p99']:.1f} ms, "
                f"{r['rps']:.0f} req/s"
            )
        print(
            f"feed page   p50 {med['feed_p50']:.1f} ms  p99 {med['feed_p99']:.1f} ms "
            f"(target p99 < 50 ms)"
        )
        print(f"rate (POST) p50 {med['rate_p50']:.1f} ms  p99 {med['rate_p99']:.1f} ms")
        print(f"throughput  {med['rps']:.0f} requests/s; errors {int(med['errors'])}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
