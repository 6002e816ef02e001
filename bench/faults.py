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

Every loop is bounded in count and time; the whole run takes under 10 minutes on two
cores. Prints one table (Markdown), the figures of docs/benchmarks.md.

Usage: python bench/faults.py [--kills 20] [--sharp-kills 10] [--seed 0] [--only NAME ...]
Names: ingest outbox smtp after-250 smtp-killed smtp-hung ratings refits bundle sources
signup-smtp-hung locked-db disk-full inbox-links.
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
    # Long enough for PAPERFEED_ENV=production (at least 32 characters there).
    "PAPERFEED_SECRET_KEY": "faults-bench-secret-key-of-forty-characters",
    "PAPERFEED_BASE_URL": "http://paperfeed.test",
    "OPENBLAS_NUM_THREADS": "1",
    # Faults, not ranking, are measured here: TF-IDF refits take seconds where embedding
    # the corpus took minutes on a loaded machine.
    "PAPERFEED_TEXT_MODEL": "tfidf",
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
    fivexx: int = 0
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
    # ENV's TF-IDF here too: an embeddings bundle made every digest run below load the
    # sentence model (most of the digest rows' time).
    settings = load_settings(data, ENV)
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


#: Papers in each of the two dumps a killed ingest reads: enough for a run of seconds
#: (the kills land inside it); 8,000 until the whole benchmark had to fit 10 minutes.
INGEST_PAPERS = 4000


def kill_during_ingest(root: Path, kills: int, rng: random.Random) -> Row:
    each = INGEST_PAPERS
    row = Row(f"kill -9 during `paperfeed ingest` (2 files, 2 x {each:,} papers)")
    folder = root / "ingest-files"
    folder.mkdir()
    big_dump(folder / "a.jsonl", each, "a")
    big_dump(folder / "b.jsonl", each, "b")
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
        if (dumps, papers, links) not in {((0, 0), 0, 0), ((2, 2 * each), 2 * each, 2 * each)}:
            row.half_written += 1
        again = paperfeed(data, "ingest", str(folder))
        with store.connect(data / "paperfeed.db") as db:
            papers = db.execute("SELECT count(*) FROM papers").fetchone()[0]
        if again.returncode != 0:
            row.crashed += 1
        row.lost += 2 * each - papers
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


# -- issue 20: failing safe -------------------------------------------------------------------

DUMPS = sorted((REPO / "samples" / "dumps").glob("*.txt"))
#: Every scenario fits TF-IDF models (see ENV); said again where a command runs.
TFIDF = {"PAPERFEED_TEXT_MODEL": "tfidf"}
FAST_PASSWORD = generate_password_hash("bench password", method="pbkdf2:sha256:1000")


def corpus(target: Path, people: int = 8) -> Path:
    """A copy of a data dir with two sample dumps, fitted models and ``people`` accounts
    (``p00@example.org``...), built once."""
    template = target.parents[1] / "corpus-template"
    if not template.exists():
        db = store.open_db(template / "paperfeed.db")
        ingest_paths(db, DUMPS[:1], dump_date="2026-11-19")
        ingest_paths(db, DUMPS[-1:], dump_date="2026-11-20")
        for i in range(8):
            store.create_user(db, f"p{i:02}@example.org", FAST_PASSWORD)
        db.close()
        paperfeed(template, "refit", env=TFIDF)
    shutil.copytree(template, target)
    return target


