"""A locked database (issue 20, item 4): another process holds ``BEGIN EXCLUSIVE``. A
rating waits (retrying) within the request; if the lock outlasts the busy timeout, the
answer is a clear 503 with Retry-After, never a 500 and never "saved"; reading goes on;
CLI commands say so in one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender import store

from .._web import PASSWORD, csrf_token, log_in, rate_by_fetch

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


class Lock:
    """A real second process holding the database with BEGIN EXCLUSIVE for ``seconds``."""

    def __init__(self, path: Path, seconds: float):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.process.wait(timeout=30)

    def kill(self) -> None:
        """End the holder now (its transaction rolls back, the lock goes)."""
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture(autouse=True)
def busy_timeout(request, monkeypatch):
    """Settings are read once, when the app starts: the wait (0.5 s unless a test says)
    is set before it does."""
    monkeypatch.setenv("PAPERFEED_DB_BUSY_TIMEOUT", getattr(request, "param", "0.5"))


def user_id(data_dir: Path, address: str) -> int:
    with store.connect(data_dir / "paperfeed.db") as db:
        return store.get_user_by_email(db, address)["id"]


def a_paper(data_dir: Path) -> int:
    with store.connect(data_dir / "paperfeed.db") as db:
        return db.execute("SELECT min(id) FROM papers").fetchone()[0]


def ratings(data_dir: Path, uid: int) -> list:
    with store.connect(data_dir / "paperfeed.db") as db:
        return db.execute("SELECT paper_id, value FROM ratings WHERE user_id = ?", [uid]).fetchall()


def test_a_rating_during_a_long_lock_is_a_503_with_retry_after_and_not_saved(ada, data_dir):
    paper, uid = a_paper(data_dir), user_id(data_dir, "ada@example.org")
    token = csrf_token(ada)
    lock = Lock(data_dir / "paperfeed.db", 2)
    started = time.monotonic()
    response = ada.post(
        f"/papers/{paper}/rate",
        data={"value": "like"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {
        "error": "The database is busy (locked by another process), so nothing was saved. "
        "Try again in a few seconds.",
        "status": 503,
    }
    assert waited >= 0.5  # it waited its busy timeout, retrying, before giving up
    form = ada.post(f"/papers/{paper}/rate", data={"value": "like", "csrf_token": token})
    assert form.status_code == 503 and "nothing was saved" in form.get_data(as_text=True)
    lock.release()
    assert ratings(data_dir, uid) == []
    assert "Liked" not in ada.get("/").get_data(as_text=True)  # no "saved" flash either
    assert rate_by_fetch(ada, paper, "like").status_code == 200
    assert ratings(data_dir, uid) == [(paper, 1)]


@pytest.mark.parametrize("busy_timeout", ["5"], indirect=True)
def test_a_rating_during_a_short_lock_waits_and_is_saved(ada, data_dir):
    paper, uid = a_paper(data_dir), user_id(data_dir, "ada@example.org")
    token = csrf_token(ada)
    lock = Lock(data_dir / "paperfeed.db", 1)
    response = ada.post(
        f"/papers/{paper}/rate",
        data={"value": "dislike"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    lock.release()
    assert response.status_code == 200
    assert ratings(data_dir, uid) == [(paper, -1)]


def test_logging_in_during_a_long_lock_is_a_503_not_a_500(client, ada, data_dir):
    ada.post("/logout", data={"csrf_token": csrf_token(ada)})
    lock = Lock(data_dir / "paperfeed.db", 2)
    response = log_in(client, "ada@example.org", PASSWORD + "wrong")
    lock.release()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_the_feed_is_read_during_a_lock_and_its_impressions_skipped(ada, data_dir):
    uid = user_id(data_dir, "ada@example.org")
    lock = Lock(data_dir / "paperfeed.db", 2)
    page = ada.get("/feed.json")
    html = ada.get("/")
    lock.release()
    assert page.status_code == 200 and page.get_json()["papers"]
    assert html.status_code == 200
    with store.connect(data_dir / "paperfeed.db") as db:
        assert (
            db.execute("SELECT count(*) FROM impressions WHERE user_id = ?", [uid]).fetchone()[0]
            == 0
        )


@pytest.mark.parametrize(
    "command", [["ingest", "SAMPLE"], ["user", "add", "bob@example.org", "--password-stdin"]]
)
def test_cli_commands_during_a_lock_print_one_line_and_exit_1(data_dir, command):
    from ..conftest import SAMPLE_DUMPS

    args = [
        str(SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt") if a == "SAMPLE" else a
        for a in command
    ]
    # Held longer than SQLite's default 5 s wait, so the command cannot just outwait it.
    lock = Lock(data_dir / "paperfeed.db", 30)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("paperfeed")), "--data-dir", str(data_dir), *args],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PAPERFEED_DB_BUSY_TIMEOUT": "0.5"},
        timeout=60,
    )
    lock.kill()
    assert result.returncode == 1
    assert result.stderr == (
        "Error: the database is busy (locked by another process); try again\n"
    ), result.stderr
