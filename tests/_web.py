"""Helpers for the web tests: a fitted sample corpus, CSRF tokens, signing up, emails."""

from __future__ import annotations

import atexit
import email
import email.policy
import functools
import re
import shutil
import tempfile
from pathlib import Path

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.ingest import ingest_paths

from .conftest import SAMPLE_DUMPS

PASSWORD = "correct horse battery"
OLD_DUMP, NEW_DUMP = "2026-11-16_000_7b2f11b90d39ad34.txt", "2026-11-20_004_993749e1571ba9fe.txt"
OLD_DAY, NEW_DAY = "2026-11-19", "2026-11-20"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.cache
def corpus_template() -> Path:
    """A data dir with two real sample dumps ingested and the models fitted, built once.

    Tests copy it (fitting takes about a second; copying, milliseconds).
    """
    root = Path(tempfile.mkdtemp(prefix="paperfeed-web-"))
    atexit.register(shutil.rmtree, root, True)
    data = root / "data"
    db = store.open_db(data / "paperfeed.db")
    ingest_paths(db, [SAMPLE_DUMPS / OLD_DUMP], dump_date=OLD_DAY)
    ingest_paths(db, [SAMPLE_DUMPS / NEW_DUMP], dump_date=NEW_DAY)
    pipeline.refit(db, load_settings(data))
    db.close()
    return data


def copy_corpus(target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(corpus_template(), target)
    return target


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's current session, read from a rendered form."""
    page = client.get(path)
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found, f"no csrf_token on {path}"
    return found.group(1)


def post(client, path: str, data: dict | None = None, **kwargs):
    """POST a form with the session's CSRF token, as a browser would."""
    return client.post(path, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def rate_by_fetch(client, paper_id: int, value: str):
    """What app.js does: fetch POST with the X-CSRFToken header, asking for JSON."""
    return client.post(
        f"/papers/{paper_id}/rate",
        data={"value": value},
        headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"},
    )


def deliver_mails(app) -> None:
    """What the scheduler does every few seconds: send the queued account mails."""
    from recommender import jobs

    jobs.send_account_mails(
        load_settings(app.config["DATA_DIR"]), secret_key=app.config["SECRET_KEY"]
    )


def sign_up(
    client, address: str = "ada@example.org", password: str = PASSWORD, *, confirm: bool = True
) -> None:
    """Sign up as a browser would; with ``confirm``, then open the link the confirmation
    mail carries and press its button, which logs in."""
    response = post(client, "/signup", {"email": address, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    if not confirm:
        return
    deliver_mails(client.application)
    outbox = Path(client.application.config["DATA_DIR"])
    sent = [m for m in mails(outbox) if m["To"] == address and m["Subject"].startswith("Confirm")]
    assert sent, f"no confirmation mail to {address}"
    confirmed = post(client, link_in(sent[-1], "confirm"))
    assert confirmed.status_code == 302, confirmed.get_data(as_text=True)[:500]


def log_in(client, address: str, password: str = PASSWORD):
    return post(client, "/login", {"email": address, "password": password})


def user_id(db, address: str) -> int:
    return store.get_user_by_email(db, address)["id"]


def mails(data_dir: Path) -> list[email.message.EmailMessage]:
    """Messages the file mail backend wrote, oldest first."""
    files = sorted((data_dir / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def link_in(message, kind: str) -> str:
    """The path of the ``/confirm/...`` or ``/reset/...`` link in a message."""
    body = message.get_body(("plain",)).get_content()
    found = re.search(rf"https?://[^/\s]+(/{kind}/\S+)", body)
    assert found, body
    return found.group(1)


#: Data dir and secret key of each browser test's server, by base URL (tests/test_browser*.py).
BROWSER_SITES: dict[str, tuple[Path, str | None]] = {}


def confirm_in_browser(page, base: str, address: str) -> None:
    """After the sign-up form: what the scheduler and the person do next. The queued
    confirmation mail is sent, and its link opened and confirmed, which logs in."""
    from recommender import jobs

    data_dir, secret_key = BROWSER_SITES[base]
    page.wait_for_url(f"{base}/login")
    jobs.send_account_mails(load_settings(data_dir), secret_key=secret_key)
    sent = [m for m in mails(data_dir) if m["To"] == address and m["Subject"].startswith("Confirm")]
    assert sent, f"no confirmation mail to {address}"
    page.goto(base + link_in(sent[-1], "confirm"))
    page.click(f"button[type=submit]:has-text('Confirm {address}')")
    page.wait_for_url(f"{base}/welcome")