class Gunicorn:
    """The Procfile's web process: gunicorn with 2 workers on a data dir."""

    def __init__(self, data: Path, env: dict | None = None):
        self.port = free_port()
        self.log = data.parent / f"gunicorn-{self.port}.log"
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--config",
                "python:web.gunicorn_conf",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "web:create_app()",
            ],
            cwd=REPO,
            env={**ENV, **TFIDF, "PAPERFEED_DATA_DIR": str(data), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115 (closed with the process)
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while self.log.read_text().count("paperfeed worker ready") < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, float]:
        """``(status, seconds)``; status 0 when there was no answer."""
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            conn.close()
            return response.status, time.monotonic() - started
        except OSError:
            return 0, time.monotonic() - started

    def workers(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(") ", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry))
        return found

    def browser(self, address: str) -> Browser:
        browser = Browser(self.port)
        browser.request("GET", "/login")
        form = {"email": address, "password": "bench password", "csrf_token": browser.token}
        status, _ = browser.request("POST", "/login", form)
        assert status == 302, status
        browser.request("GET", "/settings")
        return browser

    def stop(self) -> None:
        with_errors = self.process.poll() is not None
        if not with_errors:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def count_5xx(row: Row, statuses: collections.Counter) -> None:
    row.fivexx += sum(n for status, n in statuses.items() if status >= 500 and status != 503)
    row.crashed += statuses.get(0, 0)
    row.notes.append("answers: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))


def damaged_bundle(root: Path, kills: int) -> Row:
    row = Row("truncated bundle file + worker kill -9 (gunicorn, 2 workers)")
    data = corpus(root / "bundle" / "data")
    paperfeed(data, "refit", env=TFIDF)  # b0002 on top of b0001
    settings = load_settings(data)
    web = Gunicorn(data)
    statuses: collections.Counter = collections.Counter()
    try:
        # The bundle's largest array file (one .npy per array since the bundles were split).
        files = (settings.models_dir / "bundles" / "b0002").glob("arrays*")
        target = max((p for p in files if p.is_file()), key=lambda p: p.stat().st_size)
        row.notes.append(f"truncated b0002/{target.name}")
        with open(target, "r+b") as handle:
            handle.truncate(target.stat().st_size // 2)
        for _ in range(kills):
            row.tries += 1
            victim = web.workers()[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while victim in web.workers() or len(web.workers()) < 2:
                if web.process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            for _ in range(10):
                for path in ("/healthz", "/login"):
                    statuses[web.get(path)[0]] += 1
        if web.process.poll() is not None:
            row.crashed += 1
            row.notes.append("gunicorn shut down")
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        row.notes.append(f"/healthz {health['status']}, serving {health.get('model_version')}")
        paperfeed(data, "refit", env=TFIDF)  # the writer's next run re-publishes
        deadline = time.monotonic() + 60
        while True:  # each worker loads the new bundle in the background
            answers = []
            for _ in range(6):
                conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
                conn.request("GET", "/healthz")
                answers.append(json.loads(conn.getresponse().read()))
            health = answers[-1]
            if all(a["status"] == "ok" for a in answers) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        row.notes.append(f"after refit: {health['status']}, {health.get('model_version')}")
    finally:
        web.stop()
    count_5xx(row, statuses)
    return row


class RawServer:
    """A loopback HTTP server that misbehaves: ``behaviour(server, conn)`` per connection."""

    def __init__(self, behaviour):
        self.behaviour, self.sent = behaviour, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        try:
            conn.recv(65536)
            self.behaviour(self, conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


def _trickle_body(server: RawServer, conn) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n"
    )
    for _ in range(600):
        if server.stopping.is_set():
            return
        conn.sendall(b" ")
        time.sleep(1)


def _trickle_headers(server: RawServer, conn) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 600:
        if server.stopping.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(1)


def _endless(server: RawServer, conn) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
    block = b'{"title": "x"},' * 4096
    while server.sent < 1024**3 and not server.stopping.is_set():
        conn.sendall(block)
        server.sent += len(block)


def source_faults(root: Path) -> Row:
    row = Row("source API: 1 byte/s in body, in headers; 1 GB body (`paperfeed fetch`)")
    data = corpus(root / "fetch" / "data")
    with store.connect(data / "paperfeed.db") as db:
        papers_before = db.execute("SELECT count(*) FROM papers").fetchone()[0]
    took, rss = [], []
    for behaviour in (_trickle_body, _trickle_headers, _endless):
        server = RawServer(behaviour)
        row.tries += 1
        env = {
            "PAPERFEED_HF_API_URL": server.url,
            "PAPERFEED_FETCH_TIMEOUT": "3",
            "PAPERFEED_FETCH_RETRIES": "1",
            "PAPERFEED_FETCH_BACKOFF": "0.01",
        }
        command = ["/usr/bin/time", "-f", "maxrss_kb=%M", PAPERFEED, "--data-dir", str(data)]
        command += ["fetch", "hf-daily", "--date", "2026-11-30"]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=120, env={**ENV, **TFIDF, **env}
            )
        except subprocess.TimeoutExpired:
            row.crashed += 1
            row.notes.append(f"{behaviour.__name__}: still running after 120 s")
            continue
        finally:
            server.close()
        took.append(time.monotonic() - started)
        lines = done.stderr.strip().splitlines()
        rss.append(int(lines.pop().split("=")[1]) / 1024)
        if done.returncode != 1 or "Traceback" in done.stderr:
            row.crashed += 1
            row.notes.append(f"{behaviour.__name__}: exit {done.returncode}: {done.stderr[-200:]}")
        else:
            row.notes.append(lines[0].split(": ", 1)[-1].split(" (gave up")[0][:90])
    with store.connect(data / "paperfeed.db") as db:
        if db.execute("SELECT count(*) FROM papers").fetchone()[0] != papers_before:
            row.half_written += 1
    row.notes.insert(0, f"exit 1 after {max(took):.1f} s at most, peak RSS {max(rss):.0f} MB")
    return row


def signups_with_hung_smtp(root: Path, signups: int) -> Row:
    row = Row(
        f"{signups} sign-ups + {signups // 2} resets (new and existing addresses, 2 at a time)"
        " with SMTP answering, then hung by SIGSTOP (gunicorn)"
    )
    data = corpus(root / "signup" / "data")
    sink = Sink(root / "signup")
    smtp = {"PAPERFEED_SMTP_URL": sink.url(timeout=5)}
    web = Gunicorn(data, smtp)
    statuses: collections.Counter = collections.Counter()
    took: dict[str, list[float]] = collections.defaultdict(list)
    lock = threading.Lock()

    def visitor(phase: str, i: int) -> None:
        browser = Browser(web.port)
        browser.request("GET", "/signup")
        existing = i % 2 == 1
        address = f"p{i % 8:02}@example.org" if existing else f"{phase}{i:02}@example.org"
        steps = [("sign-up", "/signup", {"email": address, "password": "bench password"})]
        if i % 2 == 0 or i % 4 == 1:
            steps.append(("reset", "/reset", {"email": address}))
        for kind, path, form in steps:
            started = time.monotonic()
            try:
                status, _ = browser.request("POST", path, {**form, "csrf_token": browser.token})
            except OSError:
                status = 0
            with lock:
                statuses[status] += 1
                took[f"{kind} ({phase})"].append(time.monotonic() - started)

    def phase(name: str) -> None:
        pending = list(range(signups // 2))

        def worker() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    i = pending.pop()
                visitor(name, i)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

    try:
        phase("answering")
        sink.process.send_signal(signal.SIGSTOP)
        phase("hung")
    finally:
        web.stop()
    row.tries = sum(statuses.values())
    count_5xx(row, statuses)
    medians = ", ".join(
        f"{k} {sorted(v)[len(v) // 2] * 1000:.0f} ms" for k, v in sorted(took.items())
    )
    slowest = max(t for v in took.values() for t in v)
    row.notes.insert(0, f"median answers: {medians}; slowest {slowest:.2f} s (SMTP timeout 5 s)")
    # The scheduler's sender: first against the hung server, then after it resumes.
    from recommender import accounts

    os.environ.update(smtp)
    try:
        settings = load_settings(data)
        with store.connect(data / "paperfeed.db") as db:
            accounts.deliver_account_mails(db, settings, ENV["PAPERFEED_SECRET_KEY"])
            sink.process.send_signal(signal.SIGCONT)
            later = time.time()
            for _ in range(6):
                later += 7200
                accounts.deliver_account_mails(db, settings, ENV["PAPERFEED_SECRET_KEY"], now=later)
            queued = collections.Counter(m["address"] for m in store.account_mails(db))
            states = collections.Counter(m["status"] for m in store.account_mails(db))
    finally:
        os.environ.pop("PAPERFEED_SMTP_URL", None)
        sink.stop()
    accepted = sink.accepted()
    row.lost = sum(max(0, n - accepted.get(a, 0)) for a, n in queued.items())
    row.duplicated = sum(max(0, accepted.get(a, 0) - n) for a, n in queued.items())
    row.notes.append(f"{sum(queued.values())} mails queued, then {dict(states)}")
    return row


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def rate_many(web: Gunicorn, browsers: list[Browser], papers: list[int], rng: random.Random):
    """Each browser rates papers at once; ``(statuses, {(index, paper): value answered 200})``."""
    statuses: collections.Counter = collections.Counter()
    saved: dict[tuple[int, int], int] = {}
    lock = threading.Lock()

    def person(index: int, browser: Browser, chosen: list[int]) -> None:
        for paper in chosen:
            value = random.Random(paper * 31 + index).choice(["like", "dislike"])
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
                    saved[(index, paper)] = 1 if value == "like" else -1

    threads = [
        threading.Thread(target=person, args=(i, b, rng.sample(papers, 5)))
        for i, b in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses, saved


def stored_ratings(data: Path) -> dict[tuple[int, int], int]:
    """The ratings stored, keyed ``(index, paper)`` where person ``pNN`` has index NN."""
    with store.connect(data / "paperfeed.db") as db:
        rows = db.execute(
            "SELECT u.email, r.paper_id, r.value FROM ratings r JOIN users u ON u.id = r.user_id"
        ).fetchall()
    return {(int(email[1:3]), paper): value for email, paper, value in rows}


def locked_database(root: Path, rounds: int, rng: random.Random) -> Row:
    row = Row("ratings + feed reads while another process holds BEGIN EXCLUSIVE 6 s")
    data = corpus(root / "locked" / "data")
    with store.connect(data / "paperfeed.db") as db:
        papers = [r[0] for r in db.execute("SELECT id FROM papers").fetchall()]
    web = Gunicorn(data, {"PAPERFEED_DB_BUSY_TIMEOUT": "2"})
    statuses: collections.Counter = collections.Counter()
    saved: dict = {}
    try:
        browsers = [web.browser(f"p{i:02}@example.org") for i in range(8)]
        for _ in range(rounds):
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLDER, str(data / "paperfeed.db"), "6"],
                stdout=subprocess.PIPE,
                text=True,
            )
            holder.stdout.readline()
            answers, ok = rate_many(web, browsers, papers, rng)
            statuses.update(answers)
            saved.update(ok)
            for browser in browsers[:4]:
                statuses[browser.request("GET", "/feed.json")[0]] += 1
            holder.wait(timeout=30)
        answers, ok = rate_many(web, browsers, papers, rng)  # and once the lock is gone
        statuses.update(answers)
        saved.update(ok)
    finally:
        web.stop()
    row.tries = sum(statuses.values())
    stored = stored_ratings(data)
    row.lost = sum(1 for key, value in saved.items() if stored.get(key) != value)
    count_5xx(row, statuses)
    return row


def full_disk(root: Path) -> Row:
    row = Row("full disk (a 32 MB tmpfs): pages, ratings, refit, then space freed")
    disk = root / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        row.notes.append(f"skipped: cannot mount a tmpfs here ({mounted.stderr.strip()[:80]})")
        return row
    try:
        data = corpus(disk / "data")
        with store.connect(data / "paperfeed.db") as db:
            papers = [r[0] for r in db.execute("SELECT id FROM papers").fetchall()]
        web = Gunicorn(data, {"PAPERFEED_MIN_FREE_MB": "1"})
        statuses: collections.Counter = collections.Counter()
        try:
            browsers = [web.browser(f"p{i:02}@example.org") for i in range(4)]
            filler = disk / "filler"
            with open(filler, "wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                except OSError:
                    pass
            for browser in browsers:
                for path in ("/", "/feed.json"):
                    statuses[browser.request("GET", path)[0]] += 1
            answers, saved = rate_many(web, browsers, papers, random.Random(1))
            statuses.update(answers)
            health = json.loads(browsers[0].request("GET", "/healthz")[1])
            refit = paperfeed(data, "refit", env=TFIDF)
            lines = refit.stderr.strip().splitlines()
            clear = lines and lines[-1].startswith("Error: the disk is full")
            if refit.returncode != 1 or "Traceback" in refit.stderr or not clear:
                row.crashed += 1
                row.notes.append(f"refit exit {refit.returncode}: {refit.stderr[-300:]!r}")
            row.notes.append(
                f"/healthz {health['status']}; refit: {lines[-1][:90] if lines else ''}"
            )
            if [p for p in (data / "models" / "bundles").iterdir() if p.name.startswith(".")]:
                row.half_written += 1
            filler.unlink()
            answers, ok = rate_many(web, browsers, papers, random.Random(2))
            statuses.update(answers)
            saved.update(ok)
        finally:
            web.stop()
        row.tries = sum(statuses.values()) + 1
        stored = stored_ratings(data)
        row.lost = sum(1 for key, value in saved.items() if stored.get(key) != value)
        count_5xx(row, statuses)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    return row


def inbox_links(root: Path) -> Row:
    row = Row("inbox symlinks: a dump link to a file outside, a planted failed/*.error.txt link")
    data = corpus(root / "links" / "data")
    settings = load_settings(data)
    inbox = settings.inbox_dir
    (inbox / "failed").mkdir(parents=True, exist_ok=True)
    outside = root / "links" / "outside.txt"
    shutil.copy(DUMPS[1], outside)
    victim = root / "links" / "victim.txt"
    victim.write_text("precious\n")
    (inbox / "link.txt").symlink_to(outside)
    (inbox / "bad.txt").write_text("this is not a dump\n")
    os.utime(inbox / "bad.txt", (time.time() - 60, time.time() - 60))
    (inbox / "failed" / "bad.txt.error.txt").symlink_to(victim)
    with store.connect(data / "paperfeed.db") as db:
        before = db.execute("SELECT count(*) FROM dumps").fetchone()[0]
    done = paperfeed(data, "inbox", env=TFIDF)
    row.tries = 2
    with store.connect(data / "paperfeed.db") as db:
        after = db.execute("SELECT count(*) FROM dumps").fetchone()[0]
    followed = int(after != before) + int(victim.read_text() != "precious\n")
    row.half_written = followed
    if "Traceback" in done.stderr:
        row.crashed += 1
    row.notes.append(f"{followed} links followed; paperfeed inbox exit {done.returncode}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=10)
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
        "bundle": lambda: damaged_bundle(root, 3),
        "sources": lambda: source_faults(root),
        "signup-smtp-hung": lambda: signups_with_hung_smtp(root, 24),
        "locked-db": lambda: locked_database(root, 2, rng),
        "disk-full": lambda: full_disk(root),
        "inbox-links": lambda: inbox_links(root),
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
    print(
        "| scenario | tries | lost | duplicated | half-written | crashed | 5xx | seconds | notes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        notes = "; ".join(dict.fromkeys(r.notes))[:300]
        print(
            f"| {r.scenario} | {r.tries} | {r.lost} | {r.duplicated} | {r.half_written} "
            f"| {r.crashed} | {r.fivexx} | {r.seconds:.0f} | {notes} |"
        )
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
