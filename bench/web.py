"""The web app under load: gunicorn with 2 workers, one person with 200 ratings, a
250-paper dump; 20 concurrent clients each load the feed page and post a like (then
undo it, so the person keeps 200 ratings). Reports p50/p99 latency per kind, requests
per second and the server's CPU per request (utime + stime of the gunicorn master and
its workers, from /proc, over the measured phase), the median of several runs.
``--churn`` changes the ratings before every feed load instead, so every load recomputes
the ranking. ``--refit-loop`` runs ``paperfeed refit --wait`` (the real CLI, in its own
processes, one after another) for the whole measured phase and reports the refits
completed and every error: non-2xx responses, connection errors, refits that exited
non-zero.

Usage: python bench/web.py [--clients 20] [--rounds 20] [--runs 3] [--workers 2]
                           [--threads 1] [--churn] [--refit-loop [N]]
                           [--server-log FILE]
Target: feed page p99 under 50 ms; with --refit-loop, 0 errors. Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import itertools
import json
import os
import random
import re
import resource
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


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat from the third (state) on: field n is ``[n - 3]``."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


class ServerCPU:
    """CPU seconds used by the gunicorn master and its workers, read from /proc.

    utime + stime of the master and of every live worker, plus cutime + cstime (the
    children a process has reaped): a worker that died or was replaced during the phase
    (a WORKER TIMEOUT) is then still counted, in its master's cutime.
    """

    def __init__(self, master: int):
        self.master = master

    def workers(self) -> set[int]:
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if int(_proc_stat(int(entry))[1]) == self.master:
                        found.add(int(entry))
                except (OSError, IndexError, ValueError):
                    continue  # gone meanwhile, or not readable
        return found

    def snapshot(self) -> tuple[float, set[int]]:
        """(CPU seconds of master + workers, the workers' pids)."""
        workers = self.workers()
        ticks = 0
        for pid in (self.master, *workers):
            try:
                fields = _proc_stat(pid)
            except OSError:
                continue  # a worker that exited since listing: its master has it
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
        return ticks / _TICK, workers

    def rss_mb(self) -> float:
        """Resident memory of the workers, in MB."""
        total = 0
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        return total / 1024


class RefitLoop:
    """``paperfeed refit [--wait]`` run again and again, each in its own process, from
    :meth:`start` until :meth:`stop` (which lets the refit under way finish).

    ``loops`` > 1 runs that many loops side by side, so refits also meet each other at
    the writer lock.
    """

    def __init__(self, data: Path, env: dict, loops: int = 1):
        self.env = env
        probe = subprocess.run(
            [sys.executable, "-m", "recommender.cli", "--data-dir", str(data), "refit", "--help"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        #: this version's refit can queue behind another (older code had no lock)
        self.wait = "--wait" in probe.stdout
        self.command = [sys.executable, "-m", "recommender.cli", "--data-dir", str(data)]
        self.command += ["refit"] + (["--wait"] if self.wait else [])
        self.loops = loops
        self.done: list[float] = []  # seconds of each refit that exited 0 and published
        self.skipped: list[str] = []  # exited 0 without publishing (another was running)
        self.failed: list[str] = []  # non-zero exits: status and the end of stderr
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop) for _ in range(loops)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            proc = subprocess.run(
                self.command, cwd=REPO, env=self.env, capture_output=True, text=True
            )
            elapsed = time.perf_counter() - start
            with self._lock:
                if proc.returncode != 0:
                    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
                    self.failed.append(f"exit {proc.returncode}:\n{tail}")
                elif "running" in proc.stdout and "model b" not in proc.stdout:
                    self.skipped.append(proc.stdout.strip())
                else:
                    self.done.append(elapsed)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()


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
        self.cookies: dict[str, str] = {}  # the session and the login device cookie
        self.token = ""

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

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
        if not head.startswith(b"HTTP/1.") or len(head) < 12:
            raise ConnectionError(f"no HTTP response to {method} {path} ({len(raw)} bytes)")
        status = int(head[9:12])
        for cookie in _SET_COOKIE.finditer(head):
            name, _, value = cookie.group(1).decode().partition("=")
            self.cookies[name] = value
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
        if status != 302:
            raise ConnectionError(f"log in answered {status}, not 302")


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

    Every failure is an error, recorded in ``errors`` and the loop goes on: a non-2xx
    answer, a connection refused, reset or timed out, a feed page without papers.
    """
    client = Client(port)
    try:
        client.log_in()
    except OSError as exc:
        errors.append(f"log in: {type(exc).__name__}: {exc}")
        if ready is not None:
            ready.abort()  # the run is void: the others must not wait for this client
        return
    if ready is not None:
        # Logging in hashes a password (scrypt, ~100 ms of CPU): start measuring only
        # when every client is in, or the first feed loads queue behind the logins.
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
    previous = None

    def rate(target: int, value: str, record: bool = True) -> None:
        try:
            status, _, elapsed = client.request(
                "POST",
                f"/papers/{target}/rate",
                {"value": value},
                {"X-CSRFToken": client.token, "Accept": "application/json"},
            )
        except OSError as exc:
            errors.append(f"rate: {type(exc).__name__}: {exc}")
            return
        if not 200 <= status < 300:
            errors.append(f"rate {status}")
        if record:
            out["rate"].append(elapsed)

    for round_ in range(rounds):
        try:
            status, page, elapsed = client.request("GET", "/")
        except OSError as exc:
            errors.append(f"feed: {type(exc).__name__}: {exc}")
            continue
        if not 200 <= status < 300:
            errors.append(f"feed {status}")
            continue
        out["feed"].append(elapsed)
        if churn is None:
            pick = random.randrange(10)  # one of the first ten papers (stop reading there)
            found = list(itertools.islice(_PAPER.finditer(page), pick, pick + 1))
            if not found:
                errors.append("feed page without papers")
                continue
            paper = int(found[0].group(1))
            posts = [(paper, "like"), (paper, "undo")]
        else:
            paper = churn[round_ % len(churn)]
            posts = [(paper, "like")] + ([(previous, "undo")] if previous else [])
            previous = paper
        for target, value in posts:
            rate(target, value)
    if churn is not None and previous:
        rate(previous, "undo", record=False)  # leave the ratings as they were


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def one_run(
    port: int,
    clients: int,
    rounds: int,
    churn: list[int] | None = None,
    cpu: ServerCPU | None = None,
) -> dict:
    out: dict[str, list[float]] = {"feed": [], "rate": []}
    errors: list[str] = []
    # Each client likes its own older papers (none rated, none in the newest dump).
    pools = [churn[i::clients] for i in range(clients)] if churn else [None] * clients
    began: list[tuple] = []

    def measure_from() -> None:  # once every client has logged in
        began.append((time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)))
        if cpu is not None:
            began.append(cpu.snapshot())

    ready = threading.Barrier(clients, action=measure_from)
    threads = [
        threading.Thread(target=client_loop, args=(port, rounds, out, errors, pools[i], ready))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not began:  # a client could not log in: nothing was measured
        return {"errors": len(errors), "error_kinds": errors, "void": True}
    (start, own_before), *server_before = began
    wall = time.perf_counter() - start
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    total = len(out["feed"]) + len(out["rate"])
    result = {
        "feed_p50": percentile(out["feed"], 0.5) * 1000,
        "feed_p99": percentile(out["feed"], 0.99) * 1000,
        "rate_p50": percentile(out["rate"], 0.5) * 1000,
        "rate_p99": percentile(out["rate"], 0.99) * 1000,
        "rps": total / wall,
        "errors": len(errors),
        "error_kinds": errors,
        "requests": total,
        "feeds": len(out["feed"]),
        # the load generator's own CPU (it shares the cores with the server)
        "client_cpu_ms": 1000
        * (own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime)
        / max(total, 1),
    }
    if cpu is not None:
        (cpu_before, workers_before), (cpu_after, workers_after) = server_before[0], cpu.snapshot()
        used = cpu_after - cpu_before
        result["cpu_ms_request"] = 1000 * used / max(total, 1)
        result["cpu_ms_feed"] = 1000 * used / max(len(out["feed"]), 1)
        result["cpu_busy"] = used / wall  # cores' worth of server CPU during the run
        result["worker_restarts"] = len(workers_after - workers_before)
    return result


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
    parser.add_argument(
        "--refit-loop",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="run `paperfeed refit --wait` in a loop (N loops side by side, default 1) "
        "for the whole measured phase",
    )
    parser.add_argument(
        "--server-log",
        type=Path,
        help="keep gunicorn's log here (default: a temporary file, shown if not empty)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="paperfeed-bench-web-"))
    data = root / "data"
    log_path = args.server_log or root / "server.log"
    server = log_file = None
    refits = None
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
            # the code under test is this checkout's, in the server and the refits too
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        log_file = open(log_path, "w")  # noqa: SIM115 (closed in finally)
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
            stdout=log_file,
            stderr=log_file,
        )
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        # Warm up both workers (model load) before measuring.
        one_run(port, 4, 3)
        cpu = ServerCPU(server.pid)
        rss_before = cpu.rss_mb()
        if args.refit_loop:
            refits = RefitLoop(data, env, args.refit_loop)
            refits.start()
        started = time.perf_counter()
        runs = [one_run(port, args.clients, args.rounds, churn, cpu) for _ in range(args.runs)]
        if refits is not None:
            refits.stop()
        phase = time.perf_counter() - started
        measured = [r for r in runs if not r.get("void")]
        med = {
            key: statistics.median(r[key] for r in measured)
            for key in (measured[0] if measured else {})
            if key != "error_kinds"
        }
        kind = "sync" if args.threads == 1 else f"gthread x{args.threads}"
        print(
            f"{args.clients} clients, gunicorn {args.workers} {kind} workers, 250-paper dump, "
            f"person with 200 ratings; median of {args.runs} runs; "
            + (
                "ratings change before every feed load (--churn)"
                if args.churn
                else "like + undo between feed loads"
            )
            + (f"; refit loop x{args.refit_loop}" if args.refit_loop else "")
        )
        print(f"  code under test: {Path(pipeline.__file__).parent}")
        for i, r in enumerate(runs, start=1):
            if r.get("void"):
                print(f"  run {i}: void ({r['errors']} errors before measuring)")
                continue
            print(
                f"  run {i}: feed p50 {r['feed_p50']:.1f} ms p99 {r['feed_p99']:.1f} ms, "
                f"{r['rps']:.0f} req/s, server CPU {r['cpu_ms_request']:.2f} ms/request "
                f"({r['cpu_ms_feed']:.2f} ms per feed load + its 2 POSTs), "
                f"errors {r['errors']}"
            )
        errors = sum(r["errors"] for r in runs)
        if measured:
            print(
                f"feed page   p50 {med['feed_p50']:.1f} ms  p99 {med['feed_p99']:.1f} ms "
                f"(target p99 < 50 ms)"
            )
            print(f"rate (POST) p50 {med['rate_p50']:.1f} ms  p99 {med['rate_p99']:.1f} ms")
            print(f"throughput  {med['rps']:.0f} requests/s; errors {errors} in all runs")
            print(
                f"server CPU  {med['cpu_ms_request']:.2f} ms per request, "
                f"{med['cpu_ms_feed']:.2f} ms per feed load with its 2 POSTs "
                f"({med['cpu_busy']:.2f} cores busy; load generator "
                f"{med['client_cpu_ms']:.2f} ms per request)"
            )
            restarts = sum(r["worker_restarts"] for r in measured)
            print(
                f"workers     RSS {rss_before:.0f} -> {cpu.rss_mb():.0f} MB; "
                f"{restarts} worker restart(s)"
            )
        if refits is not None:
            pointer = data / "models" / "CURRENT"
            current = pointer.read_text().strip() if pointer.exists() else None
            served = collections.Counter()
            for _ in range(4 * args.workers):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/healthz")
                    served[json.loads(conn.getresponse().read()).get("model_version")] += 1
                except (OSError, ValueError):
                    served["(no answer)"] += 1
            done = refits.done
            print(
                f"refit loop  {' '.join(refits.command[3:])!r} x{refits.loops} over "
                f"{phase:.1f} s: {len(done)} refits completed"
                + (f" (median {statistics.median(done):.1f} s each)" if done else "")
                + f", {len(refits.skipped)} skipped (another running), "
                f"{len(refits.failed)} exited non-zero"
                + ("" if refits.wait else " [this version's refit has no --wait]")
            )
            print(
                f"            CURRENT {current}; /healthz x{sum(served.values())} served "
                + ", ".join(f"{name} x{n}" for name, n in served.items())
            )
            errors += len(refits.failed)
            print(
                f"errors      {errors} (HTTP non-2xx / connection: "
                f"{sum(r['errors'] for r in runs)}, refit non-zero exits: "
                f"{len(refits.failed)}; target 0)"
            )
        kinds = collections.Counter(e for r in runs for e in r["error_kinds"])
        for what, n in kinds.most_common():
            print(f"  error x{n}: {what}")
        for failure in refits.failed[:3] if refits is not None else []:
            print("  refit " + failure.replace("\n", "\n    "))
        return 0
    finally:
        if refits is not None:
            refits.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if log_file is not None:
            log_file.close()
            text = log_path.read_text(errors="replace").strip()
            if text and args.server_log is None:
                lines = text.splitlines()
                print(f"server log ({len(lines)} lines, last 40):", file=sys.stderr)
                print("\n".join(lines[-40:]), file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
