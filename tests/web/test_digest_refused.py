"""A digest the mail server refuses for good (issue 20, item 9): a real aiosmtpd server
answering 550, then a working one. The person sees why in settings (and its JSON twin);
the digest is tried again once the mail server setting changes, as account mails are."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from recommender import digest, store
from recommender.config import load_settings

from ..test_digest import NOW, MailServer, free_port
from ..test_digest import mail_env as mail_env  # a fixture

pytestmark = pytest.mark.usefixtures("mail_env")


def smtp_server(monkeypatch, *, refuse: set[str] = frozenset()) -> tuple[MailServer, Controller]:
    handler = MailServer()
    handler.refuse = set(refuse)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("PAPERFEED_SMTP_URL", f"smtp://127.0.0.1:{controller.port}?timeout=5")
    return handler, controller


def run(data_dir, now):
    with store.connect(data_dir / "paperfeed.db") as db:
        return digest.send_due_digests(db, load_settings(data_dir), now=now)


def digests(data_dir) -> list[dict]:
    with store.connect(data_dir / "paperfeed.db") as db:
        return store.digests_in_state(db, "failed") + store.digests_in_state(db, "sent")


def test_a_refused_digest_is_shown_in_settings_and_sent_when_the_server_changes(
    ada, data_dir, monkeypatch
):
    with store.connect(data_dir / "paperfeed.db") as db:
        db.execute(
            "UPDATE users SET digest_enabled = 1, timezone = 'Europe/Berlin', digest_hour = 7,"
            " digest_cadence = 'daily', min_score = NULL WHERE email = 'ada@example.org'"
        )
        db.conn.commit()
    refusing, controller = smtp_server(monkeypatch, refuse={"ada@example.org"})
    try:
        first = run(data_dir, NOW)
        again = run(data_dir, NOW + timedelta(hours=2))  # the same server: not tried again
    finally:
        controller.stop()
    assert (first.sent, first.failed) == (0, 1)
    assert (again.sent, again.failed, again.retrying) == (0, 0, 0)
    [row] = digests(data_dir)
    assert row["state"] == "failed" and "550" in row["last_error"] and row["attempts"] == 1
    assert refusing.received == []

    said = (
        f"Your digest of {row['period']} could not be sent: recipient refused:"
        " ada@example.org: 550 5.1.1 no such mailbox."
        " We will try it again when the mail server setting changes."
    )
    assert said in ada.get("/settings").get_data(as_text=True)
    shown = ada.get("/settings.json").get_json()
    assert shown["last_digest"] == said
    problem = shown["digest_problem"]
    assert problem["address"] == "ada@example.org" and problem["status"] == "failed"
    assert problem["period"] == row["period"] and "550" in problem["error"]

    # A later period with nothing new does not hide it.
    with store.connect(data_dir / "paperfeed.db") as db:
        db.execute(
            "INSERT INTO digests (user_id, period, cadence, state, recipient, due_at,"
            " created_at, next_attempt_at, updated_at, outcome)"
            " SELECT user_id, '2025-03-11', cadence, 'empty', recipient, due_at, created_at,"
            ' next_attempt_at, updated_at, \'{"kind": "nothing_new"}\' FROM digests'
        )
        db.conn.commit()
    words = ada.get("/settings.json").get_json()["last_digest"]
    assert words.startswith("No digest on 2025-03-11: no new papers arrived")
    assert f"Your digest of {row['period']} could not be delivered to ada@example.org:" in words
    assert words.endswith("We will try it again when the mail server setting changes.")

    good, controller = smtp_server(monkeypatch)
    try:
        later = run(data_dir, NOW + timedelta(hours=3))
        last = run(data_dir, NOW + timedelta(hours=4))
    finally:
        controller.stop()
    assert (later.sent, later.failed) == (1, 0) and last.sent == 0
    assert good.per_recipient() == Counter({"ada@example.org": 1})
    [sent] = digests(data_dir)
    assert sent["id"] == row["id"] and sent["state"] == "sent"
    shown = ada.get("/settings.json").get_json()
    assert shown["digest_problem"] is None and "could not" not in shown["last_digest"]
    assert "could not" not in ada.get("/settings").get_data(as_text=True)
