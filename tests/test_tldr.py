"""The source's TL;DR and thumbnail: stored from the Hugging Face fetch, shown labelled as the
source's on cards, the paper page, the digest and Atom; thumbnails only where allowed."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from recommender import digest, store
from recommender.cli import cli
from recommender.config import load_settings

from ._sources import FixtureServer, Reply, fixture
from ._web import post, sign_up
from .test_digest import parts

DAY = "2026-11-30"
TLDR = (
    "A sparse mixture-of-experts speech recognizer halves compute per token and lowers word"
    " error rate."
)
THUMB = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2511.20001.png"


@pytest.fixture
def fetched(data_dir, monkeypatch):
    srv = FixtureServer()
    monkeypatch.setenv("PAPERFEED_HF_API_URL", srv.url)
    srv.script(f"/api/daily_papers?date={DAY}", [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "fetch", "hf-daily", "--date", DAY]
    )
    srv.close()
    assert result.exit_code == 0, result.output
    db = store.connect(data_dir / "paperfeed.db")
    yield db
    db.close()


def test_the_fetch_stores_the_tldr_and_thumbnail(fetched):
    rows = fetched.execute(
        "SELECT arxiv_id, ai_summary, thumbnail FROM papers ORDER BY id LIMIT 2"
    ).fetchall()
    assert rows == [("2511.20001", TLDR, THUMB), ("2511.20002", None, None)]


def _app(data_dir):
    from web import create_app

    return create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "s"})


def test_cards_and_the_paper_page_show_the_tldr_and_no_remote_image_by_default(fetched, data_dir):
    client = _app(data_dir).test_client()
    sign_up(client)
    feed = client.get(f"/?window={DAY}")
    page = feed.get_data(as_text=True)
    assert f"TL;DR by Hugging Face:</span> {TLDR}" in page
    assert "cdn-thumbnails" not in page  # nothing fetched from a third party
    assert "cdn-thumbnails" not in feed.headers["Content-Security-Policy"]
    paper = client.get("/papers/1").get_data(as_text=True)
    assert f"TL;DR by Hugging Face:</span> {TLDR}" in paper and "<img" not in paper


def test_with_remote_images_on_the_thumbnail_is_lazy_with_alt_text_and_allowed(
    fetched, data_dir, monkeypatch
):
    monkeypatch.setenv("PAPERFEED_REMOTE_IMAGES", "1")
    client = _app(data_dir).test_client()
    sign_up(client)
    feed = client.get(f"/?window={DAY}")
    img = re.search(r"<img class=\"thumbnail\"[^>]*>", feed.get_data(as_text=True)).group()
    assert f'src="{THUMB}"' in img and 'loading="lazy"' in img
    assert 'alt="Thumbnail of “Sparse Mixture-of-Experts Speech Recognition at Scale”' in img
    csp = feed.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn-thumbnails.huggingface.co" in csp
    assert '<img class="thumbnail"' in client.get("/papers/1").get_data(as_text=True)


def test_atom_and_the_digest_carry_the_tldr_labelled(fetched, data_dir):
    client = _app(data_dir).test_client()
    sign_up(client)
    post(client, "/settings/atom", {"action": "regenerate"})
    url = client.get("/settings.json").get_json()["atom_url"]
    atom = client.get(url.split("127.0.0.1:5000")[-1]).get_data(as_text=True)
    assert f"TL;DR by Hugging Face: {TLDR}" in atom
    row = {
        "user_id": 1,
        "recipient": "ada@example.org",
        "period": "2026-11-30",
        "subject": None,
        "message_id": "<x@paperfeed.test>",
        "created_at": "2026-11-30T06:05:00+00:00",
    }
    paper = dict(store.get_paper(fetched, 1), paper_id=1, score=1.0, reason="recommended")
    paper["authors"] = '["Mira Okafor"]'
    message = digest.render_digest(load_settings(data_dir), row, [paper], secret="x" * 40)
    text, html = parts(message)
    assert f"TL;DR by Hugging Face: {TLDR}" in text
    assert f"<strong>TL;DR by Hugging Face:</strong> {TLDR}" in html


def test_exports_of_papers_without_authors_leave_the_author_out(data_dir):
    from recommender.ingest import ingest_paths

    from .conftest import SAMPLE_DUMPS

    db = store.open_db(data_dir / "paperfeed.db")
    ingest_paths(db, [sorted(SAMPLE_DUMPS.glob("*.txt"))[0]])
    client = _app(data_dir).test_client()
    sign_up(client)
    post(client, "/papers/1/rate", {"value": "like"})
    bib = client.get("/settings/export?format=bibtex").get_data(as_text=True)
    assert "author" not in bib and "title = {" in bib and bib.count("@misc{") == 1
    post(client, "/settings/atom", {"action": "regenerate"})
    url = client.get("/settings.json").get_json()["atom_url"]
    atom = client.get(url.split("127.0.0.1:5000")[-1]).get_data(as_text=True)
    # one <author> (the feed's own, which every entry inherits), none empty
    assert atom.count("<author>") == 1 and "<name>paperfeed</name>" in atom
    assert "<name></name>" not in atom and "<name/>" not in atom
