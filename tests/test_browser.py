"""The web app in a real browser: Playwright driving Debian's headless Chromium.

A real server (werkzeug, in a thread) on a free localhost port serves a temp data
dir holding the real sample dumps. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ._web import BROWSER_SITES, PASSWORD, confirm_in_browser, copy_corpus

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from werkzeug.serving import make_server

    from web import create_app

    data = copy_corpus(tmp_path_factory.mktemp("browser") / "data")
    app = create_app({"DATA_DIR": str(data), "SECRET_KEY": "browser-test-secret"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    BROWSER_SITES[base] = (data, "browser-test-secret")
    yield base
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def sign_up(page, server: str, address: str) -> None:
    page.goto(f"{server}/signup")
    page.fill("#email", address)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Sign up')")
    confirm_in_browser(page, server, address)


def titles(page) -> list[str]:
    return page.locator(".paper .paper-title a").all_inner_texts()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def test_sign_up_onboard_like_without_reload_and_the_order_changes(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up(page, server, "ada@example.org")
    assert "What do you read?" in page.inner_text("h1")
    page.fill("#keywords", "speech recognition")
    page.click("button:has-text('Save topics')")
    assert "Topics saved" in page.inner_text(".flashes")
    assert page.input_value("#keywords") == "speech recognition"
    shoot(page, "welcome-desktop.png")

    page.click("a:has-text('See my feed')")
    page.wait_for_url(f"{server}/")
    before = titles(page)
    assert len(before) == 20
    assert page.locator(".reason").first.inner_text() == "matches ‘speech recognition’"
    shoot(page, "feed-desktop.png")

    # Like three papers from the middle of the list: no navigation happens (each like
    # re-ranks the cards below it, so the titles are read as they are clicked).
    page.evaluate("window.notReloaded = true")
    liked_titles = set()
    for n, index in enumerate((5, 9, 14), start=1):
        card = page.locator(".paper").nth(index)
        liked_titles.add(card.locator(".paper-title a").inner_text())
        card.locator("button.btn-like").click()
        liked = card.locator("button.btn-like[aria-pressed=true]")
        liked.wait_for()
        page.wait_for_function(f"document.querySelector('[data-rerank]').dataset.reranked == {n}")
        assert "Liked" in liked.inner_text()
        assert card.locator("button.btn-undo").is_visible()
    assert page.evaluate("window.notReloaded") is True

    page.reload()
    after = titles(page)
    assert not liked_titles & set(after)
    remaining = [t for t in before if t not in liked_titles]
    assert after != remaining[: len(after)]
    assert page.locator(".reason").first.inner_text().startswith("because you liked")
    context.close()


def test_keyboard_moves_likes_and_dislikes(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up(page, server, "kbd@example.org")
    page.goto(f"{server}/")
    cards = page.locator(".paper")
    page.keyboard.press("j")
    assert "is-current" in cards.nth(0).get_attribute("class")
    page.keyboard.press("j")
    page.keyboard.press("l")
    cards.nth(1).locator("button.btn-like[aria-pressed=true]").wait_for()
    page.keyboard.press("j")
    page.keyboard.press("d")
    cards.nth(2).locator("button.btn-dislike[aria-pressed=true]").wait_for()
    page.keyboard.press("k")
    assert "is-current" in cards.nth(1).get_attribute("class")
    page.keyboard.press("u")
    cards.nth(1).locator("button.btn-like[aria-pressed=false]").wait_for()
    # Typing in the search box is not a shortcut.
    page.fill(".nav-search input", "")
    page.press(".nav-search input", "l")
    assert page.locator("button.btn-like[aria-pressed=true]").count() == 0
    # Abstracts start collapsed and expand.
    first = cards.nth(0)
    more = first.locator("button.more")
    if more.count():
        height = first.locator(".abstract").bounding_box()["height"]
        more.click()
        assert first.locator(".abstract").bounding_box()["height"] > height
    shoot(page, "feed-keyboard-desktop.png")
    context.close()


def test_the_feed_is_readable_on_a_phone(browser, server):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    sign_up(page, server, "phone@example.org")
    shoot(page, "welcome-phone.png")
    page.goto(f"{server}/")
    # Nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "feed-phone.png")
    page.goto(f"{server}/settings")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "settings-phone.png")
    context.close()


def test_without_javascript_the_forms_still_rate(browser, server):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    sign_up(page, server, "nojs@example.org")
    page.goto(f"{server}/")
    first = titles(page)[0]
    page.locator(".paper").first.locator("button.btn-like").click()
    page.wait_for_load_state()
    assert page.url == f"{server}/"
    assert f"Liked “{first}”" in page.inner_text(".flashes")
    assert first not in titles(page)
    # Earlier dumps through the plain form as well.
    page.select_option("#window", "2026-11-19")
    page.click("button:has-text('Show')")
    assert "window=2026-11-19" in page.url and "2026-11-19" in page.inner_text(".page-head")
    page.goto(f"{server}/settings")
    shoot(page, "settings-desktop.png")
    context.close()


def test_changing_the_password_in_settings(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_up(page, server, "pat@example.org")
    page.goto(f"{server}/settings#password")
    page.fill("#current-password", PASSWORD)
    page.fill("#new-password", "an entirely new password")
    page.click("#password button[type=submit]")
    page.wait_for_url(f"{server}/settings")
    assert "Your password is changed" in page.inner_text("body")
    page.locator("#password").scroll_into_view_if_needed()
    shoot(page, "settings-password.png")
    page.close()
    # The new password logs in; the old one does not.
    fresh = browser.new_page()
    fresh.goto(f"{server}/login")
    fresh.fill("#email", "pat@example.org")
    fresh.fill("#password", PASSWORD)
    fresh.click("button[type=submit]:has-text('Log in')")
    assert "do not match" in fresh.inner_text("body")
    fresh.fill("#email", "pat@example.org")
    fresh.fill("#password", "an entirely new password")
    fresh.click("button[type=submit]:has-text('Log in')")
    fresh.wait_for_url(f"{server}/")
    fresh.close()
