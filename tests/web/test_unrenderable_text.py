"""Papers already in the database with NUL and control characters in their text (put there
before ingest stripped them, or by hand) still render everywhere (issue 11, item 9)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from recommender import digest, store
from recommender.config import load_settings

from .._web import post

ATOM = "{http://www.w3.org/2005/Atom}"
# Every character XML 1.0 forbids that SQLite stores happily.
BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@pytest.fixture
def poisoned(ada, db):
    """Every paper's title and abstract carries NUL, BEL, ESC and U+FFFE, written directly."""
    db.execute(
        "UPDATE papers SET title = char(0) || title || char(7) || char(65534),"
        " abstract = abstract || char(0) || char(27) || ' end'"
    )
    db.conn.commit()
    return ada


def test_the_atom_feed_and_its_twin_answer_with_valid_documents(poisoned):
    post(poisoned, "/settings/atom", {"action": "regenerate"})
    url = poisoned.get("/settings.json").get_json()["atom_url"]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    response = poisoned.get(path)
    assert response.status_code == 200
    entries = ET.fromstring(response.data).findall(f"{ATOM}entry")
    assert len(entries) == 30
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert not any(BAD.search(t) for t in titles)
    twin = poisoned.get(path.replace(".xml", ".json"))
    assert twin.status_code == 200
    assert len(json.loads(twin.data)["papers"]) == 30


def test_the_html_pages_and_json_twins_render(poisoned):
    for page in ("/", "/feed.json", "/search?q=learning", "/search.json?q=learning"):
        response = poisoned.get(page)
        assert response.status_code == 200, page
        assert not BAD.search(response.get_data(as_text=True)), page
    paper = poisoned.get("/feed.json").get_json()["papers"][0]["paper_id"]
    for page in (f"/papers/{paper}", f"/papers/{paper}.json"):
        response = poisoned.get(page)
        assert response.status_code == 200, page
        assert not BAD.search(response.get_data(as_text=True)), page


def test_the_digest_email_renders_clean(poisoned, db, data_dir):
    settings = load_settings(data_dir)
    papers = store.dump_papers(db, store.latest_dump(db)["id"])[:3]
    row = {
        "id": 1,
        "user_id": 1,
        "recipient": "ada@example.org",
        "period": "2026-11-20",
        "subject": None,
        "message_id": "<m@paperfeed.test>",
        "created_at": "2026-11-20T07:00:00+00:00",
    }
    items = [{**p, "paper_id": p["id"], "score": 1.0, "reason": "because"} for p in papers]
    message = digest.render_digest(settings, row, items, secret="s")
    for part in message.get_payload():
        text = part.get_payload(decode=True).decode("utf-8")
        assert not BAD.search(text)
        assert papers[0]["title"].strip("\x00\x07\ufffe") in text
