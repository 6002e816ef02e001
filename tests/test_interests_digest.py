"""The digest of a person with two interests: a section each, every paper once (issue 18),
sent through a real SMTP server."""

from __future__ import annotations

import os
from pathlib import Path

from recommender import digest, pipeline, store

from .test_digest import (  # noqa: F401  (fixtures)
    MONDAY_0705_BERLIN,
    add_user,
    ledger,
    mail_env,
    papers,
    parts,
    settings,
    smtp,
)


def test_a_digest_has_a_section_per_interest_and_each_paper_once(papers, settings, smtp):  # noqa: F811
    db = papers
    uid = add_user(db, "ada@example.org")
    plain = add_user(db, "grace@example.org")
    rows = list(db.execute("SELECT id, title FROM papers ORDER BY id").fetchall())
    speech = store.create_interest(db, uid, "Speech")
    # Two papers far apart in the dump: one filed under Speech, one under the default.
    store.set_rating(db, uid, rows[0][0], 1, interest_id=speech)
    store.set_rating(db, uid, rows[120][0], 1)
    store.set_rating(db, plain, rows[120][0], 1)
    pipeline.refit(db, settings)
    run = digest.send_due_digests(db, settings, now=MONDAY_0705_BERLIN)
    assert (run.sent, run.failed) == (2, 0)
    by_rcpt = {rcpts[0]: message for rcpts, message in smtp.received}
    text, html = parts(by_rcpt["ada@example.org"])
    assert text.count("== General ==") == 1 and text.count("== Speech ==") == 1
    assert html.count(">General</h2>") == 1 and html.count(">Speech</h2>") == 1
    row = next(r for r in ledger(db) if r["user_id"] == uid)
    items = db.execute(
        "SELECT paper_id, section FROM digest_items WHERE digest_id = ? ORDER BY position",
        [row["id"]],
    ).fetchall()
    assert len(items) == 10 and len({pid for pid, _ in items}) == 10
    assert {section for _, section in items} == {"General", "Speech"}
    # Each section's papers together in the message, in the order of the sections.
    assert text.index("== General ==") < text.index("== Speech ==")
    # A person with one interest gets the digest as before: no sections.
    other, _ = parts(by_rcpt["grace@example.org"])
    assert "==" not in other.split("--")[0]
    if shots := os.environ.get("PAPERFEED_SHOTS_DIR"):
        Path(shots).mkdir(parents=True, exist_ok=True)
        (Path(shots) / "digest-two-interests.html").write_text(html)
