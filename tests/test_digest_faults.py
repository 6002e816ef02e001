"""Digests against mail servers that die, hang or accept just before a kill (issue 11,
items 11 and 12): real ``paperfeed digest`` processes, real aiosmtpd servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.ingest import ingest_paths

from .conftest import REPO, SAMPLE_DUMPS
from .test_digest import NOW, PAPERFEED, MailServer, add_user, free_port, ledger
from .test_digest import mail_env as mail_env  # a fixture

pytestmark = pytest.mark.usefixtures("mail_env")

SINK = REPO / "bench" / "_smtp_sink.py"


def digest_cli(data_dir: Path, *args: str, smtp_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(PAPERFEED), "--data-dir", str(data_dir), "digest", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PAPERFEED_SMTP_URL": smtp_url},
    )


class KillAfterAccepting(MailServer):
    """Accepts, and SIGKILLs the client ``delay`` seconds after its first 250 reply."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.pid = delay, None

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == 1:
            asyncio.get_running_loop().call_later(self.delay, os.kill, self.pid, signal.SIGKILL)
        return reply


@pytest.mark.slow
def test_a_kill_just_after_the_servers_250_sends_nobody_a_second_digest(db, data_dir):
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"])
    add_user(db, "first@example.org", digest_size=3)
    add_user(db, "second@example.org", digest_size=100)
    settings = load_settings(data_dir)
    pipeline.refit(db, settings)  # as the scheduler does after an ingest: digests never fit
    # The second digest is slow to render (100 papers with 100 KB abstracts): the old loop
    # recorded the first as sent only after rendering the second, so a kill in between
    # left it 'sending' and the rerun sent it again.
    db.execute(
        "UPDATE papers SET abstract = abstract || ' ' || replace(hex(zeroblob(50000)), '00', 'ab ')"
    )
    db.conn.commit()
    handler = KillAfterAccepting(delay=0.025)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"smtp://127.0.0.1:{port}"
        child = digest_cli(data_dir, "--now", NOW.isoformat(), smtp_url=url)
        handler.pid = child.pid
        child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL
        states = {r["recipient"]: r["state"] for r in ledger(db)}
        assert states["first@example.org"] == "sent"  # committed within 25 ms of the 250
        rerun = digest_cli(data_dir, "--now", NOW.isoformat(), smtp_url=url)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
    finally:
        controller.stop()
    assert handler.per_recipient() == Counter({"first@example.org": 1, "second@example.org": 1})


@pytest.fixture
def sink(tmp_path):
    """The SMTP server in its own process, so that it can be stopped and killed."""
    port, log = free_port(), tmp_path / "accepted.log"
    log.touch()
    process = subprocess.Popen(
        [sys.executable, str(SINK), str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "ready"
    process.port, process.log = port, log
    yield process
    process.send_signal(signal.SIGCONT)
    process.kill()
    process.wait()


def accepted(log: Path) -> Counter:
    return Counter(line.split()[1] for line in log.read_text().splitlines())


def people(db, n: int) -> list[str]:
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"])
    addresses = [f"p{i:03}@example.org" for i in range(n)]
    for address in addresses:
        add_user(db, address, digest_size=3)
    return addresses


@pytest.mark.slow
def test_a_hung_server_stops_the_run_after_three_timeouts_and_a_rerun_sends_the_rest(
    db, data_dir, sink
):
    everyone = people(db, 12)
    sink.send_signal(signal.SIGSTOP)  # accepts TCP connections, never answers
    url = f"smtp://127.0.0.1:{sink.port}?timeout=1"
    started = time.monotonic()
    child = digest_cli(data_dir, "--now", NOW.isoformat(), smtp_url=url)
    out, err = child.communicate(timeout=120)
    took = time.monotonic() - started
    assert child.returncode == 1, out + err
    assert "stopped early (the mail server did not answer 3 times in a row)" in out
    assert "9 left pending for the next run" in out
    assert took < 10, f"{took:.1f} s: a timeout per person, not three"
    rows = ledger(db)
    assert Counter(r["state"] for r in rows) == Counter({"pending": 12})
    assert [r["attempts"] for r in rows] == [1, 1, 1] + [0] * 9
    assert "no answer from 127.0.0.1" in rows[0]["last_error"]

    sink.send_signal(signal.SIGCONT)
    later = (NOW.replace(minute=NOW.minute + 10)).isoformat()
    rerun = digest_cli(data_dir, "--now", later, smtp_url=url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert accepted(sink.log) == Counter({address: 1 for address in everyone})


@pytest.mark.slow
def test_a_dead_server_stops_the_run_and_status_says_what_it_cuts(db, data_dir):
    people(db, 60)
    url = f"smtp://127.0.0.1:{free_port()}?timeout=1"  # nothing listens: refused
    child = digest_cli(data_dir, "--now", NOW.isoformat(), smtp_url=url)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 1
    assert "3 to retry" in out and "57 left pending" in out
    assert "error: the run stopped early" in err
    status = digest_cli(data_dir, "--status", smtp_url=url)
    out, _ = status.communicate(timeout=60)
    lines = out.splitlines()
    assert lines[0] == "60 pending"
    assert len([line for line in lines if line.startswith("pending ")]) == 50
    assert lines[-1].startswith("... 10 more: listed 50 of 60 failed, pending and sending rows")
    everything = digest_cli(data_dir, "--status", "--limit", "0", smtp_url=url)
    out, _ = everything.communicate(timeout=60)
    assert len([line for line in out.splitlines() if line.startswith("pending ")]) == 60
    assert "more:" not in out
    with store.connect(data_dir / "paperfeed.db") as check:
        assert check.execute("SELECT count(*) FROM digests WHERE attempts = 0").fetchone() == (57,)
