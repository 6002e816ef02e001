"""Account mails go through a durable queue (issue 20, item 3): a request only inserts a
row, the scheduler sends it. Real SMTP servers: one stopped with SIGSTOP (accepts the TCP
connection, never answers), one that refuses with 550; and real ``paperfeed run`` /
``paperfeed scheduler`` processes delivering a sign-up's link."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from recommender import accounts, store
from recommender.config import load_settings

from .._web import PASSWORD, deliver_mails, link_in, log_in, mails, post, sign_up
from ..conftest import REPO
from ..test_digest import MailServer, free_port

SINK = REPO / "bench" / "_smtp_sink.py"
PAPERFEED = Path(sys.executable).with_name("paperfeed")
SECRET = "test-secret"  # the app fixture's


@pytest.fixture
def hung_server(tmp_path, monkeypatch):
    """A real SMTP server process, stopped: connections are accepted and never answered."""
    port, log = free_port(), tmp_path / "accepted.log"
    log.touch()
    process = subprocess.Popen(
        [sys.executable, str(SINK), str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGSTOP)
    process.log = log
    monkeypatch.setenv("PAPERFEED_SMTP_URL", f"smtp://127.0.0.1:{port}?timeout=3")
    yield process
    process.send_signal(signal.SIGCONT)
    process.kill()
    process.wait()


def queue(data_dir: Path) -> list[dict]:
    with store.connect(data_dir / "paperfeed.db") as db:
        return store.account_mails(db)


def test_sign_up_and_reset_answer_at_once_while_the_mail_server_hangs(
    app, client, data_dir, hung_server
):
    sign_up(app.test_client(), "old@example.org", confirm=False)
    answers = {}
    for label, path, form in [
        ("sign-up", "/signup", {"email": "ada@example.org", "password": PASSWORD}),
        ("sign-up, existing", "/signup", {"email": "old@example.org", "password": PASSWORD}),
        ("reset", "/reset", {"email": "old@example.org"}),
        ("reset, unknown", "/reset", {"email": "nobody@example.org"}),
    ]:
        started = time.monotonic()
        response = post(app.test_client(), path, form)
        answers[label] = (response.status_code, time.monotonic() - started)
    # Each answered without waiting for the server (its timeout is 3 s; before, each took it).
    assert {k: s for k, (s, _) in answers.items()} == {
        "sign-up": 302,
        "sign-up, existing": 302,
        "reset": 200,
        "reset, unknown": 200,
    }
    assert max(t for _, t in answers.values()) < 2.5, answers
    assert [(m["kind"], m["address"], m["status"]) for m in queue(data_dir)] == [
        ("confirm", "old@example.org", "queued"),
        ("confirm", "ada@example.org", "queued"),
        ("confirm", "old@example.org", "queued"),  # never confirmed: a new link
        ("reset", "old@example.org", "queued"),
    ]

    # The sender meets the hung server: one timeout, then the run stops and all wait.
    settings = load_settings(data_dir)
    with store.connect(data_dir / "paperfeed.db") as db:
        run = accounts.deliver_account_mails(db, settings, SECRET)
    assert run.sent == [] and len(run.retrying) == 4
    rows = queue(data_dir)
    assert [r["tries"] for r in rows] == [1, 0, 0, 0]
    assert "no answer from 127.0.0.1" in rows[0]["last_error"]
    assert {r["status"] for r in rows} == {"queued"}

    # The server comes back: each mail is sent once, and never again.
    hung_server.send_signal(signal.SIGCONT)
    later = time.time() + 3600
    with store.connect(data_dir / "paperfeed.db") as db:
        assert len(accounts.deliver_account_mails(db, settings, SECRET, now=later).sent) == 4
        assert accounts.deliver_account_mails(db, settings, SECRET, now=later + 7200).sent == []
    accepted = Counter(line.split()[1] for line in hung_server.log.read_text().splitlines())
    assert accepted == Counter({"old@example.org": 3, "ada@example.org": 1})
    assert {r["status"] for r in queue(data_dir)} == {"sent"}


@pytest.fixture
def refusing_server(monkeypatch):
    handler = MailServer()
    handler.refuse = {"ada@example.org"}
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("PAPERFEED_SMTP_URL", f"smtp://127.0.0.1:{controller.port}?timeout=5")
    yield handler
    controller.stop()


def test_a_refused_mail_is_shown_in_settings_and_sent_when_the_server_changes(
    app, client, data_dir, refusing_server, monkeypatch
):
    sign_up(client, "ada@example.org", confirm=False)
    deliver_mails(app)
    [row] = queue(data_dir)
    assert row["status"] == "failed" and "550" in row["last_error"]
    deliver_mails(app)  # the same server: not tried again
    assert queue(data_dir)[0]["tries"] == 1 and refusing_server.received == []

    assert log_in(client, "ada@example.org").status_code == 302
    page = client.get("/settings").get_data(as_text=True)
    assert "We could not deliver mail to ada@example.org:" in page and "550" in page
    problem = client.get("/settings.json").get_json()["mail_problem"]
    assert problem["address"] == "ada@example.org" and problem["status"] == "failed"
    assert "b'" not in problem["error"]  # the server's words, not Python's bytes repr

    good = MailServer()
    controller = Controller(good, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setenv("PAPERFEED_SMTP_URL", f"smtp://127.0.0.1:{controller.port}")
        deliver_mails(app)
    finally:
        controller.stop()
    assert good.per_recipient() == Counter({"ada@example.org": 1})
    assert queue(data_dir)[0]["status"] == "sent"
    assert "could not deliver" not in client.get("/settings").get_data(as_text=True)
    assert client.get("/settings.json").get_json()["mail_problem"] is None


def browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def sign_up_over_http(port: int, address: str) -> None:
    opener = browser()
    form = opener.open(f"http://127.0.0.1:{port}/signup", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"csrf_token": token, "email": address, "password": PASSWORD}
    ).encode()
    with opener.open(f"http://127.0.0.1:{port}/signup", body, timeout=10) as response:
        assert response.status == 200 and "Check your inbox" in response.read().decode()


def wait_for_mail(data_dir: Path, address: str, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in mails(data_dir) if m["To"] == address]
        if found:
            return found
        time.sleep(0.2)
    return []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["paperfeed run", "Procfile scheduler"])
def test_a_real_scheduler_process_delivers_the_sign_up_link(data_dir, how):
    """``make run`` (web and scheduler from one command) and the Procfile's separate
    ``scheduler:`` process both send what the web queued."""
    env = {**os.environ, "PAPERFEED_SECRET_KEY": "x" * 40}
    env.pop("PAPERFEED_SMTP_URL", None)
    port = free_port()
    processes = [
        subprocess.Popen(
            [str(PAPERFEED), "--data-dir", str(data_dir), "run", "--port", str(port)]
            if how == "paperfeed run"
            else [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "web:create_app()",
                "run",
                "--port",
                str(port),
            ],
            env={**env, "PAPERFEED_DATA_DIR": str(data_dir)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    if how != "paperfeed run":
        processes.append(
            subprocess.Popen(
                [str(PAPERFEED), "--data-dir", str(data_dir), "scheduler"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                browser().open(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the web app never answered"
                time.sleep(0.2)
        sign_up_over_http(port, "ada@example.org")
        [message] = wait_for_mail(data_dir, "ada@example.org")
        assert "/confirm/" in link_in(message, "confirm")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def test_an_address_with_a_non_ascii_local_part_is_refused_at_sign_up(client, db):
    """Mail to ``Zoë@…`` needs SMTPUTF8 all the way: refused with a reason, not accepted and
    never delivered; a domain in another script has an ASCII form and is fine."""
    refused = post(client, "/signup", {"email": "Zoë@lab.example", "password": PASSWORD})
    assert refused.status_code == 400
    assert "non-ASCII letters before the @" in refused.get_data(as_text=True)
    assert store.list_users(db) == []
    accepted = post(client, "/signup", {"email": "jorg@müller.example", "password": PASSWORD})
    assert accepted.status_code == 302
    assert [u["email"] for u in store.list_users(db)] == ["jorg@müller.example"]
    deliver_mails(client.application)
    [sent] = mails(Path(client.application.config["DATA_DIR"]))
    assert sent["To"] == "jorg@xn--mller-kva.example"


def test_a_mail_that_cannot_be_written_fails_alone_and_the_others_are_sent(app, db, data_dir):
    """An account stored with such an address before sign-up refused them: its mail fails
    (shown in settings) and the mail queued after it is still sent, in the same run."""
    db["users"].insert({"email": "zoë@lab.example", "created_at": "2026-12-01T00:00:00"})
    zoe = store.get_user_by_email(db, "zoë@lab.example")
    accounts.queue_account_email(db, zoe, "confirm")
    sign_up(app.test_client(), "ada@example.org", confirm=False)
    run = accounts.deliver_account_mails(db, load_settings(data_dir), SECRET)
    assert len(run.failed) == 1 and len(run.sent) == 1 and not run.retrying
    [sent] = mails(data_dir)
    assert sent["To"] == "ada@example.org"
    states = {m["address"]: m for m in queue(data_dir)}
    assert states["zoë@lab.example"]["status"] == "failed"
    assert "cannot be mailed" in states["zoë@lab.example"]["last_error"]
