"""Fetched papers in a real browser: a card and the digest open the paper on arXiv.

The Daily Papers day is fetched for real from a loopback server playing the API
(tests/_sources.py); arXiv itself is not reachable here, so the browser's requests to
arxiv.org are answered by a stub page, and the test checks which address was opened.
Screenshots of the feed, a paper page and the digest at 1280 and 390 px go to
``test-artifacts/``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from recommender import digest, pipeline, sources, store
from recommender.config import load_settings

from . import test_browser
from ._sources import FixtureServer, Reply, fixture
from ._web import BROWSER_SITES, copy_corpus, mails
from .test_browser import ARTIFACTS, sign_up

pytestmark = pytest.mark.browser
browser = test_browser.browser  # the same headless Chromium fixture

DAY = "2026-11-30"
SPEECH = "Sparse Mixture-of-Experts Speech Recognition at Scale"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The web app on a corpus plus the Daily Papers day of 2026-11-30, fetched over HTTP."""
    from werkzeug.serving import make_server

    from web import create_app

    data = copy_corpus(tmp_path_factory.mktemp("browser-sources") / "data")
    api = FixtureServer()
    api.script(f"/api/daily_papers?date={DAY}", [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    cfg = sources.load_source_settings()
    cfg = type(cfg)(**{**cfg.__dict__, "hf_api_url": api.url, "retries": 0})
    db = store.connect(data / "paperfeed.db")
    assert sources.fetch_source_day(db, "hf-daily", DAY, cfg).new_papers == 4
    api.close()
    pipeline.refit(db, load_settings(data))
    app = create_app({"DATA_DIR": str(data), "SECRET_KEY": "browser-sources-secret"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    BROWSER_SITES[base] = (data, "browser-sources-secret")
    yield base, data, db
    httpd.shutdown()
    thread.join(timeout=10)
    db.close()


def arxiv_stub(context) -> list[str]:
    """Answer every arxiv.org request with a small page; returns the URLs asked for."""
    opened: list[str] = []

    def answer(route):
        opened.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>arXiv (stub)</h1>")

    context.route("https://arxiv.org/**", answer)
    return opened


def shoot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def test_a_card_opens_the_paper_and_the_pages_at_two_widths(browser, site):
    server, _, db = site
    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        opened = arxiv_stub(context)
        page = context.new_page()
        sign_up(page, server, f"reader-{size}@example.org")
        page.fill("#keywords", "speech recognition")
        page.click("button:has-text('Save topics')")
        page.goto(f"{server}/")
        assert f"{DAY}" in page.inner_text(".page-head")
        card = page.locator(".paper", has_text=SPEECH)
        assert "Mira Okafor, Jonas Lindqvist, Wei Zhang" in card.locator(".authors").inner_text()
        assert (
            card.locator("a.pdf-link").get_attribute("href") == "https://arxiv.org/pdf/2511.20001"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        card.scroll_into_view_if_needed()
        shoot(page, f"sources-feed-{size}.png")
        card.locator(".paper-title a").click()
        page.wait_for_url("https://arxiv.org/abs/2511.20001")
        assert opened == ["https://arxiv.org/abs/2511.20001"]
        # The paper page: authors, links, upvotes, the day it came.
        pid = db.execute("SELECT id FROM papers WHERE title = ?", [SPEECH]).fetchone()[0]
        page.goto(f"{server}/papers/{pid}")
        assert "48 on Hugging Face" in page.inner_text(".meta")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        shoot(page, f"sources-paper-{size}.png")
        page.click("h1 a")
        page.wait_for_url("https://arxiv.org/abs/2511.20001")
        page.goto(f"{server}/trending")
        assert page.locator(".paper .reason").first.inner_text() == "▲ 48 upvotes on Hugging Face"
        shoot(page, f"sources-trending-{size}.png")
        context.close()


def test_the_digest_opens_the_paper(browser, site, tmp_path):
    server, data, db = site
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    sign_up(page, server, "digest-reader@example.org")
    page.fill("#keywords", "speech recognition diffusion")
    page.click("button:has-text('Save topics')")
    context.close()
    uid = store.get_user_by_email(db, "digest-reader@example.org")["id"]
    store.confirm_email(db, uid, "digest-reader@example.org")
    # Only the fetched day is new to this digest: the corpus arrived long before.
    db.execute("UPDATE dumps SET ingested_at = '2000-01-01T00:00:00+00:00' WHERE source = 'file'")
    db.conn.commit()
    now = datetime.now(UTC).replace(hour=7, minute=5)
    # (readers signed up by the tests before are confirmed too: they get theirs)
    assert digest.send_due_digests(db, load_settings(data), now=now).sent >= 1
    (message,) = [
        m
        for m in mails(data)
        if m["To"] == "digest-reader@example.org" and "digest" in m["Subject"]
    ]
    html = tmp_path / "digest.html"
    html.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport)
        opened = arxiv_stub(context)
        page = context.new_page()
        page.goto(html.as_uri())
        assert "Mira Okafor" in page.inner_text("body")
        shoot(page, f"sources-digest-{size}.png", full_page=size == "phone")
        page.click(f"a:has-text('{SPEECH}')")
        page.wait_for_url("https://arxiv.org/abs/2511.20001")
        assert opened == ["https://arxiv.org/abs/2511.20001"]
        context.close()
