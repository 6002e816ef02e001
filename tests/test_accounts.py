"""recommender.accounts: one path for the sign-up form and ``paperfeed user add``, account
mails built like digests, and the migration that gives accounts their secrets."""

from __future__ import annotations

import email
import email.policy
import shutil

import pytest
from click.testing import CliRunner

from recommender import accounts, store
from recommender.cli import cli
from recommender.config import load_settings
from recommender.store.db import connect, migrate, migrations_dir


@pytest.fixture
def run(data_dir):
    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=input)

    return invoke


def outbox(data_dir) -> list[email.message.EmailMessage]:
    files = sorted((data_dir / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def test_user_add_follows_the_sign_up_rules_and_mails_the_confirmation_link(run, data_dir, db):
    short = run("user", "add", "ada@example.org", "--password-stdin", input="1234567\n")
    assert short.exit_code == 1
    assert f"password: {accounts.password_problem('1234567')}" in short.output
    bad = run("user", "add", "not-an-address", "--password-stdin", input="a long password\n")
    assert bad.exit_code == 1 and "Enter an email address" in bad.output
    assert store.list_users(db) == []

    added = run("user", "add", " ada@example.org ", "--password-stdin", input="a long password\n")
    assert added.exit_code == 0, added.output
    [message] = outbox(data_dir)
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "Confirm your paperfeed address"
    assert message["Date"].datetime is not None and message["Message-ID"].endswith("@localhost>")
    assert "/confirm/" in message.get_content()
    # The link works in the web app, as the sign-up form's does.
    from web import create_app

    app = create_app({"DATA_DIR": str(data_dir), "TESTING": True, "WTF_CSRF_ENABLED": False})
    path = message.get_content().split("http://127.0.0.1:5000", 1)[1].split()[0]
    assert app.test_client().post(path).status_code == 302
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is not None


def test_user_add_confirmed_sends_nothing(run, data_dir, db):
    result = run("user", "add", "bo@example.org", "--confirmed", "--password-stdin", input="x" * 9)
    assert result.exit_code == 0, result.output
    assert outbox(data_dir) == []


def test_account_and_digest_messages_come_from_one_builder(data_dir):
    from recommender import mail

    settings = load_settings(data_dir)
    message = mail.account_message(settings, "reset", "Zoë <zoe@example.org>", "http://x/reset/t")
    raw = message.as_bytes()
    for header in (b"Date: ", b"Message-ID: <", b"From: ", b"MIME-Version: 1.0"):
        assert header in raw
    assert b"Auto-Submitted: auto-generated" in raw
    with pytest.raises(ValueError, match="line break"):
        mail.build_message(settings, to="a@example.org", subject="x\r\nBcc: b@x.org", text="")


def test_the_migration_keeps_every_row_and_gives_each_account_its_own_secret(tmp_path):
    early = tmp_path / "early"
    early.mkdir()
    for sql in sorted(migrations_dir().glob("000[1-4]_*.sql")):
        shutil.copy(sql, early)
    db = connect(tmp_path / "paperfeed.db")
    migrate(db, early)
    now = "2026-01-01T00:00:00+00:00"
    db.execute(
        "INSERT INTO dumps VALUES (1, 'd.txt', 'h', 'text', '2026-01-01', ?, 1, 1, 0)", [now]
    )
    db.execute(
        "INSERT INTO papers (id, norm_title, title, abstract, first_dump_id, created_at)"
        " VALUES (1, 't', 'T', 'A', 1, ?)",
        [now],
    )
    for uid in (1, 2, 3):
        db.execute(
            "INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)",
            [uid, f"u{uid}@x.org", now],
        )
        db.execute(
            "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at)"
            " VALUES (?, 1, 1, 'web', ?, ?)",
            [uid, now, now],
        )
    db.conn.commit()
    assert migrate(db)[0] == "0005_account_secrets"  # (and any later ones)
    assert db.execute("SELECT user_id FROM ratings ORDER BY 1").fetchall() == [(1,), (2,), (3,)]
    secrets = [row[0] for row in db.execute("SELECT auth_secret FROM users").fetchall()]
    assert len(set(secrets)) == 3 and all(len(s) == 64 for s in secrets)
    assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)  # on again
    store.delete_user(db, 3)
    assert store.create_user(db, "new@x.org", None) == 4  # 3 is never given again
    assert db.execute("SELECT count(*) FROM ratings").fetchone() == (2,)  # cascade still on
