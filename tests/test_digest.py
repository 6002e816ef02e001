"""The email digest end to end: a real SMTP server (aiosmtpd) receives it, the web app
answers its links, and failures and crashes never send anyone two digests or none."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from recommender import digest, pipeline, store
from recommender.config import load_settings
from recommender.ingest import ingest_paths
from recommender.mail import eml_path

from .conftest import SAMPLE_DUMPS, snapshot

PAPERFEED = Path(sys.executable).with_name("paperfeed")
BASE_URL = "http://paperfeed.test"
SECRET = "test-secret"  # the app fixture's SECRET_KEY: the web app must accept our links
MAIL_FROM = "Paper Feed <digest@paperfeed.test>"
# Monday 10 March 2025, 07:05 in Berlin (CET, UTC+1).
MONDAY_0705_BERLIN = datetime(2025, 3, 10, 6, 5, tzinfo=UTC)


# -- a real SMTP server -------------------------------------------------------------------------


class MailServer:
    """aiosmtpd handler that keeps what it accepts, and fails on demand.

    ``fail_after``: after that many accepted messages, answer 451 to each DATA.
    ``hold_after``: after that many, keep the next DATA waiting until ``release``
    is set, then answer 451 (the message was never committed).
    ``refuse``: addresses refused at RCPT with 550.
    """

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.fail_after: int | None = None
        self.hold_after: int | None = None
        self.refuse: set[str] = set()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hold_after is not None and len(self.received) >= self.hold_after:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
            return "451 4.3.0 shutting down, message not accepted"
        if self.fail_after is not None and len(self.received) >= self.fail_after:
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def per_recipient(self) -> Counter:
        return Counter(rcpt for rcpts, _ in self.received for rcpt in rcpts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mail_env(monkeypatch):
    """Environment every digest test shares: key, base URL, From; file backend by default."""
    monkeypatch.setenv("PAPERFEED_SECRET_KEY", SECRET)
    monkeypatch.setenv("PAPERFEED_BASE_URL", BASE_URL)
    monkeypatch.setenv("PAPERFEED_MAIL_FROM", MAIL_FROM)
    monkeypatch.delenv("PAPERFEED_SMTP_URL", raising=False)
    monkeypatch.delenv("PAPERFEED_UNSUBSCRIBE_MAILTO", raising=False)


@pytest.fixture
def smtp(mail_env, monkeypatch):
    handler = MailServer()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("PAPERFEED_SMTP_URL", f"smtp://127.0.0.1:{port}")
    yield handler
    handler.release.set()
    controller.stop()


# -- a database with papers and people ----------------------------------------------------------


@pytest.fixture
def settings(data_dir, mail_env, request):
    """The settings, read once from the environment: after the SMTP server's address
    when the test asks for one."""
    if "smtp" in request.fixturenames:
        request.getfixturevalue("smtp")
    return load_settings(data_dir)


@pytest.fixture
def papers(db):
    """The first sample dump (225 papers)."""
    ingest_paths(db, [SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"])
    return db


def add_user(db, email_address: str, **fields) -> int:
    """A confirmed person who wants digests; ``fields`` override the users columns."""
    row = {
        "email": email_address,
        "created_at": "2025-01-01T00:00:00+00:00",
        "email_confirmed_at": "2025-01-01T00:00:00+00:00",
        "timezone": "Europe/Berlin",
        "digest_hour": 7,
        "keywords": "language models",
        **fields,
    }
    return db["users"].insert(row).last_pk


def ledger(db) -> list[dict]:
    return list(db.query("SELECT * FROM digests ORDER BY id"))


def links_in(text: str) -> list[str]:
    """The digest's links to paperfeed actions (rate, unsubscribe): not the paper pages
    that titles of papers without an abstract page open."""
    found = re.findall(re.escape(BASE_URL) + r"/[^\s\"<>]+", text)
    return [url for url in found if "/papers/" not in url]


def parts(message) -> tuple[str, str]:
    """Both bodies, read back from the wire format (as a mail client would)."""
    message = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def csrf_from(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


# -- the message --------------------------------------------------------------------------------


def test_a_digest_arrives_with_its_headers_and_both_parts(papers, settings, smtp):
    db = papers
    uid = add_user(db, "ada@example.org")
    run = digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    assert (run.due, run.sent, run.failed) == (1, 1, 0)
    [(rcpts, message)] = smtp.received
    assert rcpts == ["ada@example.org"]
    [row] = ledger(db)
    assert (row["user_id"], row["period"], row["state"], row["attempts"]) == (
        uid,
        "2025-03-10",
        "sent",
        1,
    )
    assert message["Message-ID"] == row["message_id"]
    assert message["Subject"] == "paperfeed digest for Mon 10 Mar 2025: 10 new papers"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "ada@example.org"
    assert message["Date"].datetime == MONDAY_0705_BERLIN
    [unsubscribe] = re.fullmatch(r"<([^>]+)>", message["List-Unsubscribe"]).groups()
    assert unsubscribe.startswith(BASE_URL + "/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"

    text, html = parts(message)
    items = db.execute(
        "SELECT p.title FROM digest_items i JOIN papers p ON p.id = i.paper_id "
        "WHERE i.digest_id = ? ORDER BY position",
        [row["id"]],
    ).fetchall()
    assert len(items) == 10
    for (title,) in items:
        assert " ".join(title.split()) in text
    assert text.count("Like:") == text.count("Dislike:") == 10
    assert html.count("/r/") == 20 and "Unsubscribe" in html and unsubscribe in html
    assert unsubscribe in text
    # The buttons need no emoji font (mail clients without one drew boxes): every
    # character, entities decoded, is in WGL4, the set every desktop font covers.
    shown = unescape(html)
    assert "▲ Like" in shown and "▼ Dislike" in shown
    assert not re.search("[\u2600-\u27bf\U0001f000-\U0001ffff\ufe0f]", shown)
    # Everything in it was shown on the person's local day, through the digest channel.
    shown = db.execute("SELECT channel, shown_on, count(*) FROM impressions").fetchall()
    assert shown == [("digest", "2025-03-10", 10)]


#: A ledger row as render_digest reads it (no database needed).
LEDGER_ROW = {
    "user_id": 1,
    "recipient": "ada@example.org",
    "period": "2025-03-10",
    "subject": None,
    "message_id": "<x@paperfeed.test>",
    "created_at": "2025-03-10T06:05:00+00:00",
}


def test_html_part_escapes_what_comes_from_the_dump(settings):
    row = dict(LEDGER_ROW)
    paper = {
        "paper_id": 7,
        "title": "<script>alert(1)</script> & friends",
        "abstract": "x < y " * 100,
        "url": "javascript:alert(1)",
        "score": 1.0,
        "reason": "because <b>",
    }
    text, html = parts(digest.render_digest(settings, row, [paper], secret=SECRET))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    assert "javascript:" not in html and "javascript:" not in text
    assert "because &lt;b&gt;" in html
    assert "<script>alert(1)</script> & friends" in text  # plain text is not HTML-escaped
    assert len(max(text.splitlines(), key=len)) < 200 and "…" in text


def test_headers_encode_a_non_ascii_sender_and_refuse_injected_lines(settings):
    settings = replace(settings, mail_from="Revue Übersicht <digest@paperfeed.test>")
    row = dict(LEDGER_ROW)
    raw = digest.render_digest(settings, row, [], secret=SECRET).as_bytes()
    assert raw.isascii()  # 7-bit clean: any server takes it
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["From"].addresses[0].display_name == "Revue Übersicht"
    assert message["From"].addresses[0].addr_spec == "digest@paperfeed.test"
    with pytest.raises(ValueError, match="not an email address"):
        digest.render_digest(
            settings,
            {**row, "recipient": "ada@example.org\r\nBcc: eve@example.org"},
            [],
            secret=SECRET,
        )


def test_nothing_above_the_bar_sends_nothing_and_says_so(papers, settings, smtp, caplog):
    db = papers
    add_user(db, "picky@example.org", min_score=1e9)
    with caplog.at_level(logging.INFO, logger="recommender.digest"):
        run = digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    assert (run.claimed, run.empty, run.sent) == (1, 1, 0)
    assert smtp.received == []
    assert [(r["state"], r["papers"]) for r in ledger(db)] == [("empty", 0)]
    assert "nothing above the bar for user 1 (picky@example.org) on 2025-03-10" in caplog.text
    # The period is settled: later runs that morning neither send nor rank again.
    again = digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN + timedelta(hours=1))
    assert (again.due, again.sent) == (0, 0) and len(ledger(db)) == 1


def test_an_empty_period_records_why_and_settings_shows_it(papers, settings, smtp):
    db = papers
    uid = add_user(db, "picky@example.org", min_score=1e9)
    digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    row = store.last_digest(db, uid)
    outcome = json.loads(row["outcome"])
    assert outcome["kind"] == "below_bar" and outcome["arrived"] > 0
    words = digest.outcome_words(row, "Europe/Berlin")
    assert words.startswith(
        f"No digest on 2025-03-10: nothing new above your bar: {outcome['arrived']} papers arrived"
    )


def test_a_failed_source_and_no_papers_is_the_recorded_reason(db, settings, smtp):
    uid = add_user(db, "ada@example.org")
    day = MONDAY_0705_BERLIN.astimezone(UTC).date().isoformat()
    store.record_fetch_failed(
        db, "hf-daily", day, error="HTTP 503", next_attempt_at="2025-03-10T08:00:00+00:00"
    )
    digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    row = store.last_digest(db, uid)
    assert json.loads(row["outcome"]) == {
        "kind": "source_failed",
        "source": "hf-daily",
        "retry_at": "2025-03-10T08:00:00+00:00",
    }
    assert digest.outcome_words(row, "Europe/Berlin") == (
        "No digest on 2025-03-10: the source failed (hf-daily); retrying at 09:00."
    )
    from web import create_app

    from ._web import log_in, sign_up

    app = create_app({"DATA_DIR": str(settings.data_dir), "SECRET_KEY": "s"})
    client = app.test_client()
    sign_up(client, "bob@example.org", confirm=False)  # an unconfirmed address
    log_in(client, "bob@example.org")
    page = client.get("/settings").get_data(as_text=True)
    assert "Digests go only to a confirmed address" in page
    from web.settings import last_digest_words

    answer = last_digest_words(db, store.get_user(db, uid))  # what ada's settings page says
    assert answer == "No digest on 2025-03-10: the source failed (hf-daily); retrying at 09:00."


def test_a_later_digest_never_repeats_a_paper_or_sends_a_rated_one(papers, settings, smtp):
    db = papers
    uid = add_user(db, "ada@example.org", digest_size=5)
    digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    first = [r[0] for r in db.execute("SELECT paper_id FROM digest_items").fetchall()]
    candidates = store.digest_candidates(db, {uid: "2000-01-01"})[uid]
    rated = candidates[0]
    db.execute(
        "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at)"
        " VALUES (?, ?, 1, 'web', '2025-03-10', '2025-03-10')",
        [uid, rated],
    )
    db.conn.commit()
    digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN + timedelta(days=1))
    rows = db.execute("SELECT digest_id, paper_id FROM digest_items ORDER BY 1, 2").fetchall()
    second = [p for d, p in rows if d == 2]
    assert len(first) == len(second) == 5
    assert not set(first) & set(second) and rated not in second
    assert len(smtp.received) == 2


# -- links, end to end against the web app ------------------------------------------------------


@pytest.fixture
def delivered(papers, settings, smtp):
    """One digest to ada, as received by the SMTP server: (db, user id, message)."""
    uid = add_user(papers, "ada@example.org")
    digest.send_due_digests(papers, settings, now=MONDAY_0705_BERLIN)
    [(_, message)] = smtp.received
    return papers, uid, message


def path_of(url: str) -> str:
    return url.removeprefix(BASE_URL)


def test_rating_links_confirm_on_get_and_record_on_post(delivered, client):
    db, uid, message = delivered
    text, _ = parts(message)
    like, dislike = links_in(text)[:2]
    page = client.get(path_of(like))
    assert page.status_code == 200 and b"Like this paper?" in page.data
    assert db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0
    paper_id = db.execute("SELECT paper_id FROM digest_items WHERE position = 0").fetchone()[0]

    done = client.post(path_of(like), data={"csrf_token": csrf_from(page.data)})
    assert done.status_code == 200 and b"You liked" in done.data
    assert db.execute("SELECT user_id, paper_id, value, source FROM ratings").fetchall() == [
        (uid, paper_id, 1, "email")
    ]
    page = client.get(path_of(dislike))
    client.post(path_of(dislike), data={"csrf_token": csrf_from(page.data)})
    assert db.execute("SELECT value FROM ratings").fetchall() == [(-1,)]


def test_a_rating_post_without_the_forms_csrf_token_is_refused(delivered, client):
    db, _, message = delivered
    like = links_in(parts(message)[0])[0]
    response = client.post(path_of(like))
    assert response.status_code == 400
    assert db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_tampered_and_expired_links_get_a_clear_page(delivered, client):
    db, uid, message = delivered
    like = path_of(links_in(parts(message)[0])[0])
    _, _, token, paper, choice = like.split("/")
    assert choice == "like"
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    page = client.get(f"/r/{tampered}/{paper}/like")
    assert page.status_code == 400 and b"not valid" in page.data

    class LastMonth(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 31 * 24 * 3600  # older than the 30 days a rating link lives

    digest_id = db.execute("SELECT id FROM digests").fetchone()[0]
    expired = URLSafeTimedSerializer(SECRET, salt="paperfeed/rate", signer=LastMonth).dumps(
        [uid, digest_id]
    )
    page = client.get(f"/r/{expired}/{paper}/like")
    assert page.status_code == 410 and b"expired" in page.data
    good = client.get(like)
    response = client.post(f"/r/{expired}/{paper}/like", data={"csrf_token": csrf_from(good.data)})
    assert response.status_code == 410
    # A rating token is no unsubscribe token (a salt per purpose), and vice versa.
    assert client.get(f"/unsubscribe/{token}").status_code == 400
    # The token rates only its own digest's papers: another paper, or a digest of someone
    # else (a token signed for another person's digest id), is refused.
    outside = db.execute(
        "SELECT id FROM papers WHERE id NOT IN (SELECT paper_id FROM digest_items) LIMIT 1"
    ).fetchone()[0]
    page = client.get(f"/r/{token}/{outside}/like")
    assert page.status_code == 400 and b"does not match a paper of your digest" in page.data
    other = add_user(db, "eve@example.org")
    theirs = URLSafeTimedSerializer(SECRET, salt="paperfeed/rate").dumps([other, digest_id])
    assert client.get(f"/r/{theirs}/{paper}/like").status_code == 400
    assert client.get(f"/r/{token}/{paper}/love").status_code == 404
    assert db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_a_scanner_fetching_every_link_records_nothing(delivered, client):
    db, _, message = delivered
    text, html = parts(message)
    urls = set(links_in(text)) | set(re.findall(r'href="([^"]+)"', html))
    urls |= {re.fullmatch(r"<([^>]+)>", message["List-Unsubscribe"]).group(1)}
    ours = sorted(
        u
        for u in urls
        if u.startswith(BASE_URL + "/") and u != BASE_URL + "/" and "/papers/" not in u
    )
    assert len(ours) == 21  # 10 like, 10 dislike, 1 unsubscribe
    before = snapshot(db)
    for url in ours:
        assert client.get(path_of(url)).status_code == 200
    assert snapshot(db) == before


def test_one_click_unsubscribe_needs_no_login_and_no_csrf(delivered, client, settings, smtp):
    db, uid, message = delivered
    url = re.fullmatch(r"<([^>]+)>", message["List-Unsubscribe"]).group(1)
    # What an RFC 8058 mail client sends: a bare POST with this body, no cookies.
    response = client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"unsubscribed" in response.data
    assert db.execute("SELECT digest_enabled FROM users WHERE id = ?", [uid]).fetchone() == (0,)
    assert client.post(path_of(url)).status_code == 200  # idempotent
    tomorrow = digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN + timedelta(days=1))
    assert tomorrow.due == 0 and len(smtp.received) == 1


# -- failures -----------------------------------------------------------------------------------


NOW = MONDAY_0705_BERLIN


def test_a_451_after_three_sends_then_reruns_give_everyone_exactly_one(papers, settings, smtp):
    db = papers
    people = [f"p{i}@example.org" for i in range(8)]
    for address in people:
        add_user(db, address, digest_size=3)
    smtp.fail_after = 3
    first = digest.send_due_digests(db, settings, now=NOW)
    assert (first.sent, first.retrying, first.failed) == (3, 5, 0)
    waiting = [r for r in ledger(db) if r["state"] == "pending"]
    assert len(waiting) == 5 and all("451" in r["last_error"] for r in waiting)
    # Backoff: a run a few seconds later leaves them alone, even with the server healed.
    smtp.fail_after = None
    assert digest.send_due_digests(db, settings, now=NOW + timedelta(seconds=30)).sent == 0
    later = digest.send_due_digests(db, settings, now=NOW + timedelta(minutes=2))
    assert later.sent == 5
    assert smtp.per_recipient() == Counter({address: 1 for address in people})
    rows = ledger(db)
    assert {r["state"] for r in rows} == {"sent"}
    assert sorted(m["Message-ID"] for _, m in smtp.received) == sorted(
        r["message_id"] for r in rows
    )
    assert Counter(r["attempts"] for r in rows) == Counter({1: 3, 2: 5})


def test_transient_errors_give_up_after_max_attempts(papers, settings, smtp):
    db = papers
    add_user(db, "ada@example.org")
    smtp.fail_after = 0
    now = NOW
    for attempt in range(1, digest.MAX_ATTEMPTS + 1):
        digest.send_due_digests(db, settings, now=now)
        now += digest.backoff(attempt)
    [row] = ledger(db)
    assert (row["state"], row["attempts"]) == ("failed", digest.MAX_ATTEMPTS)
    assert row["last_error"].startswith(f"gave up after {digest.MAX_ATTEMPTS}")
    assert smtp.received == []


def test_a_permanent_refusal_is_recorded_and_shown_by_status(papers, settings, smtp, data_dir):
    db = papers
    add_user(db, "gone@example.org")
    add_user(db, "ada@example.org")
    smtp.refuse = {"gone@example.org"}
    run = digest.send_due_digests(db, settings, now=NOW)
    assert (run.sent, run.failed) == (1, 1)
    assert [(r["recipient"], r["state"], r["attempts"]) for r in ledger(db)] == [
        ("gone@example.org", "failed", 1),
        ("ada@example.org", "sent", 1),
    ]
    status = subprocess.run(
        [str(PAPERFEED), "--data-dir", str(data_dir), "digest", "--status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == "1 failed, 1 sent"
    assert re.search(r"failed\s+gone@example.org 2025-03-10 attempts=1 .*550", status.stdout)


# -- crashes ------------------------------------------------------------------------------------


def digest_process(data_dir: Path, now: datetime, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [str(PAPERFEED), "--data-dir", str(data_dir), "digest", "--now", now.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.001)


@pytest.mark.slow
def test_kill_9_mid_run_then_a_rerun_sends_everyone_exactly_one_file(papers, settings, data_dir):
    db = papers
    people = [f"p{i:03}@example.org" for i in range(80)]
    for address in people:
        add_user(db, address, digest_size=3)
    pipeline.refit(db, settings)  # the scheduler publishes; a digest run never fits
    outbox = settings.outbox_dir
    child = digest_process(data_dir, NOW)
    wait_for(lambda: outbox.exists() and len(list(outbox.glob("[!.]*.eml"))) >= 3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    states = Counter(r["state"] for r in ledger(db))
    # Three files: three rows are sent, or the last is still 'sending' (killed between the
    # file and the commit, the case recovery settles from the outbox).
    assert states["sent"] + states["sending"] >= 3, states
    assert states["sent"] < len(people), "the kill did not land mid-run"

    rerun = digest_process(data_dir, NOW)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    files = sorted(f for f in outbox.glob("*.eml") if not f.name.startswith("."))
    recipients = Counter(
        email.message_from_bytes(f.read_bytes(), policy=policy.default)["To"] for f in files
    )
    assert recipients == Counter({address: 1 for address in people})
    assert {r["state"] for r in ledger(db)} == {"sent"}


def test_recovery_trusts_the_outbox_file_for_a_row_left_sending(papers, settings):
    db = papers
    add_user(db, "written@example.org")
    add_user(db, "unwritten@example.org")
    digest.send_due_digests(db, settings, now=NOW)
    written, unwritten = ledger(db)
    kept = eml_path(settings.outbox_dir, written["message_id"])
    lost = eml_path(settings.outbox_dir, unwritten["message_id"])
    # The two places a kill can land: after the file appeared, and before.
    lost.unlink()
    db.execute("UPDATE digests SET state = 'sending', sent_at = NULL")
    db.conn.commit()
    stamp = kept.stat().st_mtime_ns
    run = digest.send_due_digests(db, settings, now=NOW + timedelta(minutes=5))
    assert (run.recovered, run.sent) == (2, 1)
    assert kept.stat().st_mtime_ns == stamp  # not written twice
    assert lost.exists()
    rows = ledger(db)
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1), ("sent", 2)]
    assert rows[1]["message_id"] == unwritten["message_id"]


@pytest.mark.slow
def test_kill_9_while_the_smtp_server_holds_a_message(papers, settings, smtp, data_dir):
    db = papers
    people = [f"p{i}@example.org" for i in range(6)]
    for address in people:
        add_user(db, address, digest_size=3)
    smtp.hold_after = 2
    child = digest_process(data_dir, NOW)
    assert smtp.holding.wait(60)
    child.send_signal(signal.SIGKILL)
    child.wait()
    smtp.release.set()  # the server never committed the third message
    states = Counter(r["state"] for r in ledger(db))
    assert states == Counter({"sent": 2, "sending": 1, "pending": 3})

    smtp.hold_after = None
    rerun = digest_process(data_dir, NOW)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "1 recovered" in out
    assert smtp.per_recipient() == Counter({address: 1 for address in people})
    rows = ledger(db)
    assert {r["state"] for r in rows} == {"sent"}
    assert [r["attempts"] for r in rows] == [1, 1, 2, 1, 1, 1]


def test_a_paper_closest_to_a_dislike_never_reaches_the_digest(papers, settings, smtp):
    db = papers
    uid = add_user(db, "ada@example.org", digest_size=50, keywords="")
    ids = [r[0] for r in db.execute("SELECT id FROM papers ORDER BY id").fetchall()]
    for pid in ids[:6]:
        pipeline.record_feedback(db, uid, pid, 1)
    for pid in ids[6:12]:
        pipeline.record_feedback(db, uid, pid, -1)
    pipeline.refit(db, settings)
    feed = (
        pipeline.FeedService(settings)
        .feed(db, pipeline.FeedQuery(uid, window="today", page_size=300))
        .items
    )
    against = {
        i.paper_id for i in feed if i.reason_kind in ("disliked", "colleagues-despite-dislike")
    }
    assert against  # the feed has such papers (after the others: a dislike is a hard negative)
    assert min(n for n, i in enumerate(feed) if i.paper_id in against) > 0
    digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    sent = {r[0] for r in db.execute("SELECT paper_id FROM digest_items").fetchall()}
    assert sent and not sent & against
