"""The reliability benchmark: fault scenarios against real processes, on loopback only.

Each scenario runs real ``paperfeed`` processes on real data dirs (under a temporary
folder), a real aiosmtpd server in its own process (``bench/_smtp_sink.py``, which logs
each message before its 250 reply) and gunicorn for the web app, injects a fault
(``kill -9`` at a random moment, the SMTP server killed or ``SIGSTOP``-ed, 2,000
concurrent rating POSTs beside an ingest and a refit, two refits at once), lets the
system recover the way an operator would (run the command again), and counts:

* **lost**: a paper, digest or rating that should be there and is not;
* **duplicated**: a digest delivered twice to one person for one period;
* **half-written**: a partial dump in the database, a partial ``.eml`` or staging
  folder left behind;
* **crashed**: a process that failed on its own (a traceback, a non-zero exit other
  than the documented ones, a 5xx answer, a run that did not stop in time).

Every loop is bounded in count and time; the whole run takes about 8 minutes on two
cores. Prints one table (Markdown), the figures of docs/benchmarks.md.

Usage: python bench/faults.py [--kills 20] [--sharp-kills 10] [--seed 0] [--only NAME ...]
Names: ingest outbox smtp after-250 smtp-killed smtp-hung ratings refits.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from werkzeug.security import generate_password_hash  # noqa: E402

from recommender import pipeline, store  # noqa: E402
from recommender.config import load_settings  # noqa: E402
from recommender.ingest import ingest_paths  # noqa: E402

BIN = Path(sys.executable).parent
PAPERFEED = str(BIN / "paperfeed")
SINK = REPO / "bench" / "_smtp_sink.py"
SAMPLE = REPO / "samples" / "dumps" / "2026-11-16_000_7b2f11b90d39ad34.txt"
NOW = datetime(2025, 3, 10, 6, 5, tzinfo=UTC)  # 07:05 in Berlin: everyone is due
ENV = {
    **os.environ,
    "PAPERFEED_SECRET_KEY": "faults-bench",
    "PAPERFEED_BASE_URL": "http://paperfeed.test",
    "OPENBLAS_NUM_THREADS": "1",
}
ENV.pop("PAPERFEED_SMTP_URL", None)
ENV.pop("PAPERFEED_INBOX_DIR", None)


@dataclass
class Row:
    scenario: str
    tries: int = 0
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    crashed: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def paperfeed(data: Path, *args: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run(
        [PAPERFEED, "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ENV, **(env or {})},
    )


def spawn(data: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [PAPERFEED, "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **(env or {})},
    )


def kill_at(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``process`` after ``delay`` seconds; False if it had finished already."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return True


def free_port() -> int:
    """A loopback port nothing listens on (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """bench/_smtp_sink.py in its own process (so it can be killed or stopped)."""

    def __init__(self, folder: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = folder / f"accepted-{self.port}.log"
        self.log.touch()
        self.process = subprocess.Popen(
            [sys.executable, str(SINK), str(self.port), str(self.log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def url(self, timeout: float = 2) -> str:
        return f"smtp://127.0.0.1:{self.port}?timeout={timeout}"

    def accepted(self) -> collections.Counter:
        return collections.Counter(line.split()[1] for line in self.log.read_text().splitlines())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait()


# -- data dirs ----------------------------------------------------------------------------------


def big_dump(path: Path, papers: int, tag: str) -> Path:
    words = [
        "model",
        "data",
        "learning",
        "training",
        "graph",
        "language",
        "vision",
        "robust",
        "sparse",
        "attention",
    ]
    rng = random.Random(tag)
    with path.open("w", encoding="utf-8") as out:
        for i in range(papers):
            title = f"{tag} paper {i}: " + " ".join(rng.choices(words, k=6))
            abstract = " ".join(rng.choices(words, k=120)) + "."
            out.write(json.dumps({"id": f"{tag}-{i}", "title": title, "abstract": abstract}))
            out.write("\n")
    return path


def digest_template(root: Path, people: int) -> Path:
    """A data dir with the first sample dump, a fitted model and ``people`` subscribers."""
    data = root / "digest-template"
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, [SAMPLE])
    for i in range(people):
        db["users"].insert(
            {
                "email": f"p{i:04}@example.org",
                "created_at": "2025-01-01T00:00:00+00:00",
                "email_confirmed_at": "2025-01-01T00:00:00+00:00",
                "timezone": "Europe/Berlin",
                "digest_hour": 7,
                "digest_size": 3,
                "keywords": "language models",
            }
        )
    os.environ["PAPERFEED_SECRET_KEY"] = ENV["PAPERFEED_SECRET_KEY"]
    settings = load_settings(data)
    pipeline.refit(db, settings)  # publish the model, as the scheduler does after an ingest
    db.close()
    return data


def fresh(template: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target)
    return target


def ledger_states(data: Path) -> collections.Counter:
    with store.connect(data / "paperfeed.db") as db:
        return collections.Counter(
            dict(db.execute("SELECT state, count(*) FROM digests GROUP BY state").fetchall())
        )


# -- scenarios ----------------------------------------------------------------------------------


def kill_during_ingest(root: Path, kills: int, rng: random.Random) -> Row:
    row = Row("kill -9 during `paperfeed ingest` (2 files, 2 x 8,000 papers)")
    folder = root / "ingest-files"
    folder.mkdir()
    big_dump(folder / "a.jsonl", 8000, "a")
    big_dump(folder / "b.jsonl", 8000, "b")
    empty = root / "ingest-empty"
    paperfeed(empty, "migrate")
    start = time.monotonic()
    paperfeed(fresh(empty, root / "ingest-probe"), "migrate")
    floor = time.monotonic() - start  # start-up: a kill before this stores nothing anyway
    start = time.monotonic()
    full = paperfeed(fresh(empty, root / "ingest-probe"), "ingest", str(folder))
    ceiling = time.monotonic() - start
    assert full.returncode == 0, full.stderr
    landed = 0
    for _ in range(kills):
        data = fresh(empty, root / "ingest-try")
        row.tries += 1
        landed += kill_at(spawn(data, "ingest", str(folder)), rng.uniform(floor, ceiling))
        with store.connect(data / "paperfeed.db") as db:
            dumps = db.execute("SELECT count(*), coalesce(sum(papers), 0) FROM dumps").fetchone()
            papers = db.execute("SELECT count(*) FROM papers").fetchone()[0]
            links = db.execute("SELECT count(*) FROM dump_papers").fetchone()[0]
        if (dumps, papers, links) not in {((0, 0), 0, 0), ((2, 16000), 16000, 16000)}:
            row.half_written += 1
        again = paperfeed(data, "ingest", str(folder))
        with store.connect(data / "paperfeed.db") as db:
            papers = db.execute("SELECT count(*) FROM papers").fetchone()[0]
        if again.returncode != 0:
            row.crashed += 1
        row.lost += 16000 - papers
    row.notes.append(f"{landed} kills landed before exit, at {floor:.1f}-{ceiling:.1f} s")
    return row


def kill_during_digest(root: Path, template: Path, kills: int, rng: random.Random, smtp: bool):
    kind = "SMTP (aiosmtpd)" if smtp else "file outbox"
    people = PEOPLE
    row = Row(f"kill -9 during `paperfeed digest`, {kind}, {people} people")
    # How long a whole run takes, to aim the kills inside it.
    probe = fresh(template, root / "digest-probe")
    sink = Sink(root) if smtp else None
    env = {"PAPERFEED_SMTP_URL": sink.url(5)} if sink else None
    start = time.monotonic()
    paperfeed(probe, "digest", "--status")
    floor = time.monotonic() - start
    start = time.monotonic()
    done = paperfeed(probe, "digest", "--now", NOW.isoformat(), env=env)
    ceiling = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    if sink:
        sink.stop()
    landed = 0
    for _ in range(kills):
        data = fresh(template, root / "digest-try")
        sink = Sink(root) if smtp else None
        env = {"PAPERFEED_SMTP_URL": sink.url(5)} if sink else None
        row.tries += 1
        child = spawn(data, "digest", "--now", NOW.isoformat(), env=env)
        landed += kill_at(child, rng.uniform(floor, ceiling))
        rerun = paperfeed(data, "digest", "--now", NOW.isoformat(), env=env)
        if rerun.returncode != 0 or "Traceback" in rerun.stderr:
            row.crashed += 1
        if sink:
            got = sink.accepted()
            sink.stop()
        else:
            got = collections.Counter()
            for path in (data / "outbox").glob("*.eml"):
                message = message_from_bytes(path.read_bytes(), policy=policy.default)
                if not message.is_multipart() or len(message.get_payload()) != 2:
                    row.half_written += 1
                got[message["To"]] += 1
        expected = {f"p{i:04}@example.org" for i in range(people)}
        row.lost += sum(1 for address in expected if got[address] == 0)
        row.duplicated += sum(n - 1 for n in got.values() if n > 1)
        states = ledger_states(data)
        if set(states) - {"sent"}:
            row.notes.append(f"ledger after rerun: {dict(states)}")
    row.notes.insert(0, f"{landed} kills landed mid-run, at {floor:.1f}-{ceiling:.1f} s")
    return row


def kill_after_a_250(root: Path, template: Path, kills: int, rng: random.Random) -> Row:
    """The sharp case of item 11: SIGKILL 0-5 ms after the server's 250 for a message."""
    row = Row(f"kill -9 0-5 ms after a 250 reply (SMTP), {PEOPLE} people")
    landed = 0
    for _ in range(kills):
        row.tries += 1
        data = fresh(template, root / "after-250")
        sink = Sink(root)
        env = {"PAPERFEED_SMTP_URL": sink.url(5)}
        child = spawn(data, "digest", "--now", NOW.isoformat(), env=env)
        after = rng.randrange(1, PEOPLE // 2)
        deadline = time.monotonic() + 60
        while len(sink.log.read_text().splitlines()) < after and time.monotonic() < deadline:
            time.sleep(0.002)
        Path(str(sink.log) + ".kill").write_text(f"{child.pid} {rng.uniform(0, 5):.2f}")
        child.communicate(timeout=120)
        landed += child.returncode == -signal.SIGKILL
        rerun = paperfeed(data, "digest", "--now", NOW.isoformat(), env=env)
        if rerun.returncode != 0:
            row.crashed += 1
        got = sink.accepted()
        sink.stop()
        row.lost += sum(1 for i in range(PEOPLE) if got[f"p{i:04}@example.org"] == 0)
        row.duplicated += sum(n - 1 for n in got.values() if n > 1)
    row.notes.append(f"{landed} kills landed mid-run")
    return row


def smtp_server_fault(root: Path, template: Path, tries: int, fault: str) -> Row:
    """The server is killed (or SIGSTOP-ed) once it has accepted some messages."""
    row = Row(f"SMTP server {fault} mid-run (timeout 1 s), {PEOPLE} people")
    stops = []
    for _ in range(tries):
        row.tries += 1
        data = fresh(template, root / "smtp-fault")
        sink = Sink(root)
        port = sink.port
        child = spawn(
            data, "digest", "--now", NOW.isoformat(), env={"PAPERFEED_SMTP_URL": sink.url(1)}
        )
        deadline = time.monotonic() + 60
        while len(sink.log.read_text().splitlines()) < PEOPLE // 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        hit = time.monotonic()
        if fault == "killed":
            sink.process.kill()
        else:
            sink.process.send_signal(signal.SIGSTOP)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            row.crashed += 1
        stops.append(time.monotonic() - hit)
        if child.returncode != 1 or "stopped early" not in out or "Traceback" in err:
            row.crashed += 1
        accepted_before = sink.accepted()
        if fault == "killed":
            sink.process.wait()
            sink = Sink(root, port)  # the server comes back on the same port
            sink.log.write_text("".join(f"- {a}\n" for a in accepted_before.elements()))
        else:
            sink.process.send_signal(signal.SIGCONT)
        later = (NOW + timedelta(minutes=10)).isoformat()
        rerun = paperfeed(data, "digest", "--now", later, env={"PAPERFEED_SMTP_URL": sink.url(5)})
        if rerun.returncode != 0:
            row.crashed += 1
        got = sink.accepted()
        sink.stop()
        row.lost += sum(1 for i in range(PEOPLE) if got[f"p{i:04}@example.org"] == 0)
        row.duplicated += sum(n - 1 for n in got.values() if n > 1)
    row.notes.append(
        f"run stopped {max(stops):.1f} s (at most) after the fault; rerun sent the rest"
    )
    return row


class Browser:
    """One person's session against the web app: cookie and CSRF token."""

    _TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')

    def __init__(self, port: int):
        self.port, self.cookie, self.token = port, "", ""

    def request(self, method: str, path: str, body: dict | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = urllib.parse.urlencode(body).encode() if body is not None else None
        head = {"Cookie": self.cookie, **(headers or {})}
        if data is not None:
            head["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, data, head)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                self.cookie = value.split(";", 1)[0]
        found = self._TOKEN.search(text)
        if found:
            self.token = found.group(1) or found.group(2)
        conn.close()
        return response.status, text


def ratings_beside_ingest(root: Path, posts: int, people: int = 20) -> Row:
    row = Row(f"{posts} concurrent rating POSTs ({people} people) beside ingest + refit")
    data = root / "web"
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, [SAMPLE])
    fast = generate_password_hash("bench password", method="pbkdf2:sha256:1000")
    for i in range(people):
        store.create_user(db, f"r{i:02}@example.org", fast)
    papers = [r[0] for r in db.execute("SELECT id FROM papers ORDER BY id").fetchall()]
    db.close()
    paperfeed(data, "refit")
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--config",
            "python:web.gunicorn_conf",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "web:create_app()",
        ],
        cwd=REPO,
        env={**ENV, "PAPERFEED_DATA_DIR": str(data)},
    )
    try:
        for _ in range(400):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/login")
                break
            except OSError:
                time.sleep(0.05)
        browsers = []
        for i in range(people):
            browser = Browser(port)
            browser.request("GET", "/login")
            status, _ = browser.request(
                "POST",
                "/login",
                {
                    "email": f"r{i:02}@example.org",
                    "password": "bench password",
                    "csrf_token": browser.token,
                },
            )
            assert status == 302, status
            browser.request("GET", "/settings")
            browsers.append(browser)
        each = posts // people
        expected: dict[tuple[int, int], int] = {}
        statuses: collections.Counter = collections.Counter()
        lock = threading.Lock()

        def person(index: int, browser: Browser) -> None:
            rng = random.Random(index)
            for paper in rng.sample(papers, each):
                value = rng.choice(["like", "dislike"])
                try:
                    status, _ = browser.request(
                        "POST",
                        f"/papers/{paper}/rate",
                        {"value": value},
                        {"X-CSRFToken": browser.token, "Accept": "application/json"},
                    )
                except OSError:
                    status = 0
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        expected[(index + 1, paper)] = 1 if value == "like" else -1

        big = big_dump(root / "web-big.jsonl", 8000, "web")
        ingest = spawn(data, "ingest", str(big))
        refit = spawn(data, "refit")
        threads = [threading.Thread(target=person, args=(i, b)) for i, b in enumerate(browsers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        for background in (ingest, refit):
            _, err = background.communicate(timeout=300)
            if background.returncode != 0:
                row.crashed += 1
                row.notes.append(err.strip().splitlines()[-1][:120])
        row.tries = sum(statuses.values())
        with store.connect(data / "paperfeed.db") as check:
            ids = {
                email: uid for uid, email in check.execute("SELECT id, email FROM users").fetchall()
            }
            stored = {
                (uid, pid): value
                for uid, pid, value in check.execute(
                    "SELECT user_id, paper_id, value FROM ratings"
                ).fetchall()
            }
        by_index = {i + 1: ids[f"r{i:02}@example.org"] for i in range(people)}
        row.lost = sum(
            1 for (i, paper), value in expected.items() if stored.get((by_index[i], paper)) != value
        )
        row.crashed += sum(n for status, n in statuses.items() if status >= 500 or status == 0)
        row.notes.append("answers: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return row


def two_refits(root: Path, tries: int) -> Row:
    row = Row("two `paperfeed refit` at once (the lead's model publishing)")
    data = root / "refits"
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, [SAMPLE])
    db.close()
    for _ in range(tries):
        row.tries += 1
        pair = [spawn(data, "refit", "--json"), spawn(data, "refit", "--json")]
        for process in pair:
            _, err = process.communicate(timeout=300)
            if process.returncode != 0:
                row.crashed += 1
                row.notes.append(err.strip().splitlines()[-1][:100] if err.strip() else "exit")
        leftovers = list((data / "models").glob(".staging-*"))
        row.half_written += len(leftovers)
    return row


PEOPLE = 100


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--sharp-kills", type=int, default=10, help="kills right after a 250")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="paperfeed-faults-"))
    began = time.monotonic()
    rows: list[Row] = []
    scenarios = {
        "ingest": lambda: kill_during_ingest(root, args.kills, rng),
        "outbox": lambda: kill_during_digest(root, template(), args.kills, rng, smtp=False),
        "smtp": lambda: kill_during_digest(root, template(), args.kills, rng, smtp=True),
        "after-250": lambda: kill_after_a_250(root, template(), args.sharp_kills, rng),
        "smtp-killed": lambda: smtp_server_fault(root, template(), 3, "killed"),
        "smtp-hung": lambda: smtp_server_fault(root, template(), 3, "hung (SIGSTOP)"),
        "ratings": lambda: ratings_beside_ingest(root, 2000),
        "refits": lambda: two_refits(root, 3),
    }
    made: list[Path] = []

    def template() -> Path:
        if not made:
            made.append(digest_template(root, PEOPLE))
        return made[0]

    try:
        for name, scenario in scenarios.items():
            if args.only and name not in args.only:
                continue
            start = time.monotonic()
            row = scenario()
            row.seconds = time.monotonic() - start
            rows.append(row)
            print(f"[{time.monotonic() - began:5.0f} s] {name}: done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| scenario | tries | lost | duplicated | half-written | crashed | seconds | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        notes = "; ".join(dict.fromkeys(r.notes))[:300]
        print(
            f"| {r.scenario} | {r.tries} | {r.lost} | {r.duplicated} | {r.half_written} "
            f"| {r.crashed} | {r.seconds:.0f} | {notes} |"
        )
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
